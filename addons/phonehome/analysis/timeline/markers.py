"""Marker labels and where markers come from.

Three sources feed one sorted list: the auditor (the mitmproxy command or
`phonehome mark`), the rules' `marks` on a flow, and the app's own mute events:
`client.muted` / `client.unmuted`, or any name whose words prove a marker.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ...model import TRIGGERS, Marker
from ...terms import MARKER_LABELS

if TYPE_CHECKING:
    from .values import TimelineFlow

__all__ = [
    "MARKER_LABELS",
    "LABEL_TRIGGERS",
    "MUTE_EVENTS",
    "is_valid_label",
    "check_label",
    "collect_markers",
    "marker_to_dict",
    "marker_from_dict",
]

LABEL_TRIGGERS: Mapping[str, str] = MappingProxyType(
    {
        # a trigger word used as a label means itself (`phonehome mark meeting_create`)
        **{trigger: trigger for trigger in TRIGGERS if trigger != "unknown"},
        "screen_share_start": "screen_share",
        "screen_share_stop": "screen_share",
        "muted": "in_meeting",
        "unmuted": "in_meeting",
    }
)
"""The trigger a flow takes from the auditor marker just before it. `idle`,
`opt_out` and free labels name no trigger."""

MUTE_EVENTS: Mapping[str, str] = MappingProxyType(
    {"client.muted": "muted", "client.unmuted": "unmuted"}
)
"""App events that mark mute phases by themselves."""

_LABEL = re.compile(r"[a-z0-9_.:-]{1,64}")


def is_valid_label(label: str) -> bool:
    """True for 1-64 characters of `a-z 0-9 _ . : -`."""
    return bool(_LABEL.fullmatch(label))


def check_label(label: str) -> str:
    """The label itself, or ValueError saying what a label may contain."""
    if not is_valid_label(label):
        raise ValueError(
            f"invalid marker label {label[:80]!r}: use 1-64 characters of a-z 0-9 _ . : -"
        )
    return label


def _flow_markers(flow: TimelineFlow) -> Iterable[Marker]:
    timestamp = flow.timestamp
    flow_id = flow.id
    # events first: their order inside a batch is the order things happened
    for event in flow.events:
        rule_id = event.rule_id or flow.rule_id or "unknown"
        label = MUTE_EVENTS.get(event.name)
        if label is not None:
            yield Marker(timestamp, label, f"rule:{rule_id}", flow_id)
        # the vocabulary's verdict on a name no rule gave a trigger (`muted` from ClientMuted)
        for label in (event.name_trigger.marks or () if event.name_trigger else ()):
            if isinstance(label, str) and is_valid_label(label):
                yield Marker(timestamp, label, f"name:{rule_id}", flow_id)
    for label in flow.marks:
        if isinstance(label, str) and is_valid_label(label):
            yield Marker(timestamp, label, f"rule:{flow.rule_id or 'unknown'}", flow_id)


def collect_markers(flows: Sequence[TimelineFlow], auditor: Sequence[Marker]) -> list[Marker]:
    """Auditor markers plus those the flows prove, deduplicated, in time order.

    Two markers with the same label from the same flow count once (a rule's
    `marks: [muted]` and the `client.muted` event it recognised).
    """
    seen: set[tuple[Any, ...]] = set()
    merged: list[Marker] = []
    candidates = [*auditor, *(m for flow in flows for m in _flow_markers(flow))]
    for marker in candidates:
        key = (
            (marker.flow_id, marker.label)
            if marker.flow_id is not None and marker.source != "auditor"
            else (marker.timestamp, marker.label, marker.source, marker.flow_id)
        )
        if key in seen:
            continue
        seen.add(key)
        merged.append(marker)
    # stable: at equal times auditor markers come first, then flow order
    return sorted(merged, key=lambda m: m.timestamp)


def marker_to_dict(marker: Marker) -> dict[str, Any]:
    """The report's `markers[]` item."""
    return {
        "timestamp": marker.timestamp,
        "label": marker.label,
        "source": marker.source,
        "flow_id": marker.flow_id,
    }


def marker_from_dict(data: Mapping[str, Any]) -> Marker:
    """Inverse of `marker_to_dict`, for a sidecar or flow metadata; ValueError if bad."""
    try:
        timestamp = float(data["timestamp"])
        label = check_label(str(data["label"]))
    except (KeyError, TypeError) as e:
        raise ValueError(f"bad marker {dict(data)!r}: needs timestamp and label") from e
    flow_id = data.get("flow_id")
    source = str(data.get("source", "auditor"))
    return Marker(timestamp, label, source, None if flow_id is None else str(flow_id))
