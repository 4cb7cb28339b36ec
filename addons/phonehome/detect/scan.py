"""What the texts of a payload hold, found in a few C passes.

What a text holds does not depend on where it sits, so each answer is memoized per
distinct text (see `TextScanner`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate, islice
from typing import Any, NamedTuple

import re2

from ..model import Leaf, Scalar
from .base import MAX_HITS_PER_LEAF, Detector, Hit, safe_text
from .cache import MAX_MEMO, MEMO_TEXT_CHARS, Plan, remember
from .identity import IdentityForm, IdentityIndex

__all__ = ["Scan", "Raw", "TextScanner", "NOTHING", "scannable", "MAX_SCAN_CHARS",
           "MAX_MATCHES"]

MAX_SCAN_CHARS = 1 << 20
"""Characters of one leaf that pattern detectors and the identity search look at."""
MAX_MATCHES = 4096
"""Pattern matches one detector examines per payload (hostile repetition bound)."""


class Scan(NamedTuple):
    """What one text holds wherever it sits (memoized per distinct text)."""

    fired: tuple[int, ...]
    """Set entries (detector regexes) to run for this text: single-line ones with
    matches in it, and the others whose prefilter occurs inside it."""
    spans: dict[int, tuple[tuple[int, int], ...]]
    """Every match of each fired single-line regex (at most MAX_MATCHES + 1)."""
    identity: tuple[tuple[int, int, IdentityForm], ...]
    """(start, end, form) of each identity match."""
    complete: bool = True
    """False when some regex's matches were not collected (the payload's match
    budget ran out before this text): good for that payload only, never remembered."""


NOTHING = Scan((), {}, ())
# Keys of the text memo that are not texts: null and booleans (and so 0 and 1)
# are passed over like texts holding nothing.
_NOT_TEXT: dict[Scalar, Scan] = {None: NOTHING, True: NOTHING, False: NOTHING}
_UNSEEN: Any = object()


class Raw(NamedTuple):
    """One detector's hit on one leaf, before it becomes a Finding."""

    leaf: int
    detector: Detector
    hit: Hit


def scannable(value: str) -> str:
    """The part of a leaf's text the detectors see, safe for re2."""
    if len(value) > MAX_SCAN_CHARS:
        value = value[:MAX_SCAN_CHARS]
    if not value.isascii():
        value = safe_text(value)  # lone surrogates would break re2
    return value


def _first(item: tuple[Any, ...]) -> Any:
    return item[0]


