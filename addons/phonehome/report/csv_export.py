"""CSV exports for spreadsheets: one row per flow, one row per finding.

Payload values are hostile input: each string cell is one line with control, bidi
and zero-width characters made visible, and one that a spreadsheet would run as a
formula (`=`, `+`, `-`, `@`, tab, carriage return at the start) gets a leading
apostrophe. Lists are joined with "; ".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .safe_text import visible
from .view import finding_rows, format_time, max_severity

__all__ = ["FLOW_COLUMNS", "FINDING_COLUMNS", "format_flows_csv", "format_findings_csv"]

FLOW_COLUMNS: tuple[str, ...] = (
    "id",
    "timestamp",
    "time_utc",
    "source",
    "method",
    "url",
    "host",
    "purpose",
    "party",
    "organization",
    "trigger",
    "trigger_source",
    "phase",
    "categories",
    "events",
    "rule_ids",
    "bytes_out",
    "status",
    "content_type",
    "payload_kind",
    "truncated",
    "finding_count",
    "max_severity",
    "finding_types",
    "identifier_keys",
    "after_opt_out",
    "audit_error",
    "enforcement",
)
FINDING_COLUMNS: tuple[str, ...] = (
    "flow_id",
    "timestamp",
    "time_utc",
    "method",
    "host",
    "url",
    "purpose",
    "party",
    "trigger",
    "phase",
    "type",
    "category",
    "severity",
    "location",
    "encoding",
    "detector",
    "evidence",
    "confidence",
    "reason",
    "fingerprint",
)

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """The one escaping function for CSV: numbers stay numbers, text is shown safe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return value
    text = visible(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _join(values: Iterable[Any]) -> str:
    return "; ".join(str(v) for v in values if v is not None and v != "")


def _write(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
    return out.getvalue()


def _flow_row(flow: Mapping[str, Any], after: set[str]) -> dict[str, Any]:
    findings = flow.get("findings") or ()
    payload = flow.get("payload") or {}
    error = flow.get("audit_error")
    enforcement = flow.get("enforcement")
    return {
        **{key: flow.get(key) for key in FLOW_COLUMNS if key in flow},
        "timestamp": round(float(flow["timestamp"]), 3),
        "time_utc": format_time(flow["timestamp"], with_date=True),
        "categories": _join(flow.get("categories") or ()),
        "events": _join(e.get("name") for e in flow.get("events") or ()),
        "rule_ids": _join(flow.get("rule_ids") or ()),
        "payload_kind": payload.get("kind"),
        "truncated": _join(payload.get("truncated") or ()),
        "finding_count": len(findings),
        "max_severity": max_severity(findings),
        "finding_types": _join(dict.fromkeys(f.get("type") for f in findings)),
        "identifier_keys": _join(
            dict.fromkeys(i.get("key") for i in flow.get("identifiers") or ())
        ),
        "after_opt_out": flow["id"] in after,
        "audit_error": f"{error.get('stage')}: {error.get('reason')}" if error else "",
        "enforcement": (
            f"{enforcement.get('action')}{' (dry run)' if enforcement.get('dry_run') else ''}"
            if enforcement
            else ""
        ),
    }


def format_flows_csv(report: Mapping[str, Any]) -> str:
    """One row per flow, in report order. Pure."""
    after = set(report.get("after_opt_out") or ())
    return _write(FLOW_COLUMNS, (_flow_row(f, after) for f in report.get("flows") or ()))


def format_findings_csv(report: Mapping[str, Any]) -> str:
    """One row per finding, most severe first (the order of the other formats). Pure."""
    rows = []
    for finding in finding_rows(report):
        rows.append(
            {
                **finding,
                "timestamp": round(float(finding["timestamp"]), 3),
                "time_utc": format_time(finding["timestamp"], with_date=True),
            }
        )
    return _write(FINDING_COLUMNS, rows)
