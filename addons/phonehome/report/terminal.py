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

from ..analysis.timeline import format_timeline
from ..model import most_severe, severity_rank
from ..terms import format_size
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


def _grouped(report: Mapping[str, Any], key: Any) -> dict[str, tuple[int, int]]:
    flows: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for flow in report["flows"]:
        name = key(flow)
        flows[name] += 1
        size[name] += int(flow.get("bytes_out") or 0)
    return {name: (count, size[name]) for name, count in flows.most_common()}


def _trigger_category_table(report: Mapping[str, Any]) -> Table:
    categories = [c for c, _ in Counter(
        c for f in report["flows"] for c in f.get("categories") or ()).most_common()]
    table = Table(title="Triggers × data categories (flows)", title_justify="left",
                  show_edge=False)
    table.add_column("trigger")
    for category in categories:
        table.add_column(safe_text(category.replace("_", " ")), justify="right")
    rows: dict[str, Counter[str]] = {}
    for flow in report["flows"]:
        row = rows.setdefault(flow["trigger"], Counter())
        row.update(flow.get("categories") or ())
    for trigger, row in rows.items():
        table.add_row(safe_text(trigger), *(Text(str(row[c] or "")) for c in categories))
    return table


def _party_table(report: Mapping[str, Any]) -> Table:
    table = Table(title="First party vs third party", title_justify="left", show_edge=False)
    for column in ("party", "organization", "hosts", "flows", "bytes out", "telemetry"):
        table.add_column(column, justify="right" if column in ("flows", "telemetry") else "left")
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for flow in report["flows"]:
        key = (flow["party"], flow.get("organization") or "?")
        group = groups.setdefault(key, {"hosts": set(), "flows": 0, "bytes": 0, "telemetry": 0})
        group["hosts"].add(flow["host"])
        group["flows"] += 1
        group["bytes"] += int(flow.get("bytes_out") or 0)
        group["telemetry"] += flow["purpose"] == "telemetry"
    for (party, org), group in sorted(groups.items()):
        table.add_row(safe_text(party), safe_text(org),
                      safe_text(", ".join(sorted(group["hosts"])), limit=60),
                      Text(str(group["flows"])), Text(format_size(group["bytes"])),
                      Text(str(group["telemetry"])))
    return table


def _findings_table(report: Mapping[str, Any], limit: int = 20) -> Table:
    table = Table(title="Findings", title_justify="left", show_edge=False)
    for column in ("severity", "type", "encoding", "host", "location", "evidence"):
        table.add_column(column)
    rows = []
    for flow in report["flows"]:
        for finding in flow.get("findings") or ():
            rows.append((flow, finding))
    rows.sort(key=lambda row: -severity_rank(row[1]["severity"]))
    for flow, finding in rows[:limit]:
        table.add_row(
            safe_text(finding["severity"], style=SEVERITY_STYLE.get(finding["severity"], "")),
            safe_text(finding["type"]), safe_text(finding.get("encoding")),
            safe_text(flow["host"]), safe_text(finding["location"], limit=48),
            safe_text(finding["evidence"], limit=40),
        )
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more in the report files"
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


def format_summary(report: Mapping[str, Any]) -> RenderableType:
    """The end-of-audit summary as one rich renderable."""
    summary = report["summary"]
    parts: list[RenderableType] = [
        Text(
            f"phonehome: {summary['flows']} flows, {format_size(summary['bytes_out'])} sent, "
            f"{sum(summary['by_finding_type'].values())} findings, "
            f"{summary.get('audit_errors', 0)} audit errors",
            style="bold",
        )
    ]
    app = report.get("app")
    if app:
        who = app.get("vendor") or app.get("name") or "none recognised"
        pack = f" ({app['name']})" if app.get("name") else ""
        parts.append(Text(f"app audited: {who}{pack}; first party means this vendor"))
    if report.get("claims"):
        parts.append(_claims_table(report))
    parts.append(_count_table("By host", _grouped(report, lambda f: f["host"]), "host"))
    parts.append(_count_table(
        "By content type",
        _grouped(report, lambda f: (f.get("content_type") or "").split(";")[0] or "(none)"),
        "content type"))
    parts.append(_count_table("By method", _grouped(report, lambda f: f["method"]), "method"))
    if report["flows"]:
        parts.append(_trigger_category_table(report))
        parts.append(_party_table(report))
    if report["flows"]:
        parts.append(format_timeline(report))
    if summary["by_finding_type"]:
        parts.append(_findings_table(report))
    return Group(*parts)
