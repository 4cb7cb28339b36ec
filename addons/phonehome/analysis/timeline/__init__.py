"""Timeline: when each payload is sent — phases, markers, cadence, mute.

`apply_timeline(flows, markers)` runs once per report over light views of the
flows and returns each one's context; `format_timeline(timeline)` renders it;
`channel` carries auditor markers from a second terminal.
"""

from __future__ import annotations

from .cadence import CadenceEstimate, endpoint_template, estimate_cadence
from .core import apply_timeline, timeline_from_report
from .format import format_timeline
from .markers import (
    LABEL_TRIGGERS,
    MARKER_LABELS,
    check_label,
    collect_markers,
    is_valid_label,
    marker_from_dict,
    marker_to_dict,
)
from .phases import PHASE_NAMES
from .values import (
    MUTED_AUDIO_REASON,
    Contexts,
    FlowContext,
    Timeline,
    TimelineColumns,
    TimelineFlow,
    TimelineSettings,
)

__all__ = [
    "apply_timeline",
    "timeline_from_report",
    "Timeline",
    "TimelineFlow",
    "TimelineColumns",
    "Contexts",
    "FlowContext",
    "TimelineSettings",
    "MARKER_LABELS",
    "LABEL_TRIGGERS",
    "PHASE_NAMES",
    "MUTED_AUDIO_REASON",
    "format_timeline",
    "estimate_cadence",
    "CadenceEstimate",
    "endpoint_template",
    "collect_markers",
    "is_valid_label",
    "check_label",
    "marker_to_dict",
    "marker_from_dict",
]
