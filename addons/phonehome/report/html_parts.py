"""What the HTML report's sections show, as plain data: claims' readable examples and
finding groups gathered by type. Pure functions of the report's data; html.py renders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..analysis.digest import digest_location
from ..model import severity_rank
from ..terms import parse_location
from .document import EVIDENCE_PER_CLAIM
from .view import endpoint_key, split_endpoint

__all__ = ["claim_examples", "finding_sections", "EXAMPLES_PER_CLAIM"]

EXAMPLES_PER_CLAIM = EVIDENCE_PER_CLAIM
"""Examples come from the flows shown in full: each claim's first evidence."""


Matcher = Callable[[Mapping[str, Any]], bool]


def _telling(findings: Sequence[Mapping[str, Any]], match: Matcher) -> Mapping[str, Any] | None:
    """The finding an example shows: one of a cited digest entry, else the most severe."""
    if not findings:
        return None
    return max(findings, key=lambda f: (match(f), severity_rank(str(f.get("severity")))))


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


def _example(flow_id: str, flow: Mapping[str, Any], match: Matcher) -> dict[str, Any]:
    finding = _telling(flow.get("findings") or (), match)
    if finding is not None:
        field, value = str(finding.get("location") or ""), str(finding.get("evidence") or "")
        trigger = _event_trigger(flow, field)
    else:
        method, _host, path = split_endpoint(endpoint_key(flow))
        field, value, trigger = f"{method} {path}", "", str(flow.get("trigger") or "")
    return {"flow": flow_id, "time": flow.get("timestamp"), "host": str(flow.get("host") or ""),
            "field": field, "value": value, "trigger": trigger,
            "type": str(finding.get("type")) if finding else "",
            "severity": str(finding.get("severity")) if finding else "",
            "same": (str(flow.get("host")), digest_location(field), value)}


def claim_examples(claim: Mapping[str, Any], by_id: Mapping[str, Mapping[str, Any]],
                   match: Matcher = lambda finding: False, limit: int = EXAMPLES_PER_CLAIM
                   ) -> list[dict[str, Any]]:
    """Up to `limit` of a claim's evidence flows shown on the page, each as one line:
    time, host, field, redacted value, trigger. The finding shown is one of the digest
    entries the claim cites (`match`); the same host, field and value shows once while
    other examples are left."""
    candidates = [_example(str(i), by_id[str(i)], match)
                  for i in claim.get("evidence") or () if str(i) in by_id]
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for row in candidates:
        if row["same"] not in seen and len(rows) < limit:
            seen.add(row["same"])
            rows.append(row)
    for row in candidates:
        if len(rows) >= limit:
            break
        if row not in rows:
            rows.append(row)
    order = {id(row): n for n, row in enumerate(candidates)}
    return sorted(rows, key=lambda row: order[id(row)])


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
