"""The detection engine's answers, found the plain way: every leaf planned from
scratch, every regex run over every text, nothing remembered and no prefilter.
Slow and readable; a property test holds `DetectionEngine.detect` to it.
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from ..model import Finding, Payload
from .base import MAX_HITS_PER_LEAF
from .cache import plan_for
from .engine import DetectionEngine, around, url_of
from .findings import FindingMaker, drop_summary_repeats
from .identity import IdentityForm
from .scan import MAX_MATCHES, Raw, scannable
from .vendor_tags import merge_tag_findings, tag_findings

__all__ = ["reference_detect"]


def _finditer(regex: object, byte_regex: object, text: str) -> list[tuple[int, int]]:
    if text.isascii():  # re2 reads ASCII as bytes with the same offsets
        return [m.span() for m in byte_regex.finditer(text.encode("ascii"))]  # type: ignore[attr-defined]
    return [m.span() for m in regex.finditer(text)]  # type: ignore[attr-defined]


def reference_detect(engine: DetectionEngine, payload: Payload) -> list[Finding]:
    """What `engine.detect(payload)` finds, computed without any of its shortcuts."""
    leaves = payload.leaves
    if not leaves:
        return []
    detectors = engine.detectors
    plans = [plan_for(detectors, leaf.location, leaf.source, leaf.path, 0) for leaf in leaves]
    url = url_of(leaves)
    raw: list[Raw] = []
    texts: dict[int, str] = {}
    # Key-driven detectors, leaf by leaf.
    for i, (leaf, plan) in enumerate(zip(leaves, plans, strict=True)):
        value = leaf.value
        kind = value.__class__
        if kind is str and value:
            value = texts[i] = scannable(value)  # type: ignore[arg-type]
            tried = plan.text
        elif kind is int or kind is float:
            tried = plan.numbers
        else:
            continue
        ctx = around(payload, leaf, plan.ctx, url) if plan.neighbours else plan.ctx
        for detector in tried:
            hit = detector.inspect(value, ctx)
            if hit is not None:
                raw.append(Raw(i, detector, hit))
    # Pattern detectors, regex by regex: each one over every text.
    for detector, regex, byte_regex in engine.scanner.patterned:
        if detector.single_line:
            examined = 0
            for i, text in texts.items():
                kept = 0
                for start, end in _finditer(regex, byte_regex, text):
                    examined += 1
                    if examined > MAX_MATCHES:
                        break
                    if kept >= MAX_HITS_PER_LEAF:
                        continue
                    hit = detector.accept(text, start, end, plans[i].ctx)
                    if hit is not None:
                        kept += 1
                        raw.append(Raw(i, detector, hit))
                if examined > MAX_MATCHES:
                    break
        else:
            _spanning(detector, regex, byte_regex, texts, plans, raw)
    # The identity search, text by text.
    identity_hits: list[tuple[int, int, int, IdentityForm, str]] = []
    if engine.index is not None:
        for i, text in texts.items():
            for start, end, form in engine.index.matches(text):
                identity_hits.append((i, start, end, form, text[start:end]))
    maker = FindingMaker(detectors, engine.identity, engine.key, memo=False)
    findings = maker.findings(leaves, raw)
    findings.extend(maker.identity_findings(leaves, identity_hits))
    findings = merge_tag_findings(findings, tag_findings(payload, engine.key))
    return drop_summary_repeats(findings)


def _spanning(detector: object, regex: object, byte_regex: object, texts: dict[int, str],
              plans: list, raw: list[Raw]) -> None:
    """A pattern that may span a newline runs over all the texts joined by one; a
    match across two texts counts for neither."""
    owners = list(texts)
    parts = [texts[i] for i in owners]
    starts = [0, *accumulate(len(t) + 1 for t in parts)]
    per_leaf: dict[int, int] = {}
    for examined, (start, end) in enumerate(_finditer(regex, byte_regex, "\n".join(parts)), 1):
        if examined > MAX_MATCHES:
            break
        j = bisect_right(starts, start) - 1
        text = parts[j]
        if end > starts[j] + len(text) or per_leaf.get(j, 0) >= MAX_HITS_PER_LEAF:
            continue
        i = owners[j]
        hit = detector.accept(text, start - starts[j], end - starts[j],  # type: ignore[attr-defined]
                              plans[i].ctx)
        if hit is not None:
            per_leaf[j] = per_leaf.get(j, 0) + 1
            raw.append(Raw(i, detector, hit))  # type: ignore[arg-type]
