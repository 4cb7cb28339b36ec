"""The timeline's values: the view of a flow it reads, what it concludes of each flow,
the session's timeline, and the columns that keep them in a few bytes a flow."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from msgspec import UNSET, Struct, UnsetType
from msgspec.structs import replace

from ..columns import FlowIds, Interned, Lookup
from ..records import Event
from .cadence import endpoint_template

__all__ = [
    "TimelineSettings",
    "Timeline",
    "TimelineFlow",
    "TimelineColumns",
    "FlowContext",
    "Contexts",
    "MUTED_AUDIO_REASON",
    "TRIGGER_BINS",
    "MAX_SHAPES",
    "UNNAMED_ENDPOINT",
]

MUTED_AUDIO_REASON = "microphone activity reported while muted"
TRIGGER_BINS = 48
"""Columns in each trigger's strip over the session."""
MAX_SHAPES = 20_000
"""Distinct flow shapes the timeline keeps (a real session has a few hundred). Past
this, a flow of a new shape (a flood of made-up hosts, paths or event names) is kept
under UNNAMED_ENDPOINT without its events: no cadence or marker is read from it."""
UNNAMED_ENDPOINT = "(other endpoints)"


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
    after_opt_out: bool = False
    """Telemetry sent after the first opt_out marker (`Timeline.after_opt_out`)."""


@dataclass(frozen=True)
class Timeline:
    markers: Sequence[dict[str, Any]] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)
    cadence: list[dict[str, Any]] = field(default_factory=list)
    after_opt_out: Sequence[str] = field(default_factory=list)
    """Ids of telemetry flows sent after the first opt_out marker, in time order."""
    triggers: list[dict[str, Any]] = field(default_factory=list)
    """Per trigger: count, first, last, and `strip` (flow counts in TRIGGER_BINS bins)."""
    start: float | None = None
    end: float | None = None
    contexts: Sequence[FlowContext] = ()
    """Each input flow's context, in the order the flows were given."""

    def to_dict(self) -> dict[str, Any]:
        """The report's `markers`, `phases`, `cadence` and `after_opt_out` parts."""
        return {
            "markers": list(self.markers),
            "phases": self.phases,
            "cadence": self.cadence,
            "after_opt_out": list(self.after_opt_out),
        }


class TimelineColumns(Sequence[TimelineFlow]):
    """TimelineFlows by position, as columns: a flow's time and size, its id packed, and
    the rest (its shape, which most flows share) interned; a TimelineFlow is rebuilt
    on demand."""

    def __init__(self, ids: Sequence[str] | None = None) -> None:
        self.ids: Sequence[str] = FlowIds() if ids is None else ids
        """Each flow's id; given (by the caller, who keeps them already): not appended."""
        self._own_ids = ids is None
        self.times = array("d")
        self.sizes = array("q")
        self.shapes: Interned[TimelineFlow] = Interned()

    @classmethod
    def of(cls, flows: Iterable[TimelineFlow]) -> TimelineColumns:
        columns = cls()
        for flow in flows:
            columns.append(flow)
        return columns

    def append(self, flow: TimelineFlow) -> None:
        """Every column or none: a flow that fails here (an unhashable shape, a wide
        size) leaves the columns in step."""
        shape = replace(flow, id="", timestamp=0.0, bytes_out=0)
        if len(self.shapes.values) >= MAX_SHAPES and not self.shapes.holds(shape):
            shape = replace(shape, endpoint=UNNAMED_ENDPOINT, events=())
        index = self.shapes.index_of(shape)
        self.sizes.append(flow.bytes_out)
        self.times.append(flow.timestamp)
        if self._own_ids:
            self.ids.append(flow.id)  # type: ignore[attr-defined]
        self.shapes.indexes.append(index)

    def __len__(self) -> int:
        return len(self.times)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return replace(self.shapes[index], id=self.ids[index], timestamp=self.times[index],
                       bytes_out=self.sizes[index])


class Contexts(Lookup):
    """Each flow's FlowContext by position: an index into the distinct ones."""

    def __init__(self, indexes: array, table: list[FlowContext]) -> None:
        super().__init__(indexes, table.__getitem__)
        self.indexes = indexes
        self.table = table
