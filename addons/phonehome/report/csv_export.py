"""CSV exports for spreadsheets: one row per flow, one row per finding.

Payload values are hostile: each string cell is one line with invisible characters
made visible, and one a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, tab,
CR first) gets a leading apostrophe. Lists are joined with "; ".
"""

from __future__ import annotations

import csv
import io
import shutil
import tempfile
from collections.abc import Container, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from msgspec import UNSET

from ..analysis.records import FlowView, flow_from_mapping
from ..model import SEVERITIES, severity_rank
from .safe_text import visible
from .view import format_time

__all__ = ["FLOW_COLUMNS", "FINDING_COLUMNS", "format_flows_csv", "format_findings_csv",
           "FlowsCsv", "FindingsCsv", "flow_row", "finding_row"]

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


def _writer(out: IO[str]) -> Any:
    return csv.writer(out, lineterminator="\r\n")


def _write(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    out = io.StringIO()
    writer = _writer(out)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(_cells(columns, row))
    return out.getvalue()


def _cells(columns: Sequence[str], row: Mapping[str, Any]) -> list[Any]:
    return [_cell(row.get(column)) for column in columns]


def _field(value: Any) -> Any:
    return None if value is UNSET else value


def _worst(findings: Iterable[Any]) -> str | None:
    best: str | None = None
    for finding in findings:
        if best is None or severity_rank(finding.severity) > severity_rank(best):
            best = finding.severity
    return best


def flow_row(flow: Any, after_opt_out: bool) -> dict[str, Any]:
    """The flows CSV row of a typed flow (FlowRecord or FlowView)."""
    findings = flow.findings
    payload = _field(flow.payload)
    error = _field(flow.audit_error)
    enforcement = _field(flow.enforcement)
    return {
        **{key: _field(getattr(flow, key)) for key in _FLOW_FIELDS},
        "timestamp": round(float(flow.timestamp), 3),
        "time_utc": format_time(flow.timestamp, with_date=True),
        "categories": _join(flow.categories),
        "events": _join(e.name for e in flow.events),
        "rule_ids": _join(flow.rule_ids),
        "payload_kind": payload.kind if payload else None,
        "truncated": _join(payload.truncated if payload else ()),
        "finding_count": len(findings),
        "max_severity": _worst(findings),
        "finding_types": _join(dict.fromkeys(f.type for f in findings)),
        "identifier_keys": _join(dict.fromkeys(i.key for i in flow.identifiers)),
        "after_opt_out": after_opt_out,
        "audit_error": f"{error.stage}: {error.reason}" if error else "",
        "enforcement": (
            f"{enforcement.get('action')}{' (dry run)' if enforcement.get('dry_run') else ''}"
            if enforcement
            else ""
        ),
    }


_FLOW_FIELDS = ("id", "source", "method", "url", "host", "purpose", "party", "organization",
                "trigger", "trigger_source", "phase", "bytes_out", "status", "content_type")


def finding_row(flow: Any, finding: Any, index: int) -> dict[str, Any]:
    """The findings CSV row of one finding of a typed flow."""
    return {
        **{key: _field(getattr(finding, key)) for key in _FINDING_FIELDS},
        "flow_id": flow.id,
        "index": index,
        "timestamp": round(float(flow.timestamp), 3),
        "time_utc": format_time(flow.timestamp, with_date=True),
        "host": flow.host,
        "url": flow.url,
        "method": flow.method,
        "purpose": flow.purpose,
        "party": flow.party,
        "trigger": flow.trigger,
        "phase": _field(flow.phase),
    }


_FINDING_FIELDS = ("type", "category", "severity", "location", "encoding", "detector",
                   "evidence", "confidence", "reason", "fingerprint")


def _views(report: Mapping[str, Any]) -> list[FlowView]:
    return [flow_from_mapping(flow, FlowView, i)
            for i, flow in enumerate(report.get("flows") or ())]


def format_flows_csv(report: Mapping[str, Any]) -> str:
    """One row per flow of a built report dict, in report order. Pure."""
    after = set(report.get("after_opt_out") or ())
    return _write(FLOW_COLUMNS, (flow_row(f, f.id in after) for f in _views(report)))


def format_findings_csv(report: Mapping[str, Any]) -> str:
    """One row per finding, most severe first, then by time. Pure."""
    rows = [(severity_rank(finding.severity), flow.timestamp, index, finding_row(flow, finding,
                                                                                   index))
            for flow in _views(report) for index, finding in enumerate(flow.findings)]
    rows.sort(key=lambda r: (-r[0], r[1], r[2]))
    return _write(FINDING_COLUMNS, (row for *_, row in rows))


class FlowsCsv:
    """The flows CSV, written one flow at a time, in session order: `after` holds the
    positions of the flows sent after the opt-out."""

    def __init__(self, out: IO[str], after: Container[int]) -> None:
        self.after = after
        self.position = 0
        self.writer = _writer(out)
        self.writer.writerow(FLOW_COLUMNS)

    def add(self, flow: Any) -> None:
        self.writer.writerow(_cells(FLOW_COLUMNS, flow_row(flow, self.position in self.after)))
        self.position += 1


class FindingsCsv:
    """The findings CSV, written one flow at a time in the order `format_findings_csv`
    sorts: each severity's rows go to a spill file of their own (flows come in time
    order), and `finish` joins them, most severe first."""

    def __init__(self, folder: Path) -> None:
        self.spills = [tempfile.TemporaryFile("w+", encoding="utf-8", newline="", dir=folder)
                       for _ in SEVERITIES]
        self.writers = [_writer(spill) for spill in self.spills]
        self.pending: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in SEVERITIES]
        self.at: float | None = None

    def add(self, flow: Any) -> None:
        if flow.timestamp != self.at:
            self._flush()
            self.at = flow.timestamp
        for index, finding in enumerate(flow.findings):
            self.pending[severity_rank(finding.severity)].append(
                (index, finding_row(flow, finding, index)))

    def _flush(self) -> None:
        """Rows of one moment go out by their index within the flow, then in flow order."""
        for writer, pending in zip(self.writers, self.pending, strict=True):
            pending.sort(key=lambda item: item[0])
            for _, row in pending:
                writer.writerow(_cells(FINDING_COLUMNS, row))
            pending.clear()

    def finish(self, out: IO[str]) -> None:
        self._flush()
        _writer(out).writerow(FINDING_COLUMNS)
        for spill in reversed(self.spills):
            spill.seek(0)
            shutil.copyfileobj(spill, out)

    def close(self) -> None:
        for spill in self.spills:
            spill.close()
