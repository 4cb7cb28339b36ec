"""What the HTML report's sections show, as plain data: claims' readable examples and
finding groups gathered by type. Pure functions of the report's data; html.py renders them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..model import severity_rank
from ..terms import parse_location
from .view import endpoint_key, split_endpoint

__all__ = ["claim_examples", "finding_sections", "EXAMPLES_PER_CLAIM"]

EXAMPLES_PER_CLAIM = 5


def _telling(findings: Sequence[Mapping[str, Any]], wanted: set[str]) -> Mapping[str, Any] | None:
    """The finding an example shows: one a cited digest entry holds, else the most severe."""
    if not findings:
        return None
    return max(findings, key=lambda f: (str(f.get("fingerprint")) in wanted
                                        or str(f.get("type")) in wanted,
                                        severity_rank(str(f.get("severity")))))


def _event_trigger(flow: Mapping[str, Any], location: str) -> str:
    """The trigger of the batch item holding `location`, else the flow's."""
    path = parse_location(location)
    best, depth = str(flow.get("trigger") or ""), -1
    for event in flow.get("events") or ():
        where = parse_location(str(event.get("location") or "$"))
        if (path is not None and where is not None and path[:len(where)] == where
                and len(where) > depth and event.get("trigger")):
            best, depth = str(event["trigger"]), len(where)
    return best


def claim_examples(claim: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]],
                   wanted: Iterable[str] = (), limit: int = EXAMPLES_PER_CLAIM
                   ) -> list[dict[str, Any]]:
    """Up to `limit` of a claim's evidence flows shown on the page, each as one line:
    time, host, field, redacted value, trigger. `wanted` are fingerprints or types
    of the digest entries the claim cites."""
    wanted = set(wanted)
    rows: list[dict[str, Any]] = []
    for flow_id in claim.get("evidence") or ():
        flow = by_id.get(str(flow_id))
        if flow is None:
            continue
        finding = _telling(flow.get("findings") or (), wanted)
        if finding is not None:
            field, value = str(finding.get("location") or ""), str(finding.get("evidence") or "")
            trigger = _event_trigger(flow, field)
        else:
            method, _host, path = split_endpoint(endpoint_key(flow))
            field = f"{method} {path}"
            value, trigger = "", str(flow.get("trigger") or "")
        rows.append({"flow": str(flow_id), "time": flow.get("timestamp"),
                     "host": str(flow.get("host") or ""), "field": field, "value": value,
                     "trigger": trigger,
                     "type": str(finding.get("type")) if finding else "",
                     "severity": str(finding.get("severity")) if finding else ""})
        if len(rows) >= limit:
            break
    return rows


def finding_sections(groups: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Finding groups gathered by finding type, the most severe and most frequent first."""
    by_type: dict[str, dict[str, Any]] = {}
    for group in groups:
        kind = str(group.get("type") or "")
        section = by_type.setdefault(kind, {"type": kind, "severity": "info", "count": 0,
                                            "groups": [], "hosts": {}, "triggers": {}})
        section["groups"].append(group)
        section["count"] += int(group.get("count") or 0)
        if severity_rank(str(group.get("severity"))) > severity_rank(section["severity"]):
            section["severity"] = str(group.get("severity"))
        host = str(group.get("host") or "")
        section["hosts"][host] = section["hosts"].get(host, 0) + int(group.get("count") or 0)
        for trigger, n in (group.get("triggers") or {}).items():
            section["triggers"][trigger] = section["triggers"].get(trigger, 0) + int(n)
    for section in by_type.values():
        section["hosts"] = sorted(section["hosts"], key=lambda h: -section["hosts"][h])
        section["triggers"] = sorted(section["triggers"], key=lambda t: -section["triggers"][t])
    return sorted(by_type.values(),
                  key=lambda s: (-severity_rank(s["severity"]), -s["count"], s["type"]))
