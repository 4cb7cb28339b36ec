"""The detection engine: every detector and the identity search, once per payload.

How one payload is scanned:

1. Each leaf's place (source + path) maps to a cached plan: its Context and
   the key-driven detectors that apply there (decided once per distinct path).
   Those run on the leaf's value; numbers and booleans skip everything else.
2. The text of every string leaf is joined with "\\n" (no pattern crosses a
   newline) and one re2.Set pass says which pattern detectors can fire at
   all; only those run their own regex over the joined text, and each match
   is mapped back to its leaf (bisect) for the detector's `accept`.
3. The identity automaton (pyahocorasick) runs once over the same text.

Hits then become Findings with redacted evidence; list-shaped hits
(participants, level series) merge into one finding per container.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import Any, NamedTuple
from urllib.parse import unquote

import re2

from ..model import Finding, Leaf, PathPart, Payload, severity_rank
from .base import MAX_HITS_PER_LEAF, Context, Detector, Hit, safe_text
from .content import (
    AudioLevelDetector,
    ChatMessageDetector,
    FileNameDetector,
    MeetingTitleDetector,
    ParticipantListDetector,
    TranscriptDetector,
)
from .identity import Identity, IdentityForm, IdentityIndex
from .personal import (
    AuthTokenDetector,
    CreditCardDetector,
    DeviceSerialDetector,
    EmailDetector,
    GeoLocationDetector,
    HostnameDetector,
    IpAddressDetector,
    MacAddressDetector,
    NationalIdDetector,
    PersonNameDetector,
    PhoneDetector,
    UsernameDetector,
)
from .redact import fingerprint, redact

__all__ = ["DETECTORS", "DetectionEngine", "location_of"]

DETECTORS: tuple[type[Detector], ...] = (
    EmailDetector,
    PhoneDetector,
    PersonNameDetector,
    IpAddressDetector,
    MacAddressDetector,
    GeoLocationDetector,
    HostnameDetector,
    UsernameDetector,
    DeviceSerialDetector,
    CreditCardDetector,
    NationalIdDetector,
    AuthTokenDetector,
    MeetingTitleDetector,
    ChatMessageDetector,
    TranscriptDetector,
    FileNameDetector,
    ParticipantListDetector,
    AudioLevelDetector,
)
"""One class per finding type, in report order (identity matching is the engine's own)."""

MAX_SCAN_CHARS = 1 << 20
"""Characters of one leaf that pattern detectors and the identity search look at."""
MAX_MATCHES = 4096
"""Pattern matches one detector examines per payload (hostile repetition bound)."""
MAX_PLANS = 16384
"""Cached per-path plans before the cache starts over."""

_IDENTITY_TYPE = {
    "email": "email",
    "name": "person_name",
    "phone": "phone",
    "username": "username",
    "device_name": "hostname",
    "hostname": "hostname",
    "ip": "ip_address",
    "mac": "mac_address",
    "meeting_titles": "meeting_title",
}
_FLOOR = severity_rank("medium")
# Whole-request leaves that repeat what other leaves already hold.
_SUMMARY_LOCATIONS = frozenset({"url", "header:cookie", "header:Cookie"})


class _Plan(NamedTuple):
    ctx: Context
    text: tuple[Detector, ...]
    numbers: tuple[Detector, ...]


class _Raw(NamedTuple):
    leaf: int
    detector: Detector
    hit: Hit


def _key_suffix(key: PathPart) -> str:
    """The location suffix decode uses: `.name`, `['other key']` or `[3]`."""
    if isinstance(key, int):
        return f"[{key}]"
    if key.isascii() and (key.isidentifier() or key.isdigit()):
        return "." + key
    return "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


def location_of(source: str, path: Sequence[PathPart]) -> str:
    """The report location of a container path (`$.a.b[0]`, `query:data.x`)."""
    if source == "body":
        return "$" + "".join(_key_suffix(p) for p in path)
    if source == "url" or not path:
        return source
    return f"{source}:{path[0]}" + "".join(_key_suffix(p) for p in path[1:])


class DetectionEngine:
    """Every detector, compiled once; `detect(payload)` per flow."""

    def __init__(self, identity: Identity | None = None) -> None:
        self.identity = identity
        self.detectors: tuple[Detector, ...] = tuple(cls() for cls in DETECTORS)
        # One Set entry per (detector, regex); its trigger is what the Set looks for.
        self._patterned: tuple[tuple[Detector, Any, Any], ...] = tuple(
            (d, regex, byte_regex)
            for d in self.detectors
            for regex, byte_regex in zip(d.regexes, d.byte_regexes, strict=True)
        )
        options = re2.Options()
        options.max_mem = 64 << 20
        self._prefilter = re2.Set.SearchSet(options)
        for detector in self.detectors:
            for trigger in detector.triggers:
                self._prefilter.Add(trigger)
        self._prefilter.Compile()
        self._index = IdentityIndex(identity) if identity else None
        self._plans: dict[tuple[str, tuple[PathPart, ...]], _Plan] = {}

    # --- per path

    def _plan(self, source: str, path: tuple[PathPart, ...]) -> _Plan:
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        ctx = Context.of(path, source)
        applicable = tuple(d for d in self.detectors if d.applies(ctx))
        plan = _Plan(ctx, applicable, tuple(d for d in applicable if d.numeric))
        self._plans[(source, path)] = plan
        return plan

    # --- per payload

    def detect(self, payload: Payload) -> list[Finding]:
        leaves = payload.leaves
        plans = self._plans
        raw: list[_Raw] = []
        texts: list[str] = []
        owners: list[int] = []
        for i, leaf in enumerate(leaves):
            value = leaf.value
            kind = value.__class__
            if kind is str:
                if not value:
                    continue
                if len(value) > MAX_SCAN_CHARS:
                    value = value[:MAX_SCAN_CHARS]
                if not value.isascii():
                    value = safe_text(value)  # lone surrogates would break re2
                texts.append(value)
                owners.append(i)
            elif kind is not int and kind is not float:
                continue  # None, bool
            plan = plans.get((leaf.source, leaf.path))
            if plan is None:
                plan = self._plan(leaf.source, leaf.path)
            for detector in plan.text if kind is str else plan.numbers:
                hit = detector.inspect(value, plan.ctx)
                if hit is not None:
                    raw.append(_Raw(i, detector, hit))
        identity_hits: list[tuple[int, int, int, IdentityForm, str]] = []
        if texts:
            joined = "\n".join(texts)
            starts = [0, *accumulate(len(t) + 1 for t in texts)]
            # ASCII text (the common case) is scanned as bytes: same offsets, less work.
            data: str | bytes = joined.encode("ascii") if joined.isascii() else joined
            fired = self._prefilter.Match(data)
            for number in sorted(fired or ()):
                detector, regex, byte_regex = self._patterned[number]
                scan = byte_regex if isinstance(data, bytes) else regex
                self._run_pattern(detector, scan, data, joined, texts, starts, owners,
                                  leaves, raw)
            if self._index is not None:
                for start, end, form in self._index.matches(joined):
                    j = bisect_right(starts, start) - 1
                    offset = starts[j]
                    if end <= offset + len(texts[j]):
                        identity_hits.append(
                            (owners[j], start - offset, end - offset, form, joined[start:end])
                        )
        findings = self._findings(leaves, raw)
        findings.extend(self._identity_findings(leaves, identity_hits))
        return _drop_summary_repeats(findings)

    def _run_pattern(
        self,
        detector: Detector,
        regex: Any,
        data: str | bytes,
        joined: str,
        texts: list[str],
        starts: list[int],
        owners: list[int],
        leaves: list[Leaf],
        raw: list[_Raw],
    ) -> None:
        per_leaf: dict[int, int] = {}
        values: dict[int, str] = {}
        examined = 0
        for match in regex.finditer(data):
            examined += 1
            if examined > MAX_MATCHES:
                break
            start, end = match.span()
            j = bisect_right(starts, start) - 1
            offset = starts[j]
            length = len(texts[j])
            if end > offset + length or per_leaf.get(j, 0) >= MAX_HITS_PER_LEAF:
                continue
            value = values.get(j)
            if value is None:
                value = values[j] = joined[offset : offset + length]
            leaf = leaves[owners[j]]
            plan = self._plans.get((leaf.source, leaf.path)) or self._plan(leaf.source, leaf.path)
            hit = detector.accept(value, start - offset, end - offset, plan.ctx)
            if hit is not None:
                per_leaf[j] = per_leaf.get(j, 0) + 1
                raw.append(_Raw(owners[j], detector, hit))

    # --- hits to findings

    def _findings(self, leaves: list[Leaf], raw: list[_Raw]) -> list[Finding]:
        order = {d.name: n for n, d in enumerate(self.detectors)}
        singles: dict[tuple[str, str], list[_Raw]] = {}
        groups: dict[tuple[str, str, tuple[PathPart, ...]], list[_Raw]] = {}
        for item in raw:
            leaf = leaves[item.leaf]
            if item.hit.group is not None:
                key = (item.detector.type, leaf.source, leaf.path[: item.hit.group])
                groups.setdefault(key, []).append(item)
            else:
                singles.setdefault((leaf.location, item.detector.type), []).append(item)
        ranked: list[tuple[int, int, Finding]] = []
        for (location, _), items in singles.items():
            for item in _most_specific(items):
                ranked.append((item.leaf, order[item.detector.name],
                               _finding(item.detector, item.hit, location, item.hit.text,
                                        redact(item.detector.type, item.hit.text))))
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
                           _finding(detector, hit, location_of(source, path), value, evidence)))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [finding for _, _, finding in ranked]

    def _identity_findings(
        self,
        leaves: list[Leaf],
        hits: list[tuple[int, int, int, IdentityForm, str]],
    ) -> list[Finding]:
        by_leaf: dict[int, list[tuple[int, int, IdentityForm, str]]] = {}
        for leaf_i, start, end, form, text in hits:
            by_leaf.setdefault(leaf_i, []).append((start, end, form, text))
        out: list[Finding] = []
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
                out.append(_identity_finding(form, text, location))
        return out


