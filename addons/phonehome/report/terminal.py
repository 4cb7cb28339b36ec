"""Terminal output: pure builders of rich renderables. Printing is the caller's.

Every cell is a rich `Text`, and captured text goes through `safe_text`, so a
payload can neither carry markup nor drive the terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..analysis.session import SessionReport
from ..analysis.timeline import format_timeline
from ..model import most_severe
from ..terms import format_size
from .document import Document, as_document
from .safe_text import safe_text

__all__ = ["format_flow_line", "format_summary", "SEVERITY_STYLE", "VERDICT_STYLE"]

SEVERITY_STYLE = {"info": "dim", "low": "cyan", "medium": "yellow", "high": "bold red"}
VERDICT_STYLE = {"holds": "green", "contradicted": "bold red", "untested": "yellow"}


def format_flow_line(record: Mapping[str, Any]) -> Text:
    """One line per audited flow, for the live view."""
    findings = record.get("findings") or ()
    worst = most_severe(f["severity"] for f in findings)
    line = Text()
    method = safe_text(record["method"], style="bold")
    line.append_text(method)
    line.append(" " * max(1, 7 - len(method)))
    line.append_text(safe_text(record["host"], style="cyan"))
    path = str(record["url"]).split(str(record["host"]), 1)[-1]
    line.append_text(safe_text(path, limit=60))
    line.append(" ")
    line.append_text(safe_text(f"{record['purpose']}/{record['trigger']}", style="magenta"))
    line.append(" ")
    line.append(f"{format_size(record['bytes_out'])}", style="dim")
    if findings:
        types = Counter(f["type"] for f in findings)
        style = SEVERITY_STYLE.get(worst or "info", "")
        line.append("  ⚑ ", style=style)
        line.append_text(safe_text(", ".join(f"{t}×{n}" for t, n in types.most_common(4)),
                                   style=style))
    if record.get("audit_error"):
        line.append("  ")
        line.append_text(safe_text(f"audit_error:{record['audit_error']['stage']}", style="red"))
    return line


def _count_table(title: str, counts: Mapping[str, Any], label: str, limit: int = 12) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column(label)
    table.add_column("flows", justify="right")
    table.add_column("bytes out", justify="right")
    for key, (flows, size) in list(counts.items())[:limit]:
        table.add_row(safe_text(key), Text(str(flows)), Text(format_size(size)))
    return table


def _trigger_category_table(document: Document) -> Table:
    tally = document.tally
    categories = tally.categories
    table = Table(title="Triggers × data categories (flows)", title_justify="left",
                  show_edge=False)
    table.add_column("trigger")
    for category in categories:
        table.add_column(safe_text(category.replace("_", " ")), justify="right")
    for trigger, row in tally.trigger_categories.items():
        table.add_row(safe_text(trigger), *(Text(str(row.get(c) or "")) for c in categories))
    return table


def _party_table(document: Document) -> Table:
    table = Table(title="First party vs third party", title_justify="left", show_edge=False)
    for column in ("party", "organization", "hosts", "flows", "bytes out", "telemetry"):
        table.add_column(column, justify="right" if column in ("flows", "telemetry") else "left")
    for row in document.tally.parties:
        table.add_row(safe_text(row["party"]), safe_text(row["organization"]),
                      safe_text(", ".join(row["hosts"]), limit=60),
                      Text(str(row["flows"])), Text(format_size(row["bytes"])),
                      Text(str(row["telemetry"])))
    return table


def _findings_table(document: Document, limit: int = 20) -> Table:
    """The most severe finding groups: one row per finding repeated across flows."""
    table = Table(title="Findings", title_justify="left", show_edge=False)
    for column in ("severity", "type", "encoding", "host", "location", "evidence", "flows"):
        table.add_column(column, justify="right" if column == "flows" else "left")
    groups = document.groups
    for group in groups[:limit]:
        severity = group["severity"]
        table.add_row(
            safe_text(severity, style=SEVERITY_STYLE.get(severity, "")),
            safe_text(group["type"]), safe_text(", ".join(group.get("encodings") or ())),
            safe_text(group["host"]), safe_text(group["location"], limit=48),
            safe_text(group["evidence"], limit=40), Text(str(group["flow_count"])),
        )
    if len(groups) > limit:
        table.caption = f"{len(groups) - limit} more finding groups in the report files"
    return table


def _claims_table(report: Mapping[str, Any]) -> Table:
    table = Table(title="Vendor claims", title_justify="left", show_edge=False)
    table.add_column("claim")
    table.add_column("verdict")
    table.add_column("why")
    for claim in report.get("claims") or ():
        table.add_row(safe_text(claim["statement"], limit=60),
                      safe_text(claim["verdict"], style=VERDICT_STYLE.get(claim["verdict"], "")),
                      safe_text(claim.get("reason", ""), limit=80))
    return table


def format_summary(report: Mapping[str, Any] | Document | SessionReport) -> RenderableType:
    """The end-of-audit summary as one rich renderable."""
    document = as_document(report)
    sections = document.report
    summary = sections["summary"]
    parts: list[RenderableType] = [
        Text(
            f"phonehome: {summary['flows']} flows, {format_size(summary['bytes_out'])} sent, "
            f"{sum(summary['by_finding_type'].values())} findings, "
            f"{summary.get('audit_errors', 0)} audit errors",
            style="bold",
        )
    ]
    app = sections.get("app")
    if app:
        who = app.get("vendor") or app.get("name") or "none recognised"
        pack = f" ({app['name']})" if app.get("name") else ""
        parts.append(Text(f"app audited: {who}{pack}; first party means this vendor"))
    if sections.get("claims"):
        parts.append(_claims_table(sections))
    tally = document.tally
    parts.append(_count_table("By host", tally.by_host, "host"))
    parts.append(_count_table("By content type", tally.by_content_type, "content type"))
    parts.append(_count_table("By method", tally.by_method, "method"))
    if document.flow_count:
        parts.append(_trigger_category_table(document))
        parts.append(_party_table(document))
        parts.append(format_timeline(document.timeline))
    if summary["by_finding_type"]:
        parts.append(_findings_table(document))
    return Group(*parts)
