"""apply_timeline: phases, triggers, cadence and mute over frozen `TimelineFlow` views,
each flow's conclusions returned as a `FlowContext`. A flow no rule gave a trigger takes,
in order: `name` (strong words of its events' names), `cadence`, a weak name hint the
timing allows, an ambiguous name the batch or timing settles, `marker`, `context` (a
phase, or the moments after a leave); else `unknown`, with how sure each is and why.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET, Struct, UnsetType

from ...model import Marker
from ..records import Event
from .cadence import CadenceEstimate, endpoint_template, estimate_cadence
from .markers import LABEL_TRIGGERS, collect_markers, marker_to_dict
from .names import (
    FIRST_LAUNCH,
    NAME_SOURCE_CONFIDENCE,
    event_triggers,
    name_hints,
    refine_strong,
    settle_ambiguous,
    weigh_weak,
)
from .phases import PHASE_TRIGGERS, PhaseSpan, build_phases, phases_at

__all__ = [
    "TimelineSettings",
    "Timeline",
    "TimelineFlow",
    "FlowContext",
    "apply_timeline",
    "timeline_from_report",
    "MUTED_AUDIO_REASON",
    "TRIGGER_BINS",
]

MUTED_AUDIO_REASON = "microphone activity reported while muted"
TRIGGER_BINS = 48
"""Columns in each trigger's strip over the session."""


@dataclass(frozen=True)
class TimelineSettings:
    marker_window_s: float = 120.0
    """A flow takes the auditor marker just before it within this window."""
    min_cadence_count: int = 4
    """Fewer arrivals than this: no cadence claim."""
    join_window_s: float = 30.0
    """Media set up this soon after a meeting join is part of the join."""
    leave_window_s: float = 30.0
    """An unexplained flow this soon after the leave (or the leave's last flow) belongs to it."""


class TimelineFlow(Struct, frozen=True, kw_only=True):
    """What the timeline reads of one flow."""

    id: str
    timestamp: float
    endpoint: str
    """`METHOD host/path-template`, the unit cadence is measured by."""
    purpose: str
    bytes_out: int
    rule_id: str | None
    """The flow's first rule, which names the source of the markers it proves."""
    events: tuple[Event, ...]
    trigger: str
    trigger_source: str
    trigger_reason: str | UnsetType = UNSET
    categories: tuple[str, ...]
    marks: tuple[str, ...]
    audio: bool
    """Whether it carries an audio_level finding (raised while muted)."""

    @classmethod
    def of(cls, flow: Any) -> TimelineFlow:
        """The view of a flow record (a FlowView, FlowRecord or one with those fields)."""
        return cls(
            id=flow.id, timestamp=flow.timestamp,
            endpoint=endpoint_template(flow.method, flow.url, flow.host),
            purpose=flow.purpose, bytes_out=flow.bytes_out,
            rule_id=flow.rule_ids[0] if flow.rule_ids else None, events=flow.events,
            trigger=flow.trigger, trigger_source=flow.trigger_source,
            trigger_reason=flow.trigger_reason, categories=flow.categories,
            marks=flow.marks, audio=any(f.type == "audio_level" for f in flow.findings),
        )


class FlowContext(Struct, frozen=True, kw_only=True):
    """What the timeline concluded about one flow."""

    phase: str | None
    trigger: str
    trigger_source: str
    trigger_confidence: str | None
    trigger_reason: str | UnsetType = UNSET
    events: tuple[tuple[str, str] | None, ...] = ()
    """Per event: its (trigger, trigger_source), or None where the event keeps its own."""
    muted: bool = False
    """Sent while muted: its audio_level findings become high severity."""


