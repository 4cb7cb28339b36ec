"""apply_timeline: phases, triggers, cadence and mute over frozen `TimelineFlow` views,
each flow's conclusions returned as a `FlowContext`. A flow no rule gave a trigger takes,
in order: `name` (strong words of its events' names), `cadence`, a weak name hint the
timing allows, an ambiguous name the batch or timing settles, `marker`, `context` (a
phase, or the moments after a leave); else `unknown`, with how sure each is and why.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from msgspec import UNSET, UnsetType

from ...model import Marker
from ..columns import IdList, Interned, Lookup
from .cadence import CadenceEstimate, estimate_cadence
from .markers import LABEL_TRIGGERS, _flow_markers, collect_markers, marker_to_dict
from .names import (
    FIRST_LAUNCH,
    NAME_SOURCE_CONFIDENCE,
    FlowHints,
    event_triggers,
    name_hints,
    refine_strong,
    settle_ambiguous,
    weigh_weak,
)
from .phases import PHASE_TRIGGERS, PhaseSpan, PhaseSweep, build_phases
from .values import (
    TRIGGER_BINS,
    UNNAMED_ENDPOINT,
    Contexts,
    FlowContext,
    Timeline,
    TimelineColumns,
    TimelineFlow,
    TimelineSettings,
)

__all__ = ["apply_timeline", "timeline_from_report"]

_State = tuple[str, str, "str | None", "str | UnsetType"]
"""A flow's (trigger, trigger_source, trigger_confidence, trigger_reason)."""


def _assigned(trigger: str, source: str, confidence: str | None = "",
              reason: str = "") -> _State:
    return (trigger, source,
            NAME_SOURCE_CONFIDENCE.get(source) if confidence == "" else confidence,
            reason or UNSET)


def _initial(shape: TimelineFlow, hint: FlowHints) -> _State:
    """A flow's conclusion before its timing is read: its rule's, or a strong name's."""
    if shape.trigger != "unknown":
        return shape.trigger, shape.trigger_source or "rule", "high", shape.trigger_reason
    if hint.strong:  # as good as a rule for the phases
        strongest = hint.strongest()
        return _assigned(strongest.trigger or "unknown", "name", "high", strongest.reason)
    return shape.trigger, shape.trigger_source, None, shape.trigger_reason


def _event_names(flow: TimelineFlow) -> list[str | None]:
    names = list(dict.fromkeys(e.name for e in flow.events if e.name))
    return names or [None]


class _Timed(NamedTuple):
    timestamp: float
    trigger: str


class _Sorted(Sequence[_Timed]):
    """The flows in time order, as the phases read them (time, trigger so far)."""

    def __init__(self, times: Sequence[float], order: Sequence[int], shape_of: Sequence[int],
                 initial: Sequence[_State]) -> None:
        self._times, self._order, self._shape_of, self._initial = times, order, shape_of, initial

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = self._order[index]
        return _Timed(self._times[position], self._initial[self._shape_of[position]][0])

    def __iter__(self) -> Iterator[_Timed]:
        times, shape_of, initial = self._times, self._shape_of, self._initial
        for position in self._order:
            yield _Timed(times[position], initial[shape_of[position]][0])


def _cadence(
    columns: TimelineColumns, order: Sequence[int], settings: TimelineSettings
) -> tuple[list[dict[str, Any]], bytearray]:
    """Cadence entries (with their members' ranks in time order) and a flag per rank:
    whether that flow is in a regular stream."""
    names = [[(shape.endpoint, name) for name in _event_names(shape)]
             if shape.endpoint != UNNAMED_ENDPOINT else []
             for shape in columns.shapes.values]
    shape_of = columns.shapes.indexes
    groups: dict[tuple[str, str | None], array] = {}
    for rank, position in enumerate(order):
        for key in names[shape_of[position]]:
            members = groups.get(key)
            if members is None:
                members = groups[key] = array("I")
            members.append(rank)

    entries: list[dict[str, Any]] = []
    periodic = bytearray(len(order))
    times, sizes = columns.times, columns.sizes
    for (endpoint, event), members in groups.items():
        estimate: CadenceEstimate | None = estimate_cadence(
            array("d", (times[order[i]] for i in members)),
            array("d", (sizes[order[i]] for i in members)),
            min_count=settings.min_cadence_count,
        )
        if estimate is None:
            continue
        if estimate.regular:
            for i in members:
                periodic[i] = 1
        entries.append(
            {
                "endpoint": endpoint,
                "event": event,
                "median_interval_s": round(estimate.period_s, 3),
                "jitter_s": round(estimate.jitter_s, 3),
                "count": estimate.count,
                "score": estimate.score,
                "regular": estimate.regular,
                "members": members,
            }
        )
    entries.sort(key=lambda e: (e["endpoint"], e["event"] or ""))
    return entries, periodic


def _marker_trigger(
    auditor: Sequence[Marker], auditor_times: list[float], at: float, window: float
) -> str | None:
    """The trigger named by the latest auditor marker at or before `at`, within `window`."""
    index = bisect.bisect_right(auditor_times, at) - 1
    if index < 0 or at - auditor_times[index] > window:
        return None
    return LABEL_TRIGGERS.get(auditor[index].label)


