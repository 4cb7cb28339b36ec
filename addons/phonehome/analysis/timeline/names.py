"""What event names say about a flow's trigger, weighed against the session's timing:
the vocabulary's verdict on each event name no rule gave a trigger (`events[].name_trigger`,
from classify time) meets the phases, the markers, the join window and the batch's
other events.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from ...model import TRIGGER_SPECIFICITY
from ..records import Event, NameVerdict
from .phases import PhaseSpan

if TYPE_CHECKING:
    from .values import TimelineFlow

__all__ = [
    "FIRST_LAUNCH",
    "NAME_SOURCE_CONFIDENCE",
    "FlowHints",
    "name_hints",
    "refine_strong",
    "weigh_weak",
    "settle_ambiguous",
    "event_triggers",
]

NAME_SOURCE_CONFIDENCE: Mapping[str, str | None] = MappingProxyType({
    "rule": "high",
    "name": "high",
    "cadence": "high",
    "marker": "medium",
    "context": "low",
    "none": None,
})
"""How sure a trigger is, by where it came from (a name's own verdict may say less)."""

FIRST_LAUNCH = "a start during setup is the first launch"

_RANK = {trigger: rank for rank, trigger in enumerate(TRIGGER_SPECIFICITY)}


def most_specific(triggers: Iterable[str]) -> str:
    return min(triggers, key=_RANK.__getitem__)


Result = tuple[str, str, str | None, str]
"""(trigger, trigger_source, trigger_confidence, trigger_reason)"""


@dataclass
class FlowHints:
    """The name verdicts of a flow's events that no rule gave a trigger."""

    strong: list[NameVerdict] = field(default_factory=list)
    weak: list[NameVerdict] = field(default_factory=list)
    ambiguous: list[NameVerdict] = field(default_factory=list)

    def strongest(self) -> NameVerdict:
        """The strong verdict with the most specific trigger."""
        best = most_specific(str(h.trigger) for h in self.strong)
        return next(h for h in self.strong if h.trigger == best)

    def weakest_trigger(self) -> tuple[str, str]:
        """(most specific weak trigger, its reason)."""
        best = most_specific(str(h.trigger) for h in self.weak)
        hint = next(h for h in self.weak if h.trigger == best)
        return best, hint.reason

    def candidates(self) -> set[str]:
        return {c for h in self.ambiguous for c in h.candidates}

    def why_unknown(self) -> str:
        """The reason a flow whose names said something still has no trigger."""
        if self.ambiguous:
            return self.ambiguous[0].reason
        if self.weak:
            trigger, reason = self.weakest_trigger()
            if trigger == "in_meeting":
                return f"{reason} (a hint of in_meeting), but no meeting is open"
            return f"{reason} (a hint of {trigger}), which the timing does not support"
        return ""


_NO_HINTS = FlowHints()


def name_hints(flow: TimelineFlow) -> FlowHints:
    """The name verdicts of the flow's events (one shared, empty value when there are none)."""
    if not any(event.name_trigger and not event.trigger for event in flow.events):
        return _NO_HINTS
    hints = FlowHints()
    for event in flow.events:
        hint = event.name_trigger
        if not hint or event.trigger:
            continue
        if hint.trigger is None:
            hints.ambiguous.append(hint)
        elif hint.confidence == "high":
            hints.strong.append(hint)
        else:
            hints.weak.append(hint)
    return hints


def refine_strong(trigger: str, reason: str, holding: Sequence[PhaseSpan],
                  timing: str | None) -> Result:
    """A strong name's trigger, with how far the timing backs it."""
    if trigger == "app_start" and any(span.name == "setup" for span in holding):
        return "setup", "name", "medium", f"{reason}; {FIRST_LAUNCH}"
    confidence = "high" if timing in (None, trigger) else "medium"
    return trigger, "name", confidence, reason


def weigh_weak(hints: FlowHints, timing: str | None, in_meeting: bool,
               after_join: bool) -> Result | None:
    """A weak hint's trigger where the timing allows it; None leaves it to the timing."""
    trigger, reason = hints.weakest_trigger()
    if trigger == "in_meeting":
        if after_join:
            return "meeting_join", "name", "medium", f"{reason}; media set up as the meeting joins"
        if not in_meeting:
            return None
    if timing is not None and timing != trigger:
        return None
    return trigger, "name", "medium", reason


def settle_ambiguous(hints: FlowHints, timing: str | None) -> Result | None:
    """A name that points to several triggers, settled by its batch or by the timing."""
    candidates = hints.candidates()
    reason = hints.ambiguous[0].reason
    batch = {str(h.trigger) for h in hints.weak} & candidates
    if len(batch) == 1:
        chosen = next(iter(batch))
        return chosen, "name", "medium", f"{reason}; its batch says {chosen}"
    if timing in candidates:
        return timing, "name", "medium", f"{reason}; the timing says {timing}"
    return None


def event_triggers(events: Sequence[Event], trigger: str
                   ) -> tuple[tuple[str, str] | None, ...]:
    """Each event's (trigger, trigger_source): its rule's, its name's, or its batch's
    (the flow's `trigger`); None for an event nothing gives one."""
    out: list[tuple[str, str] | None] = []
    for event in events:
        hint = event.name_trigger
        if event.trigger:
            out.append((event.trigger, "rule"))
        elif not hint:
            out.append(None)
        elif hint.trigger and hint.confidence == "high":
            out.append((hint.trigger, "name"))
        elif trigger in {hint.trigger, *hint.candidates}:
            out.append((trigger, "context"))
        else:
            out.append(None)
    return tuple(out)
