"""The default terminal summary: what of yours went where, on one screen (at most 60 lines).

A rich renderable laid out at render time, so every line fits the console's width: long
text wraps at spaces and, past its line budget, ends with "…" at a word boundary.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from ..analysis.tally import OTHER
from ..terms import format_size
from .document import Document
from .safe_text import safe_text

__all__ = ["Summary", "DigestList", "Paragraph", "MAX_LINES", "headline", "report_paths",
           "format_clock"]

MAX_LINES = 60
"""The summary fits an 80×60 terminal."""
_CLAIM_LINES = 24
"""At most this many lines of claims, so the digest always has room."""
_REPORT_LINES = 3
_DESTINATION_LINES = 2
_HANG = 17
"""Where a claim's statement and reason start, right of its verdict."""

SEVERITY_STYLE = {"info": "dim", "low": "cyan", "medium": "yellow", "high": "bold red"}
VERDICT_STYLE = {"holds": "green", "contradicted": "bold red", "untested": "yellow"}
VERDICT_MARK = {verdict: (f"{mark} {verdict}", VERDICT_STYLE[verdict])
                for verdict, mark in (("holds", "✓"), ("contradicted", "✗"), ("untested", "?"))}


def format_clock(first: float, last: float) -> str:
    """`10:15–10:37`, with the dates when the span crosses a day."""
    a, b = time.localtime(first), time.localtime(last)
    if a[:3] != b[:3]:
        return f"{time.strftime('%Y-%m-%d %H:%M', a)}–{time.strftime('%Y-%m-%d %H:%M', b)}"
    if time.strftime("%H:%M", a) == time.strftime("%H:%M", b):
        return time.strftime("%H:%M", a)
    return f"{time.strftime('%H:%M', a)}–{time.strftime('%H:%M', b)}"


def wrap(console: Console, text: Text, width: int, max_lines: int,
         indent: int = 0) -> list[Text]:
    """`text` in lines of `width` cells (after `indent` spaces), wrapped at spaces; past
    `max_lines` the last line ends with "…" after a whole word."""
    room = max(8, width - indent)
    lines = list(text.wrap(console, room, overflow="fold"))
    if len(lines) > max_lines:
        lines = list(text.wrap(console, room - 1, overflow="fold"))[:max_lines]
        lines[-1].rstrip()
        lines[-1].append("…")
    pad = " " * indent
    return [Text(pad) + line if indent else line for line in lines]


