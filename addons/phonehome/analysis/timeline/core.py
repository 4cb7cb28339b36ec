"""apply_timeline: phases, trigger attribution, cadence and mute over all flows.

Runs once, at report time, over the flow records. A flow no rule gave a trigger
takes, in order: `name` (strong words of its events' names, names.py), then
`cadence`, a weak name hint the timing allows, an ambiguous name the batch or
timing settles, `marker`, `context` (a phase, or the moments after a leave);
else `unknown` with the reason. Each says how sure it is (`trigger_confidence`).
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...model import Marker
from .cadence import CadenceEstimate, endpoint_template, estimate_cadence
from .markers import LABEL_TRIGGERS, collect_markers, marker_to_dict
from .names import (
    FIRST_LAUNCH,
    NAME_SOURCE_CONFIDENCE,
    apply_event_triggers,
    name_hints,
    refine_strong,
    settle_ambiguous,
    weigh_weak,
)
from .phases import PHASE_TRIGGERS, PhaseSpan, build_phases, phases_at

__all__ = [
    "TimelineSettings",
    "Timeline",
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

    def to_dict(self) -> dict[str, Any]:
        """The report's `markers`, `phases`, `cadence` and `after_opt_out` parts."""
        return {
            "markers": self.markers,
            "phases": self.phases,
            "cadence": self.cadence,
            "after_opt_out": self.after_opt_out,
        }


def _timestamp(flow: Mapping[str, Any]) -> float:
    return float(flow.get("timestamp") or 0.0)


def _event_names(flow: Mapping[str, Any]) -> list[str | None]:
    names = list(dict.fromkeys(e.get("name") for e in flow.get("events") or () if e.get("name")))
    return names or [None]


