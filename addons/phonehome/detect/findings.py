"""Hits to Findings: redacted evidence, keyed fingerprints, one finding per place.

Repeated hits at one place keep the most specific (a Bearer token over the JWT
inside it); list-shaped hits (participants, level series) merge into one
finding per container; identity matches keep the longest span per encoding.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from ..model import Finding, Leaf, PathPart, severity_rank
from ..terms import IDENTITY_FIELDS
from .base import Detector, Hit
from .cache import MEMO_TEXT_CHARS, location_of, remember
from .identity import Identity, IdentityForm
from .redact import fingerprint, redact
from .scan import Raw

__all__ = ["FindingMaker", "drop_summary_repeats"]

_FLOOR = severity_rank("medium")
_FLOORED = frozenset({"personal_data", "meeting_content"})
# Whole-request leaves that repeat what other leaves already hold.
_SUMMARY_LOCATIONS = frozenset({"url", "header:cookie", "header:Cookie"})
_IDENTITY = "identity"


class FindingMaker:
    """Makes the findings of one payload's hits; with `memo`, remembers the ones made
    from short texts (hits come from memos, so the same hit object recurs)."""

    def __init__(self, detectors: tuple[Detector, ...], identity: Identity | None,
                 key: bytes, *, memo: bool = True) -> None:
        self.identity = identity
        self.key = key
        self._order = {d.name: n for n, d in enumerate(detectors)}
        self._made: dict[tuple[Any, ...], tuple[Hit | None, Finding]] | None = \
            {} if memo else None

    def findings(self, leaves: list[Leaf], raw: list[Raw]) -> list[Finding]:
        if not raw:
            return []
        order = self._order
        singles: dict[tuple[str, str], list[Raw]] = {}
        groups: dict[tuple[str, str, tuple[PathPart, ...]], list[Raw]] = {}
        for item in raw:
            leaf = leaves[item.leaf]
            if item.hit.group is not None:
                key = (item.detector.type, leaf.source, leaf.path[: item.hit.group])
                groups.setdefault(key, []).append(item)
            else:
                singles.setdefault((leaf.location, item.detector.type), []).append(item)
        ranked: list[tuple[int, int, Finding]] = []
        made = self._made
        for (location, _), items in singles.items():
            for item in _most_specific(items) if len(items) > 1 else items:
                detector, hit = item.detector, item.hit
                # Key on the hit's id, and keep the hit to be sure the id still names it.
                memo_key = (id(hit), detector.name, location)
                entry = made.get(memo_key) if made is not None else None
                if entry is not None and entry[0] is hit:
                    finding = entry[1]
                else:
                    finding = _finding(detector, hit, location, hit.text,
                                       redact(detector.type, hit.text), self.key)
                    if made is not None and len(hit.text) <= MEMO_TEXT_CHARS:
                        remember(made, memo_key, (hit, finding))
                ranked.append((item.leaf, order[detector.name], finding))
        for (_, source, path), items in groups.items():
            detector = items[0].detector
            texts = list(dict.fromkeys(item.hit.text for item in items))
            value, evidence = _merge(detector, texts)
            best = max(items, key=lambda item: item.hit.confidence)
            hit = best.hit._replace(
                reason=f"{best.hit.reason} ({len(texts)} distinct values)"
                if len(texts) > 1 else best.hit.reason
            )
            ranked.append((items[0].leaf, order[detector.name],
                           _finding(detector, hit, location_of(source, path), value, evidence,
                                    self.key)))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [finding for _, _, finding in ranked]

    def identity_findings(
        self,
        leaves: list[Leaf],
        hits: list[tuple[int, int, int, IdentityForm, str]],
    ) -> list[Finding]:
        """Identity matches (leaf, start, end, form, text): per leaf, the longest
        span first, and each encoded text once."""
        by_leaf: dict[int, list[tuple[int, int, IdentityForm, str]]] = {}
        for leaf_i, start, end, form, text in hits:
            by_leaf.setdefault(leaf_i, []).append((start, end, form, text))
        out: list[Finding] = []
        made = self._made
        for leaf_i in sorted(by_leaf):
            spans = by_leaf[leaf_i]
            # Most specific first: the longest span, then the simplest encoding.
            spans.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
            kept: list[tuple[int, int, IdentityForm, str]] = []
            for span in spans:
                if any(k[0] <= span[0] and span[1] <= k[1] for k in kept):
                    continue
                kept.append(span)
            seen: set[tuple[int, str, str]] = set()
            location = leaves[leaf_i].location
            for _, _, form, text in sorted(kept, key=lambda s: s[0]):
                mark = (form.index, form.encoding, text)
                if mark in seen:
                    continue
                seen.add(mark)
                # needles are unique, so the matched text names its form
                memo_key = (_IDENTITY, text, location)
                entry = made.get(memo_key) if made is not None else None
                if entry is None:
                    declared = self.identity.values[form.index][1] if self.identity else text
                    entry = (None, _identity_finding(form, text, declared, location, self.key))
                    if made is not None:
                        remember(made, memo_key, entry)
                out.append(entry[1])
        return out


def _most_specific(items: list[Raw]) -> list[Raw]:
    """Drop repeats and hits whose text lies inside another hit's text (Bearer ⊃ JWT)."""
    items = sorted(items, key=lambda item: (-len(item.hit.text), -item.hit.confidence))
    kept: list[Raw] = []
    for item in items:
        if any(item.hit.text in other.hit.text for other in kept):
            continue
        kept.append(item)
    return kept