class Paragraph:
    """Text wrapped to the console's width even when printed with soft wrap."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from wrap(console, self.text, options.max_width, 1 << 16)


def headline(document: Document) -> Text:
    summary = document.report["summary"]
    severities = summary.get("by_severity") or {}
    findings = sum((summary.get("by_finding_type") or {}).values())
    by_host = summary.get("by_host") or {}
    hosts = len(by_host)
    app = document.report.get("app") or {}
    who = app.get("vendor") or app.get("name")
    text = Text("phonehome", style="bold")
    if who:
        text.append(" · ")
        text.append_text(safe_text(who, style="bold"))
    more = "+" if OTHER in by_host else ""  # the rest were counted, not told apart
    text.append(f": {summary['flows']} flows to {hosts - bool(more)}{more} "
                f"host{'s' if hosts != 1 else ''}, "
                f"{format_size(summary['bytes_out'])}, {findings} findings", style="bold")
    if severities.get("high"):
        text.append(f" ({severities['high']} high)", style="bold red")
    if summary.get("audit_errors"):
        text.append(f", {summary['audit_errors']} audit errors", style="red")
    return text


def report_paths(written: Sequence[Path | str]) -> Text:
    """`Reports in DIR/: audit.json, audit.md …` (one folder), else every path."""
    paths = [Path(p) for p in written]
    folders = {p.parent for p in paths}
    if len(folders) == 1:
        folder = next(iter(folders))
        return Text(f"Reports in {folder}/: " + ", ".join(p.name for p in paths))
    return Text("Reports: " + ", ".join(str(p) for p in paths))


def _claim_lines(console: Console, claim: Mapping[str, Any], width: int) -> list[Text]:
    label, style = VERDICT_MARK.get(claim.get("verdict", ""), (claim.get("verdict", "?"), ""))
    lines = wrap(console, safe_text(claim.get("statement")), width, 2, indent=_HANG)
    lines[0] = Text(" ") + Text(f"{label:<{_HANG - 2}} ", style=style) + lines[0][_HANG:]
    if claim.get("reason"):
        lines += wrap(console, safe_text(claim["reason"], style="dim"), width, 1, indent=_HANG)
    return lines


def _triggers(triggers: Mapping[str, int], most: int = 2) -> str:
    names = list(triggers)
    shown = "/".join(names[:most])
    return shown + (f" +{len(names) - most}" if len(names) > most else "")


def short_path(path: str, limit: int = 40) -> str:
    """A long field path as its head and its last field: `$.metrics[].eventPayload…userEmail`."""
    if len(path) <= limit:
        return path
    parts = path.split(".")
    if len(parts) < 4:
        return path
    shortened = ".".join(parts[:3]) + "…" + parts[-1]
    return shortened if len(shortened) <= limit else f"{parts[0]}…{parts[-1]}"


def _destination(destination: Mapping[str, Any]) -> Text:
    """`host path +2 (plain, 41×, sign_in/in_meeting)`."""
    text = safe_text(destination.get("host"), style="cyan")
    locations = list(destination.get("locations") or ())
    if locations:
        text.append(" ")
        text.append_text(safe_text(short_path(str(locations[0]))))
        if len(locations) > 1:
            text.append(f" +{len(locations) - 1}", style="dim")
    details = [", ".join(destination.get("encodings") or ()), f"{destination.get('count', 0)}×",
               _triggers(destination.get("triggers") or {})]
    text.append(" (")
    text.append_text(safe_text(", ".join(d for d in details if d)))
    text.append(")")
    return text


def _destinations(destinations: Sequence[Mapping[str, Any]]) -> Text:
    """Per organisation, its busiest destination and how many hosts more."""
    by_org: dict[str, list[Mapping[str, Any]]] = {}
    for destination in destinations:
        org = destination.get("organization") or destination.get("host") or "?"
        by_org.setdefault(str(org), []).append(destination)
    text = Text()
    for i, (org, group) in enumerate(by_org.items()):
        if i:
            text.append("; ")
        text.append_text(safe_text(org, style="bold"))
        text.append(": ")
        text.append_text(_destination(group[0]))
        hosts = {d.get("host") for d in group[1:]} - {group[0].get("host")}
        if hosts:
            text.append(f" +{len(hosts)} host{'s' if len(hosts) > 1 else ''}", style="dim")
    return text


def _entry_lines(console: Console, entry: Mapping[str, Any], width: int) -> list[Text]:
    """`high   your e-mail m***@w***.org → Cisco Webex, Amplitude`, then how often, when
    and where to, indented."""
    severity = str(entry.get("severity", ""))
    head = Text(" ") + Text(f"{severity:<7}", style=SEVERITY_STYLE.get(severity, ""))
    head.append_text(safe_text(entry.get("label") or entry.get("item"), style="bold"))
    head.append(" ")
    head.append_text(safe_text(entry.get("evidence")))
    organizations = list(entry.get("organizations") or ())
    if organizations:
        head.append(" → ")
        head.append_text(safe_text(", ".join(organizations), style="bold"))
    flows = entry.get("flow_count", 0)
    body = Text(f"{entry.get('count', 0)}× in {flows} flow{'s' if flows != 1 else ''}, "
                f"{format_clock(entry['first_seen'], entry['last_seen'])} · ", style="dim")
    body.append_text(_destinations(entry.get("destinations") or ()))
    return wrap(console, head, width, 1) + wrap(console, body, width, _DESTINATION_LINES,
                                                indent=8)


def _full_destination(destination: Mapping[str, Any]) -> Text:
    """Every field path, encoding and trigger of one destination."""
    text = safe_text(destination.get("organization") or destination.get("host"), style="bold")
    text.append(": ")
    text.append_text(safe_text(destination.get("host"), style="cyan"))
    text.append(" ")
    text.append_text(safe_text(", ".join(destination.get("locations") or ())))
    triggers = ", ".join(f"{t} {n}" for t, n in (destination.get("triggers") or {}).items())
    text.append(" (")
    text.append_text(safe_text(f"{', '.join(destination.get('encodings') or ())}; "
                               f"{destination.get('count', 0)}×; {triggers}"))
    text.append(")")
    return text


class DigestList:
    """Every digest entry with every destination, for `--details`."""

    def __init__(self, entries: Sequence[Mapping[str, Any]], limit: int) -> None:
        self.entries = list(entries)
        self.limit = limit

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        yield Text("What of yours went where", style="bold")
        for entry in self.entries[:self.limit]:
            yield from _entry_lines(console, entry, width)[:1]
            flows = entry.get("flow_count", 0)
            yield from wrap(console, Text(
                f"{entry.get('count', 0)}× in {flows} flow{'s' if flows != 1 else ''}, "
                f"{format_clock(entry['first_seen'], entry['last_seen'])}", style="dim"),
                width, 1, indent=8)
            for destination in entry.get("destinations") or ():
                yield from wrap(console, _full_destination(destination), width, 1000, indent=8)
        if len(self.entries) > self.limit:
            yield Text(f" … {len(self.entries) - self.limit} more in the report files",
                       style="dim")


class Summary:
    """Headline, claims with verdict and reason, the digest's top entries, report paths."""

    def __init__(self, document: Document, written: Sequence[Path | str] = (),
                 max_lines: int = MAX_LINES) -> None:
        self.document = document
        self.written = tuple(written)
        self.max_lines = max_lines

    def lines(self, console: Console, width: int) -> list[Text]:
        report = self.document.report
        top = wrap(console, headline(self.document), width, 1)
        tail: list[Text] = []
        if self.written:
            tail = [Text()] + wrap(console, report_paths(self.written), width, _REPORT_LINES)
        claims = list(report.get("claims") or ())
        claim_part: list[Text] = []
        if claims:
            claim_part = [Text(), Text("Vendor claims", style="bold")]
            budget = min(_CLAIM_LINES, self.max_lines - len(top) - len(tail) - 6)
            for shown, claim in enumerate(claims):
                lines = _claim_lines(console, claim, width)
                left = len(claims) - shown
                if len(claim_part) - 2 + len(lines) + (1 if left > 1 else 0) > budget:
                    claim_part.append(Text(f" … {left} more claims in the report files",
                                           style="dim"))
                    break
                claim_part += lines
        budget = self.max_lines - len(top) - len(claim_part) - len(tail)
        return top + claim_part + self._digest(console, width, budget) + tail

    def _readable_files(self) -> str:
        """Where a person reads the rest: the HTML and Markdown reports written."""
        names = sorted(Path(p).name for p in self.written) if self.written else [
            "audit.html", "audit.md"]
        readable = [name for name in names if name.endswith((".html", ".md"))]
        return f"the report files ({', '.join(readable)})" if readable else "audit.json"

    def _digest(self, console: Console, width: int, budget: int) -> list[Text]:
        if budget < 3:
            return []
        entries = self.document.digest
        if not entries:
            return [Text(), Text("Nothing personal found in what was sent.", style="green")]
        out = [Text(), Text("What of yours went where", style="bold")]
        for shown, entry in enumerate(entries):
            lines = _entry_lines(console, entry, width)
            more = len(entries) - shown
            if len(out) + len(lines) + (1 if more > 1 else 0) > budget:
                out[1].append(f" (top {shown} of {len(entries)})", style="dim")
                out.append(Text(f" … {more} more in {self._readable_files()}", style="dim"))
                break
            out += lines
        return out

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(console, options.max_width)