def _most_specific(items: list[_Raw]) -> list[_Raw]:
    """Drop repeats and hits whose text lies inside another hit's text (Bearer ⊃ JWT)."""
    items = sorted(items, key=lambda item: (-len(item.hit.text), -item.hit.confidence))
    kept: list[_Raw] = []
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


def _finding(detector: Detector, hit: Hit, location: str, value: str, evidence: str) -> Finding:
    severity = hit.severity
    if severity_rank(severity) < _FLOOR:
        severity = "medium"  # personal data and meeting content are never below medium
    return Finding(
        type=detector.type,
        category=detector.category,
        severity=severity,
        location=location,
        detector=detector.name,
        evidence=evidence,
        encoding=None,
        confidence=round(hit.confidence, 3),
        reason=hit.reason,
        fingerprint=fingerprint(value),
        value=value,
    )


def _identity_evidence(form: IdentityForm, text: str) -> str:
    encoding = form.encoding
    if form.hashed:
        algo = encoding.split(">")[0].split("(")[0]
        return f"{algo}:{text[:4]}…"
    if encoding in ("plain", "case-folded", "url"):
        shown = unquote(text) if encoding == "url" else text
        kind = _IDENTITY_TYPE.get(form.field, "identity_match")
        return redact(kind, shown)
    return f"{encoding.split('>')[0]}:{text[:4]}…"


def _identity_finding(form: IdentityForm, text: str, location: str) -> Finding:
    reason = f"your declared {form.field.replace('_', ' ')} as {form.encoding}"
    if form.aligned:
        reason += " (inside a base64 blob)"
    return Finding(
        type="identity_match",
        category="personal_data",
        severity="high",
        location=location,
        detector="identity",
        evidence=_identity_evidence(form, text),
        encoding=form.encoding,
        confidence=0.95 if form.aligned else 1.0,
        reason=reason,
        fingerprint=fingerprint(text),
        value=text,
    )


def _drop_summary_repeats(findings: list[Finding]) -> list[Finding]:
    """The URL and the Cookie header repeat the query and cookie leaves: keep their
    findings only when no other location already reported the same value."""
    elsewhere = {(f.type, f.fingerprint) for f in findings if f.location not in _SUMMARY_LOCATIONS}
    return [
        f for f in findings
        if f.location not in _SUMMARY_LOCATIONS or (f.type, f.fingerprint) not in elsewhere
    ]
