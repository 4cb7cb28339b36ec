"""Terminal output: pure builders of rich renderables. Printing is the caller's.

Every cell is a rich `Text`, and captured text goes through `safe_text`, so a payload can
neither carry markup nor drive the terminal. Key columns wrap (long tokens fold) and are
never cut; the default summary is `terminal_summary.Summary`, `details` the full tables.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ..analysis.session import SessionReport
from ..analysis.timeline import format_timeline
from ..model import most_severe
from ..terms import format_size
from .document import ROWS_SHOWN, Document, as_document
from .safe_text import safe_text
from .terminal_summary import (
    SEVERITY_STYLE,
    VERDICT_STYLE,
    DigestList,
    Paragraph,
    Summary,
    headline,
    report_paths,
)

__all__ = ["format_flow_line", "format_summary", "RunningTotal", "SEVERITY_STYLE",
           "VERDICT_STYLE", "TOTAL_INTERVAL", "LiveView"]

TOTAL_INTERVAL = 30.0
"""Seconds between two running totals of the live view."""
MAX_DESTINATIONS = 100_000
"""Distinct destinations the running total tells apart; past this it says "N+"."""
HOST_CHARS = 80
"""Longest host shown in a live line: a Host header can be anything."""



def format_flow_line(record: Mapping[str, Any]) -> Text:
    """One line per audited flow, for the live view."""
    findings = record.get("findings") or ()
    worst = most_severe(f["severity"] for f in findings)
    line = Text()
    method = safe_text(record["method"], style="bold")
    line.append_text(method)
    line.append(" " * max(1, 7 - len(method)))
    line.append_text(safe_text(record["host"], style="cyan", limit=HOST_CHARS))
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
    table.add_column(label, overflow="fold")
    table.add_column("flows", justify="right", no_wrap=True)
    table.add_column("bytes out", justify="right", no_wrap=True)
    for key, (flows, size) in list(counts.items())[:limit]:
        table.add_row(safe_text(key), Text(str(flows)), Text(format_size(size)))
    return table


class _Fit:
    """`wide` when it fits the console's width, else `narrow`."""

    def __init__(self, wide: RenderableType, narrow: RenderableType) -> None:
        self.wide, self.narrow = wide, narrow

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update_width(1 << 16)
        fits = Measurement.get(console, unbounded, self.wide).maximum <= options.max_width
        yield self.wide if fits else self.narrow


def _trigger_category_table(document: Document) -> RenderableType:
    """A matrix where its full headers fit, else one line of categories per trigger."""
    tally = document.tally
    categories = tally.categories
    title = "Triggers × data categories (flows)"
    wide = Table(title=title, title_justify="left", show_edge=False)
    wide.add_column("trigger", no_wrap=True)
    for category in categories:
        wide.add_column(safe_text(category.replace("_", " ")), justify="right", no_wrap=True)
    narrow = Table(title=title, title_justify="left", show_edge=False)
    narrow.add_column("trigger", no_wrap=True)
    narrow.add_column("data categories (flows)")
    for trigger, row in tally.trigger_categories.items():
        wide.add_row(safe_text(trigger), *(Text(str(row.get(c) or "")) for c in categories))
        narrow.add_row(safe_text(trigger), safe_text(", ".join(
            f"{c.replace('_', ' ')} {row[c]}" for c in categories if row.get(c))))
    return _Fit(wide, narrow)