def _context_trigger(holding: Sequence[PhaseSpan]) -> str | None:
    for span in holding:
        trigger = PHASE_TRIGGERS.get(span.name)
        if trigger is not None:
            return trigger
    return None


def _after(times: list[float], at: float, window: float) -> bool:
    """Whether one of the sorted `times` lies at or before `at`, within `window`."""
    index = bisect.bisect_right(times, at) - 1
    return index >= 0 and at - times[index] <= window


def _last(times: list[float], at: float) -> float:
    """The latest of the sorted `times` at or before `at` (-inf when none)."""
    index = bisect.bisect_right(times, at) - 1
    return times[index] if index >= 0 else float("-inf")


def _in_setup(holding: Sequence[PhaseSpan]) -> bool:
    return any(span.name == "setup" for span in holding)


class _Trigger:
    """One trigger's row: count, first, last, and where its flows fall in the strip."""

    __slots__ = ("count", "first", "last")

    def __init__(self, at: float) -> None:
        self.count, self.first, self.last = 0, at, at


def _trigger_rows(
    flows: Iterable[tuple[str, float]], start: float, end: float
) -> list[dict[str, Any]]:
    """Per trigger of the (trigger, timestamp) pairs: count, first, last and its strip."""
    span = max(end - start, 1e-9)
    by_trigger: dict[str, tuple[_Trigger, list[int]]] = {}
    for trigger, timestamp in flows:
        key = str(trigger)
        row = by_trigger.get(key)
        if row is None:
            row = by_trigger[key] = (_Trigger(timestamp), [0] * TRIGGER_BINS)
        seen, strip = row
        seen.count += 1
        seen.first, seen.last = min(seen.first, timestamp), max(seen.last, timestamp)
        strip[min(TRIGGER_BINS - 1, int((timestamp - start) / span * TRIGGER_BINS))] += 1
    rows = [{"trigger": trigger, "count": seen.count, "first": seen.first, "last": seen.last,
             "strip": strip} for trigger, (seen, strip) in by_trigger.items()]
    return sorted(rows, key=lambda r: (r["first"], r["trigger"]))


def _time_order(times: Sequence[float]) -> Sequence[int]:
    """Positions in time order (stable): the store's order already, as a rule."""
    if all(a <= b for a, b in zip(times, itertools.islice(times, 1, None), strict=False)):
        return range(len(times))
    return array("I", sorted(range(len(times)), key=times.__getitem__))