@dataclass(frozen=True)
class Timeline:
    markers: list[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    cadence: list[dict[str, Any]] = field(default_factory=list)
    after_opt_out: list[str] = field(default_factory=list)
    """Ids of telemetry flows sent after the first opt_out marker."""
    triggers: list[dict[str, Any]] = field(default_factory=list)
    """Per trigger: count, first, last, and `strip` (flow counts in TRIGGER_BINS bins)."""
    start: float | None = None
    end: float | None = None
    contexts: tuple[FlowContext, ...] = ()
    """Each input flow's context, in the order the flows were given."""

    def to_dict(self) -> dict[str, Any]:
        """The report's `markers`, `phases`, `cadence` and `after_opt_out` parts."""
        return {
            "markers": self.markers,
            "phases": self.phases,
            "cadence": self.cadence,
            "after_opt_out": self.after_opt_out,
        }


class _Work:
    """One flow's conclusions while the timeline is drawn (the views stay frozen)."""

    __slots__ = ("flow", "position", "timestamp", "trigger", "trigger_source",
                 "trigger_confidence", "trigger_reason", "phase", "muted")

    def __init__(self, flow: TimelineFlow, position: int) -> None:
        self.flow = flow
        self.position = position
        self.timestamp = flow.timestamp
        self.trigger = flow.trigger
        self.trigger_source = flow.trigger_source
        self.trigger_confidence: str | None = None
        self.trigger_reason: str | UnsetType = flow.trigger_reason
        self.phase: str | None = None
        self.muted = False

    def assign(self, trigger: str, source: str, confidence: str | None = "",
               reason: str = "") -> None:
        self.trigger, self.trigger_source = trigger, source
        self.trigger_confidence = (NAME_SOURCE_CONFIDENCE.get(source)
                                   if confidence == "" else confidence)
        self.trigger_reason = reason or UNSET

    def context(self) -> FlowContext:
        return FlowContext(
            phase=self.phase, trigger=self.trigger, trigger_source=self.trigger_source,
            trigger_confidence=self.trigger_confidence, trigger_reason=self.trigger_reason,
            events=event_triggers(self.flow.events, self.trigger), muted=self.muted)


def _event_names(flow: TimelineFlow) -> list[str | None]:
    names = list(dict.fromkeys(e.name for e in flow.events if e.name))
    return names or [None]


def _cadence(
    flows: Sequence[_Work], settings: TimelineSettings
) -> tuple[list[dict[str, Any]], set[int]]:
    """Cadence entries and the indexes of flows in a regular stream."""
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for index, work in enumerate(flows):
        for name in _event_names(work.flow):
            groups[(work.flow.endpoint, name)].append(index)

    entries: list[dict[str, Any]] = []
    periodic: set[int] = set()
    for (endpoint, event), members in groups.items():
        estimate: CadenceEstimate | None = estimate_cadence(
            [flows[i].timestamp for i in members],
            [float(flows[i].flow.bytes_out) for i in members],
            min_count=settings.min_cadence_count,
        )
        if estimate is None:
            continue
        if estimate.regular:
            periodic.update(members)
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


def _phase_dict(span: PhaseSpan, flows: Sequence[_Work]) -> dict[str, Any]:
    inside = [w for w in flows if span.holds(w.timestamp)]
    return {
        "name": span.name,
        "start": span.start,
        "end": span.end,
        "duration_s": round(span.end - span.start, 3),
        "opened_by": span.opened_by,
        "flows": len(inside),
        "bytes": sum(w.flow.bytes_out for w in inside),
        "categories": sorted({c for w in inside for c in w.flow.categories}),
        "triggers": dict(sorted(Counter(w.trigger for w in inside).items())),
    }


def _trigger_rows(
    flows: Sequence[tuple[str, float]], start: float, end: float
) -> list[dict[str, Any]]:
    """Per trigger of the (trigger, timestamp) pairs: count, first, last and its strip."""
    by_trigger: dict[str, list[float]] = defaultdict(list)
    for trigger, timestamp in flows:
        by_trigger[str(trigger)].append(timestamp)
    span = max(end - start, 1e-9)
    rows = []
    for trigger, times in by_trigger.items():
        strip = [0] * TRIGGER_BINS
        for t in times:
            strip[min(TRIGGER_BINS - 1, int((t - start) / span * TRIGGER_BINS))] += 1
        rows.append(
            {
                "trigger": trigger,
                "count": len(times),
                "first": min(times),
                "last": max(times),
                "strip": strip,
            }
        )
    return sorted(rows, key=lambda r: (r["first"], r["trigger"]))


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
    ordered = sorted((_Work(flow, i) for i, flow in enumerate(flows)), key=lambda w: w.timestamp)
    hints = [name_hints(work.flow) for work in ordered]
    for work, hint in zip(ordered, hints, strict=True):
        if work.trigger != "unknown":
            work.trigger_source = work.trigger_source or "rule"
            work.trigger_confidence = "high"
        elif hint.strong:  # as good as a rule for the phases
            strongest = hint.strongest()
            work.assign(strongest.trigger or "unknown", "name", "high", strongest.reason)
    all_markers = collect_markers([w.flow for w in ordered], markers)
    spans = build_phases(ordered, all_markers)
    cadence, periodic = _cadence(ordered, settings)
    joins = sorted(m.timestamp for m in all_markers if m.label == "meeting_join")
    leaves = sorted(m.timestamp for m in all_markers if m.label == "meeting_leave")

    auditor = sorted((m for m in markers if m.source == "auditor"), key=lambda m: m.timestamp)
    auditor_times = [m.timestamp for m in auditor]
    last_leave = float("-inf")
    for index, (work, hint) in enumerate(zip(ordered, hints, strict=True)):
        at = work.timestamp
        holding = phases_at(spans, at)
        work.phase = holding[0].name if holding else None
        in_meeting = any(s.name == "meeting" for s in holding)
        work.muted = work.flow.audio and any(s.name == "mute" for s in holding)
        marker = _marker_trigger(auditor, auditor_times, at, settings.marker_window_s)
        context = _context_trigger(holding)
        timing = marker or context
        after_join = _after(joins, at, settings.join_window_s)
        if work.trigger_source == "name":
            work.assign(*refine_strong(work.trigger, str(work.trigger_reason or ""), holding,
                                       timing))
        elif work.trigger != "unknown":
            if work.trigger == "app_start" and _in_setup(holding):
                # the rule names a start; only the timing tells the first launch
                work.assign("setup", work.trigger_source, "medium",
                            f"{FIRST_LAUNCH}: the rule says app_start")
        elif index in periodic:
            work.assign("in_meeting" if in_meeting else "periodic", "cadence")
        elif hint.weak and (weighed := weigh_weak(hint, timing, in_meeting, after_join)):
            work.assign(*weighed)
        elif hint.ambiguous and (settled := settle_ambiguous(hint, timing)):
            work.assign(*settled)
        elif marker is not None:
            work.assign(marker, "marker")
        elif context is not None:
            work.assign(context, "context")
        elif max(last_leave, _last(leaves, at)) >= at - settings.leave_window_s:
            work.assign("meeting_leave", "context", "low",
                        "sent right after the meeting was left (logs and summaries go up then)")
        else:
            work.assign("unknown", "none", None, hint.why_unknown())
        if work.trigger == "meeting_leave":
            last_leave = at  # the leave's flurry goes on while its flows follow each other

    for entry in cadence:
        members = entry.pop("members")
        phases = Counter(ordered[i].phase for i in members)
        entry["phase"] = phases.most_common(1)[0][0] if phases else None

    opt_out = next((s for s in spans if s.name == "opt_out"), None)
    after_opt_out = (
        [w.flow.id for w in ordered
         if w.flow.purpose == "telemetry" and w.timestamp >= opt_out.start]
        if opt_out is not None
        else []
    )
    times = [w.timestamp for w in ordered] + [m.timestamp for m in all_markers]
    start, end = (min(times), max(times)) if times else (None, None)
    contexts: list[FlowContext | None] = [None] * len(ordered)
    for work in ordered:
        contexts[work.position] = work.context()
    return Timeline(
        markers=[marker_to_dict(m) for m in all_markers],
        phases=[_phase_dict(s, ordered) for s in spans],
        cadence=cadence,
        after_opt_out=after_opt_out,
        triggers=(_trigger_rows([(w.trigger, w.timestamp) for w in ordered], start, end)
                  if start is not None else []),
        start=start,
        end=end,
        contexts=tuple(contexts),  # type: ignore[arg-type]
    )


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
