"""The timeline over flow dicts, for the tests that write flows by hand.

`apply_timeline` runs the real one over typed views of the dicts and writes each
flow's context back into its dict, the way the report shows the flow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from phonehome.analysis.records import FlowView, flow_from_mapping, to_builtins
from phonehome.analysis.session import apply_context
from phonehome.analysis.timeline import Timeline, TimelineFlow, TimelineSettings
from phonehome.analysis.timeline import apply_timeline as run_timeline
from phonehome.analysis.timeline import collect_markers as collect
from phonehome.model import Marker


def views(flows: Sequence[dict[str, Any]]) -> list[TimelineFlow]:
    return [TimelineFlow.of(flow_from_mapping(flow, FlowView, i)) for i, flow in enumerate(flows)]


def apply_timeline(flows: list[dict[str, Any]], markers: Sequence[Marker],
                   settings: TimelineSettings = TimelineSettings()) -> Timeline:  # noqa: B008
    timeline = run_timeline(views(flows), markers, settings)
    for index, (flow, context) in enumerate(zip(flows, timeline.contexts, strict=True)):
        shown = apply_context(flow_from_mapping(flow, FlowView, index), context, None)
        flow.update(to_builtins(shown))
    return timeline


def collect_markers(flows: Sequence[dict[str, Any]], auditor: Sequence[Marker]) -> list[Marker]:
    return collect(views(flows), auditor)