class TextScanner:
    """The pattern detectors' regexes (one re2.Set of their prefilters) and the identity
    automaton, with the memo of what each text holds and of accepted matches.

    What a text holds does not depend on where it sits: identity matches, matches
    of single-line patterns (`Detector.single_line`) and the prefilters of the
    others. Texts never seen are searched together: joined with "\\n", one
    automaton pass (pyahocorasick), one re2.Set pass, and the fired single-line
    regexes; each answer is memoized per distinct text. Matches then go to their
    detector's `accept`, text by text in payload order, under the same bounds as
    one scan of all the text (MAX_MATCHES per payload, MAX_HITS_PER_LEAF per leaf).
    """

    def __init__(self, detectors: Sequence[Detector], index: IdentityIndex | None) -> None:
        # One Set entry per (detector, regex); its prefilter is what the Set looks for.
        self.patterned: tuple[tuple[Detector, Any, Any], ...] = tuple(
            (d, regex, byte_regex)
            for d in detectors
            for regex, byte_regex in zip(d.regexes, d.byte_regexes, strict=True)
        )
        options = re2.Options()
        options.max_mem = 64 << 20
        self.prefilter = re2.Set.SearchSet(options)
        for detector in detectors:
            for prefilter in detector.prefilters:
                self.prefilter.Add(prefilter)
        self.prefilter.Compile()
        self.index = index
        self.single_line = tuple(d.single_line for d, _, _ in self.patterned)
        self.scanned: dict[Scalar, Scan] = dict(_NOT_TEXT)
        """What each short text holds (texts holding nothing map to NOTHING)."""
        self._accepted: dict[tuple[int, int, str, int, int], Hit | None] = {}

    # --- per text

    def search_fresh(
        self, fresh: list[tuple[int, str, Plan]], marked: list[tuple[int, str, Plan, Scan]]
    ) -> list[tuple[int, str, Plan, Scan]]:
        """Search the fresh texts (each distinct one once), remember the short ones,
        and return `marked` with those holding something added, in leaf order."""
        texts = list(dict.fromkeys([text for _, text, _ in fresh]))
        found = self.search(texts)
        memo = self.scanned
        if len(memo) + len(texts) > MAX_MEMO:
            memo.clear()
            memo.update(_NOT_TEXT)
        for j, text in enumerate(texts):
            if len(text) <= MEMO_TEXT_CHARS:
                scan = found.get(j, NOTHING)
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

    def search(self, texts: list[str]) -> dict[int, Scan]:
        """What each of these distinct texts holds (by index; texts holding nothing
        are left out): identity matches, single-line pattern matches, and the
        prefilters of newline-spanning patterns that fire inside the text. All are
        searched at once over the texts joined by "\\n"; none of them crosses a
        newline, so what one text holds never depends on its neighbours."""
        joined = "\n".join(texts)
        starts: list[int] = []
        identity: dict[int, list[tuple[int, int, IdentityForm]]] = {}
        if self.index is not None:
            matches = self.index.matches(joined)
            if matches:
                starts = [0, *accumulate(len(t) + 1 for t in texts)]
                for start, end, form in matches:
                    j = bisect_right(starts, start) - 1
                    offset = starts[j]
                    if end <= offset + len(texts[j]):
                        identity.setdefault(j, []).append((start - offset, end - offset, form))
        # ASCII text (the common case) is scanned as bytes: same offsets, less work.
        data: str | bytes = joined.encode("ascii") if joined.isascii() else joined
        fired = self.prefilter.Match(data)
        spans: dict[int, dict[int, list[tuple[int, int]]]] = {}
        unsearched: set[int] = set()
        within: dict[int, set[int]] = {}
        if fired:
            if not starts:
                starts = [0, *accumulate(len(t) + 1 for t in texts)]
            spanning = False
            for number in sorted(fired):
                if self.single_line[number]:
                    unsearched |= self._collect_spans(number, texts, data, starts, spans)
                else:
                    spanning = True
            if spanning:
                # A pattern that may span a newline counts only where its prefilter
                # occurs inside one text.
                within = self._fired_within(texts)
        out: dict[int, Scan] = {}
        for j in sorted(identity.keys() | spans.keys() | within.keys() | unsearched):
            found = spans.get(j, {})
            numbers = set(found)
            numbers.update(n for n in within.get(j, ()) if not self.single_line[n])
            out[j] = Scan(
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
        _, regex, byte_regex = self.patterned[number]
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
        """Set entries whose prefilter occurs inside each text (not across two)."""
        within: dict[int, set[int]] = {}
        for j, text in enumerate(texts):
            fired = self.prefilter.Match(text.encode("ascii") if text.isascii() else text)
            if fired:
                within[j] = set(fired)
        return within

    # --- matches to hits

    def accept_spans(
        self, number: int, marked: list[tuple[int, str, Plan, Scan]], raw: list[Raw]
    ) -> None:
        """A single-line pattern's matches, text by text in payload order: the same
        matches, the same order and the same bounds as a scan of the joined text."""
        detector = self.patterned[number][0]
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
                hit = self._accept(number, detector, plan, value, start, end)
                if hit is not None:
                    kept += 1
                    raw.append(Raw(i, detector, hit))

    def _accept(self, number: int, detector: Detector, plan: Plan, value: str, start: int,
                end: int) -> Hit | None:
        """`detector.accept` of one match, remembered for short texts."""
        key = (number, plan.number, value, start, end)
        hit = self._accepted.get(key, _UNSEEN)
        if hit is _UNSEEN:
            hit = detector.accept(value, start, end, plan.ctx)
            if len(value) <= MEMO_TEXT_CHARS:
                remember(self._accepted, key, hit)
        return hit

    def run_pattern(
        self, number: int, leaves: list[Leaf], plans: list[Plan], raw: list[Raw]
    ) -> None:
        """A pattern that may span a newline: one scan of every text joined by "\\n",
        each match mapped back to its leaf (bisect); matches across leaves are dropped."""
        detector, regex, byte_regex = self.patterned[number]
        owners = [i for i, leaf in enumerate(leaves) if leaf.value.__class__ is str and leaf.value]
        texts = [scannable(leaves[i].value) for i in owners]  # type: ignore[arg-type]
        text_plans = [plans[i] for i in owners]
        joined = "\n".join(texts)
        starts = [0, *accumulate(len(t) + 1 for t in texts)]
        data: str | bytes = joined.encode("ascii") if joined.isascii() else joined
        scan = byte_regex if isinstance(data, bytes) else regex
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
            hit = self._accept(number, detector, plan, value, start, end)
            if hit is not None:
                per_leaf[j] = per_leaf.get(j, 0) + 1
                raw.append(Raw(owners[j], detector, hit))