def _party_table(document: Document) -> Table:
    table = Table(title="First party vs third party", title_justify="left", show_edge=False,
                  expand=True)
    table.add_column("party", no_wrap=True)
    table.add_column("organization", max_width=14, overflow="fold")
    table.add_column("hosts", ratio=1, overflow="fold")
    for column in ("flows", "bytes out", "telemetry"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in document.tally.parties:
        table.add_row(safe_text(row["party"]), safe_text(row["organization"]),
                      safe_text(", ".join(row["hosts"])),
                      Text(str(row["flows"])), Text(format_size(row["bytes"])),
                      Text(str(row["telemetry"])))
    return table


def _findings_table(document: Document, limit: int = 20) -> Table:
    """The most severe finding groups: one row per finding repeated across flows."""
    table = Table(title="Findings", title_justify="left", show_edge=False, expand=True)
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", no_wrap=True)
    table.add_column("host and field", ratio=1, overflow="fold")
    table.add_column("evidence", max_width=18, overflow="fold")
    table.add_column("flows", justify="right", no_wrap=True)
    groups = document.groups
    for group in groups[:limit]:
        severity = group["severity"]
        finding = safe_text(group["type"])
        finding.append("\n")
        finding.append_text(safe_text(", ".join(group.get("encodings") or ()), style="dim"))
        where = safe_text(group["host"], style="cyan")
        where.append("\n")
        where.append_text(safe_text(group["location"]))
        table.add_row(safe_text(severity, style=SEVERITY_STYLE.get(severity, "")), finding,
                      where, safe_text(group["evidence"]), Text(str(group["flow_count"])))
    if len(groups) > limit:
        table.caption = f"{len(groups) - limit} more finding groups in the report files"
    return table


def _claims_table(report: Mapping[str, Any]) -> Table:
    table = Table(title="Vendor claims", title_justify="left", show_edge=False)
    table.add_column("claim", ratio=3, overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("why", ratio=2, overflow="fold")
    for claim in report.get("claims") or ():
        table.add_row(safe_text(claim["statement"]),
                      safe_text(claim["verdict"], style=VERDICT_STYLE.get(claim["verdict"], "")),
                      safe_text(claim.get("reason", "")))
    return table


def format_summary(report: Mapping[str, Any] | Document | SessionReport, *,
                   details: bool = False,
                   written: Sequence[Path | str] = ()) -> RenderableType:
    """The end-of-audit summary as one rich renderable: at most 60 lines by default
    (headline, claims, the digest's top entries, report paths), or every table."""
    document = as_document(report)
    if not details:
        return Summary(document, written)
    return _details(document, written)


def _details(document: Document, written: Sequence[Path | str]) -> RenderableType:
    sections = document.report
    summary = sections["summary"]
    parts: list[RenderableType] = [Paragraph(headline(document))]
    app = sections.get("app")
    if app:
        who = app.get("vendor") or app.get("name") or "none recognised"
        pack = f" ({app['name']})" if app.get("name") else ""
        parts.append(Paragraph(safe_text(f"app audited: {who}{pack}; first party means "
                                         "this vendor")))
    if sections.get("claims"):
        parts.append(_claims_table(sections))
    if document.digest:
        parts.append(DigestList(document.digest, limit=ROWS_SHOWN))
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
    if written:
        parts.append(Paragraph(report_paths(written)))
    return Group(*parts)


_NEW_SHOWN = 5


class RunningTotal:
    """The live view's running total: flows, findings and new destinations, at most once
    per `interval` seconds and only when flows came in since the last one."""

    def __init__(self, interval: float = TOTAL_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.flows = self.findings = self.high = 0
        self._seen: set[int] = set()
        """Hashes of the destinations met, at most MAX_DESTINATIONS: hostile traffic
        may name a new host in every request, and a name may be long."""
        self._new: list[str] = []
        """The first few new destinations since the last line, for showing."""
        self._new_count = 0
        self._flows_then = 0
        self._findings_then = 0
        self._last = clock()

    def add(self, record: Mapping[str, Any]) -> None:
        findings = record.get("findings") or ()
        self.flows += 1
        self.findings += len(findings)
        self.high += sum(1 for f in findings if f.get("severity") == "high")
        host = str(record.get("host") or "")
        key = hash(host)
        if key not in self._seen and len(self._seen) < MAX_DESTINATIONS:
            self._seen.add(key)
            self._new_count += 1
            if len(self._new) < _NEW_SHOWN:
                self._new.append(host[:HOST_CHARS])

    @property
    def destinations(self) -> str:
        count = len(self._seen)
        return f"{count}+" if count >= MAX_DESTINATIONS else str(count)

    def due(self) -> Text | None:
        """The total line when one is due, else None."""
        if self.interval <= 0 or self.flows == self._flows_then:
            return None
        now = self.clock()
        if now - self._last < self.interval:
            return None
        line = Text("── total: ", style="bold")
        line.append(f"{self.flows} flows (+{self.flows - self._flows_then}), "
                    f"{self.findings} findings (+{self.findings - self._findings_then}"
                    f"{f', {self.high} high in all' if self.high else ''}), "
                    f"{self.destinations} destinations", style="bold")
        if self._new_count:
            line.append(f" (+{self._new_count} new: ", style="bold")
            line.append_text(safe_text(", ".join(self._new), style="cyan"))
            line.append(f"{', …' if self._new_count > len(self._new) else ''})", style="bold")
        self._last, self._flows_then, self._findings_then = now, self.flows, self.findings
        self._new, self._new_count = [], 0
        return line


class LiveView:
    """What mitmdump's terminal shows while it runs: a line per audited flow and the
    running total. `show` takes each record, `tick` is called when idle."""

    def __init__(self, console: Any, interval: float = TOTAL_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console
        self.total = RunningTotal(interval, clock)

    def show(self, record: Mapping[str, Any]) -> None:
        self.console.print(format_flow_line(record))
        self.total.add(record)
        self.tick()

    def tick(self) -> None:
        line = self.total.due()
        if line is not None:
            self.console.print(line)
