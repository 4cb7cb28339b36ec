"""The detection engine: every detector and the identity search, once per payload.

How one payload is scanned:

1. Places. The tuple of leaf locations (the payload's shape) maps to a
   memoized list of plans, one per leaf: its Context and the key-driven
   detectors that apply there (decided once per distinct place). A body
   location written the way decode writes it names its path; other places
   are checked against their path every time.
2. Texts. What a text holds does not depend on where it sits: identity
   matches, matches of single-line patterns (`Detector.single_line`) and the
   triggers of the others. That is memoized per distinct text, so one C-level
   map over the leaves passes over every text already seen holding nothing.
   Texts never seen are searched together: joined with "\n", one automaton
   pass (pyahocorasick), one re2.Set pass, and the fired single-line regexes.
3. Matches. Each single-line match goes to its detector's `accept`, text by
   text in payload order, under the same bounds as one scan of all the text
   (MAX_MATCHES per payload, MAX_HITS_PER_LEAF per leaf). A pattern that may
   span a newline (Bearer tokens) is still run over all of the payload's text
   joined, as before.
4. Key-driven detectors run on the leaves their plans name; where one reads
   the value's neighbours (events around it, sibling keys, the request host),
   the leaf's Context gets them first (`base.neighbours_of`).

Answers are pure functions of (place, value), so accept and inspect results
and the findings made from them are memoized too: every memo is bounded and
starts over when full, and values longer than MEMO_TEXT_CHARS are never kept.
Hits then become Findings with redacted evidence; list-shaped hits
(participants, level series) merge into one finding per container.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from itertools import accumulate, compress, count, islice, repeat
from operator import attrgetter, is_not
from typing import Any, NamedTuple
from urllib.parse import unquote

import re2

from ..model import Finding, Leaf, PathPart, Payload, Scalar, severity_rank
from ..terms import format_location
from .base import MAX_HITS_PER_LEAF, Context, Detector, Hit, neighbours_of, safe_text
from .content import (
    AudioLevelDetector,
    ChatMessageDetector,
    FileNameDetector,
    MeetingTitleDetector,
    ParticipantListDetector,
    TranscriptDetector,
)
from .identity import Identity, IdentityForm, IdentityIndex
from .persistent import IdentifierScanner
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
    OrganizationNameDetector,
    PersonNameDetector,
    PhoneDetector,
    UsernameDetector,
    WifiNetworkDetector,
)
from .redact import EPHEMERAL_KEY, fingerprint, redact
from .vendor_tags import merge_tag_findings, tag_findings

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
    WifiNetworkDetector,
    OrganizationNameDetector,
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
MAX_SHAPES = 256
"""Payload shapes (tuples of leaf locations) remembered before the memo starts over."""
MAX_SHAPE_LEAVES = 2048
"""Payloads with more leaves are planned leaf by leaf; their shape is not kept."""
MAX_MEMO = 8192
"""Entries in each per-value memo (inspect, accept, identity, findings) before it starts over."""
MEMO_TEXT_CHARS = 512
"""Longer values are scanned every time, never kept in a memo."""

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
_FLOORED = frozenset({"personal_data", "meeting_content"})
# Whole-request leaves that repeat what other leaves already hold.
_SUMMARY_LOCATIONS = frozenset({"url", "header:cookie", "header:Cookie"})
_IDENTITY = "identity"


class _Plan(NamedTuple):
    ctx: Context
    text: tuple[Detector, ...]
    numbers: tuple[Detector, ...]
    number: int
    """Shared by every place with an equal Context (a key for per-value memos)."""
    source: str
    path: tuple[PathPart, ...]
    needs_check: bool
    """False for a body location written the way decode writes it (`location_of`):
    such a location names exactly one path, so a leaf there needs no path check."""
    neighbours: bool = False
    """Some detector here reads the value's neighbours (Detector.reads_neighbours)."""