def _cadence(
    flows: Sequence[dict[str, Any]], settings: TimelineSettings
) -> tuple[list[dict[str, Any]], set[int]]:
    """Cadence entries and the indexes of flows in a regular stream."""
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for index, flow in enumerate(flows):
        endpoint = endpoint_template(
            str(flow.get("method", "")), str(flow.get("url", "")), str(flow.get("host", ""))
        )
        for name in _event_names(flow):
            groups[(endpoint, name)].append(index)

    entries: list[dict[str, Any]] = []
    periodic: set[int] = set()
    for (endpoint, event), members in groups.items():
        estimate: CadenceEstimate | None = estimate_cadence(
            [_timestamp(flows[i]) for i in members],
            [float(flows[i].get("bytes_out") or 0) for i in members],
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


def _assign(flow: dict[str, Any], trigger: str, source: str, confidence: str | None = "",
            reason: str = "") -> None:
    flow["trigger"], flow["trigger_source"] = trigger, source
    flow["trigger_confidence"] = (NAME_SOURCE_CONFIDENCE.get(source)
                                  if confidence == "" else confidence)
    if reason:
        flow["trigger_reason"] = reason
    else:
        flow.pop("trigger_reason", None)


def _raise_muted_audio(flow: dict[str, Any]) -> None:
    for finding in flow.get("findings") or ():
        if finding.get("type") == "audio_level":
            finding["severity"] = "high"
            finding["reason"] = MUTED_AUDIO_REASON


def _phase_dict(span: PhaseSpan, flows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    inside = [f for f in flows if span.holds(_timestamp(f))]
    return {
        "name": span.name,
        "start": span.start,
        "end": span.end,
        "duration_s": round(span.end - span.start, 3),
        "opened_by": span.opened_by,
        "flows": len(inside),
        "bytes": sum(int(f.get("bytes_out") or 0) for f in inside),
        "categories": sorted({c for f in inside for c in f.get("categories") or ()}),
        "triggers": dict(sorted(Counter(str(f.get("trigger")) for f in inside).items())),
    }


def _trigger_rows(
    flows: Sequence[Mapping[str, Any]], start: float, end: float
) -> list[dict[str, Any]]:
    by_trigger: dict[str, list[float]] = defaultdict(list)
    for flow in flows:
        by_trigger[str(flow.get("trigger"))].append(_timestamp(flow))
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
    flows: list[dict[str, Any]],
    markers: Sequence[Marker],
    settings: TimelineSettings = TimelineSettings(),  # noqa: B008 - frozen, safe to share
) -> Timeline:
    """Phases, triggers by context / marker / cadence, and mute severity.

    Mutates each flow dict in place: sets `phase`; for flows whose trigger is
    "unknown" sets `trigger` and `trigger_source` when something explains it;
    raises audio_level findings in a mute phase to high.
    """
    ordered = sorted(flows, key=_timestamp)
    hints = {id(flow): name_hints(flow) for flow in ordered}
    for flow in ordered:
        if flow.get("trigger", "unknown") != "unknown":
            flow["trigger_source"] = flow.get("trigger_source") or "rule"
            flow["trigger_confidence"] = "high"
        elif hints[id(flow)].strong:  # as good as a rule for the phases
            hint = hints[id(flow)].strongest()
            _assign(flow, hint["trigger"], "name", "high", hint["reason"])
    all_markers = collect_markers(ordered, markers)
    spans = build_phases(ordered, all_markers)
    cadence, periodic = _cadence(ordered, settings)
    periodic_ids = {id(ordered[i]) for i in periodic}
    joins = sorted(m.timestamp for m in all_markers if m.label == "meeting_join")
    leaves = sorted(m.timestamp for m in all_markers if m.label == "meeting_leave")

    auditor = sorted((m for m in markers if m.source == "auditor"), key=lambda m: m.timestamp)
    auditor_times = [m.timestamp for m in auditor]
    last_leave = float("-inf")
    for flow in ordered:
        at = _timestamp(flow)
        holding = phases_at(spans, at)
        flow["phase"] = holding[0].name if holding else None
        in_meeting = any(s.name == "meeting" for s in holding)
        if any(s.name == "mute" for s in holding):
            _raise_muted_audio(flow)
        marker = _marker_trigger(auditor, auditor_times, at, settings.marker_window_s)
        context = _context_trigger(holding)
        timing = marker or context
        after_join = _after(joins, at, settings.join_window_s)
        hint = hints[id(flow)]
        if flow.get("trigger_source") == "name":
            _assign(flow, *refine_strong(flow["trigger"], flow["trigger_reason"], holding,
                                         timing))
        elif flow.get("trigger", "unknown") != "unknown":
            if flow["trigger"] == "app_start" and _in_setup(holding):
                # the rule names a start; only the timing tells the first launch
                _assign(flow, "setup", flow["trigger_source"], "medium",
                        f"{FIRST_LAUNCH}: the rule says app_start")
        elif id(flow) in periodic_ids:
            _assign(flow, "in_meeting" if in_meeting else "periodic", "cadence")
        elif hint.weak and (weighed := weigh_weak(hint, timing, in_meeting, after_join)):
            _assign(flow, *weighed)
        elif hint.ambiguous and (settled := settle_ambiguous(hint, timing)):
            _assign(flow, *settled)
        elif marker is not None:
            _assign(flow, marker, "marker")
        elif context is not None:
            _assign(flow, context, "context")
        elif max(last_leave, _last(leaves, at)) >= at - settings.leave_window_s:
            _assign(flow, "meeting_leave", "context", "low",
                    "sent right after the meeting was left (logs and summaries go up then)")
        else:
            _assign(flow, "unknown", "none", None, hint.why_unknown())
        if flow["trigger"] == "meeting_leave":
            last_leave = at  # the leave's flurry goes on while its flows follow each other
        apply_event_triggers(flow)

    for entry in cadence:
        members = entry.pop("members")
        phases = Counter(ordered[i].get("phase") for i in members)
        entry["phase"] = phases.most_common(1)[0][0] if phases else None

    opt_out = next((s for s in spans if s.name == "opt_out"), None)
    after_opt_out = (
        [
            str(f["id"])
            for f in ordered
            if f.get("purpose") == "telemetry" and _timestamp(f) >= opt_out.start
        ]
        if opt_out is not None
        else []
    )
    times = [_timestamp(f) for f in ordered] + [m.timestamp for m in all_markers]
    start, end = (min(times), max(times)) if times else (None, None)
    return Timeline(
        markers=[marker_to_dict(m) for m in all_markers],
        phases=[_phase_dict(s, ordered) for s in spans],
        cadence=cadence,
        after_opt_out=after_opt_out,
        triggers=_trigger_rows(ordered, start, end) if start is not None else [],
        start=start,
        end=end,
    )


def timeline_from_report(report: Mapping[str, Any]) -> Timeline:
    """The Timeline view of a built report (its flows already carry triggers).

    Pure: reads `flows`, `markers`, `phases`, `cadence` and `after_opt_out`;
    recomputes only the per-trigger rows, so a saved audit.json renders too.
    """
    flows = sorted(report.get("flows") or (), key=_timestamp)
    markers = list(report.get("markers") or ())
    times = [_timestamp(f) for f in flows] + [float(m["timestamp"]) for m in markers]
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
