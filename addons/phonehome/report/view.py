"""Pure helpers that turn the report dict into rows for the text formats.

Markdown, HTML, CSV and the diff all read the report through these, so the
formats agree with one another: the same endpoint keys, the same finding
order, the same counts.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..analysis.timeline.cadence import endpoint_template
from ..model import most_severe, severity_rank
from ..terms import format_size

__all__ = [
    "endpoint_key",
    "endpoint_rows",
    "finding_rows",
    "format_size",
    "format_time",
    "max_severity",
    "path_template",
    "split_endpoint",
]

def path_template(path: str) -> str:
    """`/devices/7f3c…-…/x` → `/devices/{id}/x`; the query string is dropped.

    The same templating the timeline uses for `cadence[].endpoint`, so the
    endpoint table, the cadence column and the diff all name endpoints alike.
    """
    path = path if path.startswith("/") else "/" + path
    return split_endpoint(endpoint_template("GET", "http://host.invalid" + path))[2] or "/"


def endpoint_key(flow: Mapping[str, Any]) -> str:
    """`METHOD host/path-template`, the unit endpoints are grouped and diffed by."""
    url = str(flow.get("url") or "")
    host = str(flow.get("host") or "")
    try:
        return endpoint_template(str(flow.get("method") or "?"), url, host)
    except ValueError:  # an unparsable URL still gets a row of its own
        return f"{str(flow.get('method') or '?').upper()} {host}/"


def split_endpoint(key: str) -> tuple[str, str, str]:
    """`POST host/p` → ("POST", "host", "/p")."""
    method, _, rest = key.partition(" ")
    host, slash, path = rest.partition("/")
    return method, host, slash + path


def _normal_endpoint(text: str) -> str:
    """Loose form used to match `cadence[].endpoint` written by another stage."""
    text = re.sub(r"^[A-Z]+\s+", "", text.strip())
    text = re.sub(r"^[a-z]+://", "", text)
    host, slash, path = text.partition("/")
    return host.lower() + path_template(slash + path)


def format_time(ts: float | int | None, with_date: bool = False) -> str:
    """Epoch seconds → `HH:MM:SS.s` UTC (optionally with the date)."""
    if ts is None:
        return ""
    moment = _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return f"{text}.{int(moment.microsecond / 100_000)}"


def max_severity(findings: Iterable[Mapping[str, Any]]) -> str | None:
    return most_severe(finding.get("severity", "info") for finding in findings)


def finding_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every finding with its flow's context, most severe first, then by time."""
    rows: list[dict[str, Any]] = []
    for flow in report.get("flows") or ():
        for index, finding in enumerate(flow.get("findings") or ()):
            rows.append(
                {
                    **finding,
                    "flow_id": flow["id"],
                    "index": index,
                    "timestamp": flow["timestamp"],
                    "host": flow["host"],
                    "url": flow["url"],
                    "method": flow["method"],
                    "purpose": flow["purpose"],
                    "party": flow["party"],
                    "trigger": flow["trigger"],
                    "phase": flow.get("phase"),
                    "flow_categories": list(flow.get("categories") or ()),
                }
            )
    rows.sort(key=lambda r: (-severity_rank(r.get("severity", "info")), r["timestamp"], r["index"]))
    return rows


def endpoint_rows(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per endpoint: volume, purpose, party, triggers, events, findings, cadence."""
    cadence_by_endpoint: dict[str, list[Mapping[str, Any]]] = {}
    for entry in report.get("cadence") or ():
        cadence_by_endpoint.setdefault(_normal_endpoint(str(entry.get("endpoint", ""))), []).append(
            entry
        )
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for flow in report.get("flows") or ():
        groups.setdefault(endpoint_key(flow), []).append(flow)
    rows = []
    for key, flows in groups.items():
        method, host, path = split_endpoint(key)
        findings = [f for flow in flows for f in flow.get("findings") or ()]
        rows.append(
            {
                "endpoint": key,
                "method": method,
                "host": host,
                "path": path,
                "flows": len(flows),
                "flow_ids": [flow["id"] for flow in flows],
                "bytes_out": sum(int(flow.get("bytes_out") or 0) for flow in flows),
                "purposes": _ranked(flow["purpose"] for flow in flows),
                "parties": _ranked(flow["party"] for flow in flows),
                "organizations": _ranked(
                    str(flow.get("organization")) for flow in flows if flow.get("organization")
                ),
                "triggers": _ranked(flow["trigger"] for flow in flows),
                "events": _ranked(e["name"] for flow in flows for e in flow.get("events") or ()),
                "categories": _ranked(c for flow in flows for c in flow.get("categories") or ()),
                "findings": len(findings),
                "max_severity": max_severity(findings),
                "first": min(flow["timestamp"] for flow in flows),
                "last": max(flow["timestamp"] for flow in flows),
                "cadence": cadence_by_endpoint.get(_normal_endpoint(key), []),
            }
        )
    rows.sort(key=lambda r: (-r["flows"], r["endpoint"]))
    return rows


def _ranked(values: Iterable[str]) -> list[str]:
    return [value for value, _ in Counter(values).most_common()]