def _merge(detector: Detector, texts: list[str]) -> tuple[str, str]:
    merge = getattr(detector, "merge", None)
    if merge is not None:
        return merge(texts)
    return "\n".join(texts), f"{len(texts)} values"


def _finding(detector: Detector, hit: Hit, location: str, value: str, evidence: str,
             key: bytes) -> Finding:
    severity = hit.severity
    category = hit.category or detector.category
    if category in _FLOORED and severity_rank(severity) < _FLOOR:
        severity = "medium"  # personal data and meeting content are never below medium
    return Finding(
        type=detector.type,
        category=category,
        severity=severity,
        location=location,
        detector=detector.name,
        evidence=evidence,
        encoding=None,
        confidence=round(hit.confidence, 3),
        reason=hit.reason,
        fingerprint=fingerprint(value, key),
        value=value,
    )


def _identity_evidence(form: IdentityForm, text: str, declared: str) -> str:
    """The masked declared value, named by its encoding: never a character of the
    encoded text, since a digest's first digits would confirm a guess."""
    encoding = form.encoding
    field = IDENTITY_FIELDS.get(form.field)
    kind = field.masked_as if field else "identity_match"
    if encoding in ("plain", "case-folded", "url"):
        return redact(kind, unquote(text) if encoding == "url" else text)
    return f"{encoding} of {redact(kind, declared)}"


def _identity_finding(form: IdentityForm, text: str, declared: str, location: str,
                      key: bytes) -> Finding:
    reason = f"your declared {form.field.replace('_', ' ')} as {form.encoding}"
    if form.aligned:
        reason += " (inside a base64 blob)"
    return Finding(
        type="identity_match",
        category="personal_data",
        severity="high",
        location=location,
        detector="identity",
        evidence=_identity_evidence(form, text, declared),
        encoding=form.encoding,
        confidence=0.95 if form.aligned else 1.0,
        reason=reason,
        fingerprint=fingerprint(text, key),
        identity=form.field,
        value=text,
    )


def drop_summary_repeats(findings: list[Finding]) -> list[Finding]:
    """The URL and the Cookie header repeat the query and cookie leaves: keep their
    findings only when no other location already reported the same value."""
    elsewhere = {(f.type, f.fingerprint) for f in findings if f.location not in _SUMMARY_LOCATIONS}
    return [
        f for f in findings
        if f.location not in _SUMMARY_LOCATIONS or (f.type, f.fingerprint) not in elsewhere
    ]