class _Scan(NamedTuple):
    """What one text holds wherever it sits (memoized per distinct text)."""

    fired: tuple[int, ...]
    """Set entries (detector regexes) to run for this text: single-line ones with
    matches in it, and the others whose trigger occurs inside it."""
    spans: dict[int, tuple[tuple[int, int], ...]]
    """Every match of each fired single-line regex (at most MAX_MATCHES + 1)."""
    identity: tuple[tuple[int, int, IdentityForm], ...]
    """(start, end, form) of each identity match."""
    complete: bool = True
    """False when some regex's matches were not collected (the payload's match
    budget ran out before this text): good for that payload only, never remembered."""


_NOTHING = _Scan((), {}, ())
# Keys of the text memo that are not texts: null and booleans (and so 0 and 1)
# are passed over like texts holding nothing.
_NOT_TEXT: dict[Scalar, _Scan] = {None: _NOTHING, True: _NOTHING, False: _NOTHING}
_LOCATION = attrgetter("location")
_VALUE = attrgetter("value")


_UNSEEN: Any = object()


class _Shape:
    """The plans of one payload shape, and the leaves that need a closer look."""

    __slots__ = ("plans", "keyed", "checks")

    def __init__(self, plans: list[_Plan]) -> None:
        self.plans = plans
        self.keyed = [i for i, plan in enumerate(plans) if plan.text or plan.numbers]
        """Leaves some key-driven detector looks at."""
        self.checks = [i for i, plan in enumerate(plans) if plan.needs_check]
        """Leaves whose location does not name their path on its own."""


def _first(item: tuple[Any, ...]) -> Any:
    return item[0]


def _scannable(value: str) -> str:
    """The part of a leaf's text the detectors see, safe for re2."""
    if len(value) > MAX_SCAN_CHARS:
        value = value[:MAX_SCAN_CHARS]
    if not value.isascii():
        value = safe_text(value)  # lone surrogates would break re2
    return value


class _Raw(NamedTuple):
    leaf: int
    detector: Detector
    hit: Hit


location_of = format_location
"""The report location of a container path (`$.a.b[0]`, `query:data.x`)."""


