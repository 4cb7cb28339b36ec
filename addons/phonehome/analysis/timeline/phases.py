"""Phases of a session (setup, sign-in, idle, meeting, screen share, mute, opt-out),
built from markers and the flows' own triggers; see `build_phases`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ...model import Marker

__all__ = ["PhaseSpan", "PhaseSweep", "PHASE_NAMES", "PHASE_TRIGGERS", "build_phases"]

PHASE_NAMES = ("setup", "sign_in", "idle", "opt_out", "meeting", "screen_share", "mute")

_RANK = {
    "setup": 0,
    "sign_in": 0,
    "idle": 0,
    "opt_out": 1,
    "meeting": 2,
    "screen_share": 3,
    "mute": 4,
}

PHASE_TRIGGERS: Mapping[str, str | None] = {
    "setup": "setup",
    "sign_in": "sign_in",
    "idle": None,
    "opt_out": None,
    "meeting": "in_meeting",
    "screen_share": "screen_share",
    "mute": "in_meeting",
}
"""The trigger a phase gives a flow by context (None: the phase says nothing)."""

_LIFECYCLE_TRIGGERS = frozenset({"setup", "sign_in", "app_start"})
_SETTLE_S = 30.0  # unexplained flows this close after sign-in still belong to it


class Timed(Protocol):
    """A flow as the phases see it: when it was sent and its trigger so far."""

    @property
    def timestamp(self) -> float: ...

    @property
    def trigger(self) -> str: ...


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    name: str
    start: float
    end: float
    opened_by: str
    """What started it: a marker's source ("auditor", "rule:<id>") or "flows"."""

    @property
    def rank(self) -> int:
        return _RANK[self.name]


def _pairs(
    markers: Sequence[Marker], opening: str, closing: str, end: float
) -> list[tuple[float, float, str]]:
    """(start, end, opened_by) per opening … closing pair; repeats while open are ignored."""
    spans: list[tuple[float, float, str]] = []
    opened: Marker | None = None
    for marker in markers:
        if marker.label == opening and opened is None:
            opened = marker
        elif marker.label == closing and opened is not None:
            spans.append((opened.timestamp, marker.timestamp, opened.source))
            opened = None
    if opened is not None:
        spans.append((opened.timestamp, max(end, opened.timestamp), opened.source))
    return spans


def _within_meeting(
    spans: list[tuple[float, float, str]], meetings: list[tuple[float, float, str]]
) -> list[tuple[float, float, str]]:
    """Cut each span at the end of the meeting it started in."""
    clipped = []
    for start, stop, source in spans:
        for m_start, m_end, _ in meetings:
            if m_start <= start <= m_end:
                stop = min(stop, m_end)
                break
        clipped.append((start, stop, source))
    return clipped


def _first(markers: Sequence[Marker], label: str) -> Marker | None:
    return next((m for m in markers if m.label == label), None)


def _lifecycle(
    flows: Sequence[Timed],
    markers: Sequence[Marker],
    start: float,
    end: float,
    first_meeting: float | None,
) -> list[PhaseSpan]:
    cutoff = end if first_meeting is None else first_meeting

    def early() -> Iterator[Timed]:  # the flows are in time order
        return itertools.takewhile(lambda f: f.timestamp <= cutoff, flows)

    def first_flow(trigger: str) -> float | None:
        return next((f.timestamp for f in early() if f.trigger == trigger), None)

    starts: list[tuple[float, str, str]] = []
    m_setup, m_sign, m_idle = (_first(markers, x) for x in ("setup", "sign_in", "idle"))
    if m_setup is not None:
        starts.append((m_setup.timestamp, "setup", m_setup.source))
    elif first_flow("setup") is not None:
        starts.append((start, "setup", "flows"))
    if m_sign is not None:
        starts.append((m_sign.timestamp, "sign_in", m_sign.source))
    elif (signed := first_flow("sign_in")) is not None:
        starts.append((signed, "sign_in", "flows"))

    if m_idle is not None:
        starts.append((m_idle.timestamp, "idle", m_idle.source))
    elif not starts:
        starts.append((start, "idle", "flows"))
    else:
        # idle begins with the first flow after the lifecycle flurry: the
        # last setup / sign-in / app-start flow, then unexplained flows that
        # follow each other within _SETTLE_S
        last = max(
            itertools.chain((t for t, _, _ in starts),
                            (f.timestamp for f in early() if f.trigger in _LIFECYCLE_TRIGGERS))
        )
        after = None
        for flow in flows:
            at = flow.timestamp
            if at <= last:
                continue
            if flow.trigger == "unknown" and at - last <= _SETTLE_S:
                last = at
                continue
            after = at
            break
        if first_meeting is not None:
            after = first_meeting if after is None else min(after, first_meeting)
        if after is not None:
            starts.append((after, "idle", "flows"))

    starts.sort(key=lambda s: s[0])
    return [
        PhaseSpan(name, at, starts[i + 1][0] if i + 1 < len(starts) else end, source)
        for i, (at, name, source) in enumerate(starts)
    ]