def apply_timeline(
    flows: Sequence[TimelineFlow],
    markers: Sequence[Marker],
    settings: TimelineSettings = TimelineSettings(),  # noqa: B008 - frozen, safe to share
) -> Timeline:
    """Phases, triggers by context / marker / cadence, and mute severity.

    Pure: each flow's conclusions come back as `Timeline.contexts` (its phase; for a
    flow whose trigger is "unknown", the trigger something explains; whether its
    audio_level findings were sent while muted), in the order of `flows`.
    """
    columns = flows if isinstance(flows, TimelineColumns) else TimelineColumns.of(flows)
    times, shape_of, shapes = columns.times, columns.shapes.indexes, columns.shapes.values
    order = _time_order(times)
    hints = [name_hints(shape) for shape in shapes]
    initial = [_initial(shape, hint) for shape, hint in zip(shapes, hints, strict=True)]
    marking = [any(True for _ in _flow_markers(shape)) for shape in shapes]
    all_markers = collect_markers(
        (columns[p] for p in order if marking[shape_of[p]]), markers)
    spans = build_phases(_Sorted(times, order, shape_of, initial), all_markers)
    cadence, periodic = _cadence(columns, order, settings)
    joins = sorted(m.timestamp for m in all_markers if m.label == "meeting_join")
    leaves = sorted(m.timestamp for m in all_markers if m.label == "meeting_leave")

    auditor = sorted((m for m in markers if m.source == "auditor"), key=lambda m: m.timestamp)
    auditor_times = [m.timestamp for m in auditor]
    sweep = PhaseSweep(spans)
    conclusions: Interned[tuple[_State, str | None, bool]] = Interned()
    last_leave = float("-inf")
    for rank, position in enumerate(order):
        shape_index = shape_of[position]
        shape, hint = shapes[shape_index], hints[shape_index]
        state = initial[shape_index]
        trigger, source = state[0], state[1]
        at = times[position]
        holding = sweep.at(at)
        phase = holding[0].name if holding else None
        in_meeting = any(s.name == "meeting" for s in holding)
        muted = shape.audio and any(s.name == "mute" for s in holding)
        marker = _marker_trigger(auditor, auditor_times, at, settings.marker_window_s)
        context = _context_trigger(holding)
        timing = marker or context
        after_join = _after(joins, at, settings.join_window_s)
        if source == "name":
            state = _assigned(*refine_strong(trigger, str(state[3] or ""), holding, timing))
        elif trigger != "unknown":
            if trigger == "app_start" and _in_setup(holding):
                # the rule names a start; only the timing tells the first launch
                state = _assigned("setup", source, "medium",
                                  f"{FIRST_LAUNCH}: the rule says app_start")
        elif periodic[rank]:
            state = _assigned("in_meeting" if in_meeting else "periodic", "cadence")
        elif hint.weak and (weighed := weigh_weak(hint, timing, in_meeting, after_join)):
            state = _assigned(*weighed)
        elif hint.ambiguous and (settled := settle_ambiguous(hint, timing)):
            state = _assigned(*settled)
        elif marker is not None:
            state = _assigned(marker, "marker")
        elif context is not None:
            state = _assigned(context, "context")
        elif max(last_leave, _last(leaves, at)) >= at - settings.leave_window_s:
            state = _assigned("meeting_leave", "context", "low",
                              "sent right after the meeting was left (logs and summaries "
                              "go up then)")
        else:
            state = _assigned("unknown", "none", None, hint.why_unknown())
        if state[0] == "meeting_leave":
            last_leave = at  # the leave's flurry goes on while its flows follow each other
        conclusions.append((state, phase, muted))

    def concluded(rank: int) -> tuple[_State, str | None, bool]:
        return conclusions[rank]

    for entry in cadence:
        members = entry.pop("members")
        phases = Counter(concluded(i)[1] for i in members)
        entry["phase"] = phases.most_common(1)[0][0] if phases else None

    opt_out = next((s for s in spans if s.name == "opt_out"), None)
    after = bytearray(len(times))
    if opt_out is not None:
        for p in order:
            if shapes[shape_of[p]].purpose == "telemetry" and times[p] >= opt_out.start:
                after[p] = 1
    after_opt_out = IdList(array("I", (p for p in order if after[p])), columns.ids)
    sorted_times = times if isinstance(order, range) else array("d", (times[p] for p in order))
    starts = [*sorted_times[:1], *(m.timestamp for m in all_markers)]
    ends = [*sorted_times[-1:], *(m.timestamp for m in all_markers)]
    start, end = (min(starts), max(ends)) if starts else (None, None)
    contexts = array("I", bytes(4 * len(order)))
    table: Interned[FlowContext] = Interned()
    made: dict[tuple[int, int, int], int] = {}
    for rank, position in enumerate(order):
        key = (shape_of[position], conclusions.indexes[rank], after[position])
        index = made.get(key)
        if index is None:
            (trigger, source, confidence, reason), phase, muted = conclusions.values[key[1]]
            index = made[key] = table.index_of(FlowContext(
                phase=phase, trigger=trigger, trigger_source=source,
                trigger_confidence=confidence, trigger_reason=reason,
                events=event_triggers(shapes[key[0]].events, trigger), muted=muted,
                after_opt_out=bool(key[2])))
        contexts[position] = index
    return Timeline(
        markers=Lookup(all_markers, marker_to_dict),
        phases=[_phase_dict(s, sorted_times, order, columns, concluded) for s in spans],
        cadence=cadence,
        after_opt_out=after_opt_out,
        triggers=(_trigger_rows(((concluded(rank)[0][0], times[p])
                                 for rank, p in enumerate(order)), start, end)
                  if start is not None else []),
        start=start,
        end=end,
        contexts=Contexts(contexts, table.values),
    )


def _phase_dict(span: PhaseSpan, sorted_times: Sequence[float], order: Sequence[int],
                columns: TimelineColumns, concluded: Any) -> dict[str, Any]:
    first = bisect.bisect_left(sorted_times, span.start)
    last = bisect.bisect_right(sorted_times, span.end)
    shapes, shape_of, sizes = columns.shapes.values, columns.shapes.indexes, columns.sizes
    inside = range(first, max(first, last))
    categories: set[str] = set()
    for rank in inside:
        categories.update(shapes[shape_of[order[rank]]].categories)
    return {
        "name": span.name,
        "start": span.start,
        "end": span.end,
        "duration_s": round(span.end - span.start, 3),
        "opened_by": span.opened_by,
        "flows": len(inside),
        "bytes": sum(sizes[order[rank]] for rank in inside),
        "categories": sorted(categories),
        "triggers": dict(sorted(Counter(concluded(rank)[0][0] for rank in inside).items())),
    }


def timeline_from_report(report: Mapping[str, Any]) -> Timeline:
    """The Timeline view of a built report (its flows already carry triggers).

    Pure: reads `flows`, `markers`, `phases`, `cadence` and `after_opt_out`;
    recomputes only the per-trigger rows, so a saved audit.json renders too.
    """
    flows = sorted(((str(f.get("trigger")), float(f.get("timestamp") or 0.0))
                    for f in report.get("flows") or ()), key=lambda pair: pair[1])
    markers = list(report.get("markers") or ())
    times = [at for _, at in flows] + [float(m["timestamp"]) for m in markers]
    start, end = (min(times), max(times)) if times else (None, None)
    return Timeline(
        markers=markers,
        phases=list(report.get("phases") or ()),
        cadence=list(report.get("cadence") or ()),
        after_opt_out=list(report.get("after_opt_out") or ()),
        triggers=_trigger_rows(flows, start, end) if start is not None else [],
        start=start,
        end=end,
    )