class DetectionEngine:
    """Every detector, compiled once; `detect(payload)` per flow."""

    def __init__(self, identity: Identity | None = None, key: bytes | None = None) -> None:
        self.identity = identity
        self.key = key or EPHEMERAL_KEY
        """Keys every fingerprint (`fingerprint`); the store's per-install secret."""
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
        self._single_line = tuple(d.single_line for d, _, _ in self._patterned)
        self._order = {d.name: n for n, d in enumerate(self.detectors)}
        # Bounded memos of pure answers, per place and per (place, value); each
        # starts over when full. Values longer than MEMO_TEXT_CHARS are not kept.
        self._plans: dict[str, _Plan] = {}
        self._shapes: dict[tuple[str, ...], _Shape] = {}
        self._context_numbers: dict[Context, int] = {}
        self._next_context = count()
        self._inspected: dict[tuple[int, str], tuple[tuple[Detector, Hit], ...]] = {}
        self._accepted: dict[tuple[int, int, str, int, int], Hit | None] = {}
        self._scanned: dict[Scalar, _Scan] = dict(_NOT_TEXT)
        self._made: dict[tuple[Any, ...], tuple[Hit | None, Finding]] = {}
        self._identifiers = IdentifierScanner(self.key)

    # --- per path

    def _plan(self, location: str, source: str, path: tuple[PathPart, ...]) -> _Plan:
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
            self._context_numbers.clear()
        ctx = Context.of(path, source)
        # Paths that differ only in list indices have equal contexts: one number for
        # all of them, so per-value answers are shared (numbers are never reused).
        number = self._context_numbers.get(ctx)
        if number is None:
            number = self._context_numbers[ctx] = next(self._next_context)
        applicable = tuple(d for d in self.detectors if d.applies(ctx))
        canonical = source == "body" and location == location_of(source, path)
        plan = _Plan(ctx, applicable, tuple(d for d in applicable if d.numeric), number,
                     source, path, not canonical,
                     any(d.reads_neighbours(ctx) for d in applicable))
        self._plans[location] = plan
        return plan

    # --- per payload

    def identifiers(self, payload: Payload) -> list[dict[str, str]]:
        """`identifier_candidates(payload)`, with this engine's memo of id-like keys."""
        return self._identifiers.candidates(payload)

    def _shape_of(self, leaves: list[Leaf]) -> _Shape:
        """The plans of all leaves, memoized per payload shape (the tuple of leaf
        locations: flows of one kind repeat it). A body location written the way
        decode writes it names its path; the other places are checked each time."""
        locations = tuple(map(_LOCATION, leaves)) if len(leaves) <= MAX_SHAPE_LEAVES else None
        shape = self._shapes.get(locations) if locations is not None else None
        if shape is None:
            plans = []
            for leaf in leaves:
                plan = self._plans.get(leaf.location)
                if plan is None or plan.source != leaf.source or plan.path != leaf.path:
                    plan = self._plan(leaf.location, leaf.source, leaf.path)
                plans.append(plan)
            shape = _Shape(plans)
            if locations is not None:
                _remember(self._shapes, locations, shape, MAX_SHAPES)
            return shape
        checked = None
        for i in shape.checks:
            leaf = leaves[i]
            plan = shape.plans[i]
            if plan.source != leaf.source or plan.path != leaf.path:
                if checked is None:
                    checked = list(shape.plans)
                checked[i] = self._plan(leaf.location, leaf.source, leaf.path)
        return shape if checked is None else _Shape(checked)

    def detect(self, payload: Payload) -> list[Finding]:
        leaves = payload.leaves
        if not leaves:
            return []
        shape = self._shape_of(leaves)
        plans = shape.plans
        scanned = self._scanned
        # Most leaves hold a text already seen holding nothing, at a place no
        # key-driven detector cares about: those are passed over at C speed.
        try:
            scans = list(map(scanned.get, map(_VALUE, leaves)))
        except TypeError:  # an unhashable value in a hand-made leaf: skipped below
            scans = [scanned.get(leaf.value) if leaf.value.__class__ is str else None
                     for leaf in leaves]
        todo: Iterable[int] = compress(count(), map(is_not, scans, repeat(_NOTHING)))
        if shape.keyed:
            todo = sorted(set(todo).union(shape.keyed))
        raw: list[_Raw] = []
        url: str | None = None
        # Texts that hold something, and texts never seen: (leaf, text, plan[, scan]).
        marked: list[tuple[int, str, _Plan, _Scan]] = []
        fresh: list[tuple[int, str, _Plan]] = []
        for i in todo:
            value = leaves[i].value
            kind = value.__class__
            if kind is str:
                if not value:
                    continue
                plan = plans[i]
                scan = scans[i]
                if scan is None:
                    if len(value) > MAX_SCAN_CHARS or not value.isascii():
                        value = _scannable(value)
                        scan = scanned.get(value)
                    if scan is None:
                        fresh.append((i, value, plan))
                if scan is not None and scan is not _NOTHING:
                    marked.append((i, value, plan, scan))
                if plan.text:
                    ctx = plan.ctx
                    if plan.neighbours:
                        if url is None:
                            url = _url_of(leaves)
                        ctx = _around(payload, leaves[i], ctx, url)
                    for detector, hit in self._inspect_text(plan, value, ctx):
                        raw.append(_Raw(i, detector, hit))
            elif kind is int or kind is float:
                plan = plans[i]
                if not plan.numbers:
                    continue
                ctx = plan.ctx
                if plan.neighbours:
                    if url is None:
                        url = _url_of(leaves)
                    ctx = _around(payload, leaves[i], ctx, url)
                for detector in plan.numbers:
                    hit = detector.inspect(value, ctx)
                    if hit is not None:
                        raw.append(_Raw(i, detector, hit))
        if fresh:
            marked = self._search_fresh(fresh, marked)
        identity_hits: list[tuple[int, int, int, IdentityForm, str]] = []
        if marked:
            fired = {number for entry in marked for number in entry[3].fired}
            for number in sorted(fired):
                if self._single_line[number]:
                    self._accept_spans(number, marked, raw)
                else:
                    self._run_pattern(number, leaves, plans, raw)
            for i, text, _, scan in marked:
                for start, end, form in scan.identity:
                    identity_hits.append((i, start, end, form, text[start:end]))
        findings = self._findings(leaves, raw)
        findings.extend(self._identity_findings(leaves, identity_hits))
        findings = merge_tag_findings(findings, tag_findings(payload, self.key))
        return _drop_summary_repeats(findings)

    def _inspect_text(self, plan: _Plan, value: str, ctx: Context
                      ) -> tuple[tuple[Detector, Hit], ...]:
        """Hits of the key-driven detectors for a string at this place (memoized)."""
        key: tuple[Any, ...] = (plan.number, value)
        if plan.neighbours:
            key += (ctx.event, ctx.siblings, ctx.host)
        found = self._inspected.get(key)
        if found is None:
            found = tuple(
                (detector, hit)
                for detector in plan.text
                if (hit := detector.inspect(value, ctx)) is not None
            )
            if len(value) <= MEMO_TEXT_CHARS:
                _remember(self._inspected, key, found)
        return found

    # --- per text

    def _search_fresh(
        self, fresh: list[tuple[int, str, _Plan]], marked: list[tuple[int, str, _Plan, _Scan]]
    ) -> list[tuple[int, str, _Plan, _Scan]]:
        """Search the fresh texts (each distinct one once), remember the short ones,
        and return `marked` with those holding something added, in leaf order."""
        texts = list(dict.fromkeys([text for _, text, _ in fresh]))
        found = self._search(texts)
        memo = self._scanned
        if len(memo) + len(texts) > MAX_MEMO:
            memo.clear()
            memo.update(_NOT_TEXT)
        for j, text in enumerate(texts):
            if len(text) <= MEMO_TEXT_CHARS:
                scan = found.get(j, _NOTHING)
                if scan.complete:
                    memo[text] = scan
        if not found:
            return marked
        by_text = {texts[j]: scan for j, scan in found.items()}
        marked = marked + [
            (i, text, plan, by_text[text]) for i, text, plan in fresh if text in by_text
        ]
        marked.sort(key=_first)
        return marked

    def _search(self, texts: list[str]) -> dict[int, _Scan]:
        """What each of these distinct texts holds (by index; texts holding nothing
        are left out): identity matches, single-line pattern matches, and the
        triggers of newline-spanning patterns that fire inside the text. All are
        searched at once over the texts joined by "\\n"; none of them crosses a
        newline, so what one text holds never depends on its neighbours."""
        joined = "\n".join(texts)
        starts: list[int] = []
        identity: dict[int, list[tuple[int, int, IdentityForm]]] = {}
        if self._index is not None:
            matches = self._index.matches(joined)
            if matches:
                starts = [0, *accumulate(len(t) + 1 for t in texts)]
                for start, end, form in matches:
                    j = bisect_right(starts, start) - 1
                    offset = starts[j]
                    if end <= offset + len(texts[j]):
                        identity.setdefault(j, []).append((start - offset, end - offset, form))
        # ASCII text (the common case) is scanned as bytes: same offsets, less work.
        data: str | bytes = joined.encode("ascii") if joined.isascii() else joined
        fired = self._prefilter.Match(data)
        spans: dict[int, dict[int, list[tuple[int, int]]]] = {}
        unsearched: set[int] = set()
        within: dict[int, set[int]] = {}
        if fired:
            if not starts:
                starts = [0, *accumulate(len(t) + 1 for t in texts)]
            spanning = False
            for number in sorted(fired):
                if self._single_line[number]:
                    unsearched |= self._collect_spans(number, texts, data, starts, spans)
                else:
                    spanning = True
            if spanning:
                # A pattern that may span a newline counts only where its trigger
                # occurs inside one text.
                within = self._fired_within(texts)
        out: dict[int, _Scan] = {}
        for j in sorted(identity.keys() | spans.keys() | within.keys() | unsearched):
            found = spans.get(j, {})
            numbers = set(found)
            numbers.update(n for n in within.get(j, ()) if not self._single_line[n])
            out[j] = _Scan(
                tuple(sorted(numbers)),
                {number: tuple(matched) for number, matched in found.items()},
                tuple(identity.get(j, ())),
                j not in unsearched,
            )
        return out

    def _collect_spans(
        self,
        number: int,
        texts: list[str],
        data: str | bytes,
        starts: list[int],
        spans: dict[int, dict[int, list[tuple[int, int]]]],
    ) -> set[int]:
        """Every match of a single-line regex in each text, at most MAX_MATCHES + 1
        per text (more than one payload's scan examines); returns the texts left
        unsearched. One pass over the joined texts; when that sees too many matches,
        text by text in order until MAX_MATCHES + 1 are found: a payload holding
        these texts in this order has spent its budget before the rest."""
        _, regex, byte_regex = self._patterned[number]
        scan = byte_regex if isinstance(data, bytes) else regex
        limit = MAX_MATCHES + 1
        matches = list(islice(scan.finditer(data), limit))
        if len(matches) < limit:
            for match in matches:
                start, end = match.span()
                j = bisect_right(starts, start) - 1
                offset = starts[j]
                if end > offset + len(texts[j]):
                    continue  # cannot happen for a true single-line pattern
                spans.setdefault(j, {}).setdefault(number, []).append(
                    (start - offset, end - offset)
                )
            return set()
        total = 0
        for j, text in enumerate(texts):
            if total >= limit:
                return set(range(j, len(texts)))
            tdata: str | bytes = text.encode("ascii") if text.isascii() else text
            tscan = byte_regex if isinstance(tdata, bytes) else regex
            found = [m.span() for m in islice(tscan.finditer(tdata), limit)]
            if found:
                spans.setdefault(j, {})[number] = found
                total += len(found)
        return set()

    def _fired_within(self, texts: list[str]) -> dict[int, set[int]]:
        """Set entries whose trigger occurs inside each text (not across two)."""
        within: dict[int, set[int]] = {}
        for j, text in enumerate(texts):
            fired = self._prefilter.Match(text.encode("ascii") if text.isascii() else text)
            if fired:
                within[j] = set(fired)
        return within

    def _accept_spans(
        self, number: int, marked: list[tuple[int, str, _Plan, _Scan]], raw: list[_Raw]
    ) -> None:
        """A single-line pattern's matches, text by text in payload order: the same
        matches, the same order and the same bounds as a scan of the joined text."""
        detector = self._patterned[number][0]
        accepted = self._accepted
        examined = 0
        for i, value, plan, scan in marked:
            spans = scan.spans.get(number)
            if not spans:
                continue
            kept = 0
            for start, end in spans:
                examined += 1
                if examined > MAX_MATCHES:
                    return
                if kept >= MAX_HITS_PER_LEAF:
                    continue
                key = (number, plan.number, value, start, end)
                hit = accepted.get(key, _UNSEEN)
                if hit is _UNSEEN:
                    hit = detector.accept(value, start, end, plan.ctx)
                    if len(value) <= MEMO_TEXT_CHARS:
                        _remember(accepted, key, hit)
                if hit is not None:
                    kept += 1
                    raw.append(_Raw(i, detector, hit))

    def _run_pattern(
        self, number: int, leaves: list[Leaf], plans: list[_Plan], raw: list[_Raw]
    ) -> None:
        """A pattern that may span a newline: one scan of every text joined by "\\n",
        each match mapped back to its leaf (bisect); matches across leaves are dropped."""
        detector, regex, byte_regex = self._patterned[number]
        owners = [i for i, leaf in enumerate(leaves) if leaf.value.__class__ is str and leaf.value]
        texts = [_scannable(leaves[i].value) for i in owners]  # type: ignore[arg-type]
        text_plans = [plans[i] for i in owners]
        joined = "\n".join(texts)
        starts = [0, *accumulate(len(t) + 1 for t in texts)]
        data: str | bytes = joined.encode("ascii") if joined.isascii() else joined
        scan = byte_regex if isinstance(data, bytes) else regex
        accepted = self._accepted
        per_leaf: dict[int, int] = {}
        examined = 0
        for match in scan.finditer(data):
            examined += 1
            if examined > MAX_MATCHES:
                break
            start, end = match.span()
            j = bisect_right(starts, start) - 1
            offset = starts[j]
            value = texts[j]
            if end > offset + len(value) or per_leaf.get(j, 0) >= MAX_HITS_PER_LEAF:
                continue
            start -= offset
            end -= offset
            plan = text_plans[j]
            key = (number, plan.number, value, start, end)
            hit = accepted.get(key, _UNSEEN)
            if hit is _UNSEEN:
                hit = detector.accept(value, start, end, plan.ctx)
                if len(value) <= MEMO_TEXT_CHARS:
                    _remember(accepted, key, hit)
            if hit is not None:
                per_leaf[j] = per_leaf.get(j, 0) + 1
                raw.append(_Raw(owners[j], detector, hit))

    # --- hits to findings

    def _findings(self, leaves: list[Leaf], raw: list[_Raw]) -> list[Finding]:
        if not raw:
            return []
        order = self._order
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
        made = self._made
        for (location, _), items in singles.items():
            for item in _most_specific(items) if len(items) > 1 else items:
                detector, hit = item.detector, item.hit
                # Hits come from memos, so the same object recurs: key on its id,
                # and keep the hit to be sure the id still names it.
                memo_key = (id(hit), detector.name, location)
                entry = made.get(memo_key)
                if entry is not None and entry[0] is hit:
                    finding = entry[1]
                else:
                    finding = _finding(detector, hit, location, hit.text,
                                       redact(detector.type, hit.text), self.key)
                    if len(hit.text) <= MEMO_TEXT_CHARS:
                        _remember(made, memo_key, (hit, finding))
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

    def _identity_findings(
        self,
        leaves: list[Leaf],
        hits: list[tuple[int, int, int, IdentityForm, str]],
    ) -> list[Finding]:
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
                entry = made.get(memo_key)
                if entry is None:
                    declared = self.identity.values[form.index][1] if self.identity else text
                    entry = (None, _identity_finding(form, text, declared, location, self.key))
                    _remember(made, memo_key, entry)
                out.append(entry[1])
        return out


def _url_of(leaves: list[Leaf]) -> str:
    """The request URL (its leaf), or "" for a payload without one."""
    for leaf in leaves:
        if leaf.source == "url" and leaf.value.__class__ is str:
            return leaf.value  # type: ignore[return-value]
    return ""


def _around(payload: Payload, leaf: Leaf, ctx: Context, url: str) -> Context:
    """`ctx` with the leaf's neighbours: only leaves some `neighbours` detector reads."""
    tree = payload.tree if leaf.source == "body" else None
    event, siblings, host = neighbours_of(tree, leaf.path, url)
    return ctx.around(event, siblings, host)


def _remember(memo: dict[Any, Any], key: Any, value: Any, limit: int = 0) -> None:
    """memo[key] = value, starting the memo over when it holds `limit` (MAX_MEMO) entries."""
    if len(memo) >= (limit or MAX_MEMO):
        memo.clear()
    memo[key] = value


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
    kind = _IDENTITY_TYPE.get(form.field, "identity_match")
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