def _split_idle(span: PhaseSpan, meetings: list[tuple[float, float, str]]) -> list[PhaseSpan]:
    """The idle span with the meetings cut out of it."""
    pieces: list[PhaseSpan] = []
    cursor = span.start
    for m_start, m_end, _ in sorted(meetings):
        if m_end < cursor or m_start > span.end:
            continue
        if m_start > cursor:
            pieces.append(PhaseSpan("idle", cursor, m_start, span.opened_by))
        cursor = max(cursor, m_end)
    if cursor < span.end or (not pieces and cursor == span.end == span.start):
        pieces.append(PhaseSpan("idle", cursor, span.end, span.opened_by))
    return pieces


def build_phases(flows: Sequence[Timed], markers: Sequence[Marker]) -> list[PhaseSpan]:
    """Every phase of the session, ordered by start (then specificity).

    `flows` are sorted by timestamp and still carry their rule triggers;
    `markers` are sorted by timestamp.

    - setup → sign_in → idle, one after another: from `setup` / `sign_in` /
      `idle` markers, else from the first flows a rule gave `setup` or `sign_in`;
      idle begins with the first flow after the last setup / sign-in / app-start
      flow and the unexplained flows right after it (each within 30 s of the
      one before), and is split around meetings.
    - meeting: `meeting_join` … `meeting_leave` (or the session's end).
    - screen_share: `screen_share_start` … `screen_share_stop`, and mute:
      `muted` … `unmuted`; both end with the meeting they started in.
    - opt_out: from the first `opt_out` marker to the end.

    Spans are closed intervals. They may overlap; a flow's phase is the most
    specific span holding it (mute > screen_share > meeting > opt_out > the
    lifecycle phases), the later-starting one on a tie.
    """
    if not flows and not markers:
        return []
    times = [*(f.timestamp for f in flows[:1]), *(f.timestamp for f in flows[-1:]),
             *(m.timestamp for m in markers)]
    start, end = min(times), max(times)

    meetings = _pairs(markers, "meeting_join", "meeting_leave", end)
    shares = _within_meeting(
        _pairs(markers, "screen_share_start", "screen_share_stop", end), meetings
    )
    mutes = _within_meeting(_pairs(markers, "muted", "unmuted", end), meetings)

    spans: list[PhaseSpan] = []
    first_meeting = meetings[0][0] if meetings else None
    for span in _lifecycle(flows, markers, start, end, first_meeting):
        spans.extend(_split_idle(span, meetings) if span.name == "idle" else [span])
    spans.extend(PhaseSpan("meeting", *m) for m in meetings)
    spans.extend(PhaseSpan("screen_share", *s) for s in shares)
    spans.extend(PhaseSpan("mute", *m) for m in mutes)
    opt_out = _first(markers, "opt_out")
    if opt_out is not None:
        spans.append(PhaseSpan("opt_out", opt_out.timestamp, end, opt_out.source))
    return sorted(spans, key=lambda s: (s.start, s.rank))


class PhaseSweep:
    """The spans holding each time asked, most specific first; times never decrease, so
    no span is scanned twice."""

    def __init__(self, spans: Sequence[PhaseSpan]) -> None:
        self._spans = sorted(spans, key=lambda s: s.start)  # stable: their order on a tie
        self._order = {id(span): i for i, span in enumerate(spans)}
        self._next = 0
        self._open: list[PhaseSpan] = []

    def at(self, timestamp: float) -> list[PhaseSpan]:
        spans = self._spans
        while self._next < len(spans) and spans[self._next].start <= timestamp:
            self._open.append(spans[self._next])
            self._next += 1
        self._open = [s for s in self._open if s.end >= timestamp]
        holding = sorted((s for s in self._open if s.start <= timestamp),
                         key=lambda s: self._order[id(s)])
        return sorted(holding, key=lambda s: (s.rank, s.start), reverse=True)
