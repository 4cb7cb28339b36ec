"""Terminal renderables for the timeline. Pure: builds rich objects, prints nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ...report.safe_text import safe_text
from ...terms import format_size
from .core import timeline_from_report
from .values import Timeline

__all__ = ["format_timeline", "sparkline", "format_duration"]

_BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """One character per bin: blank for none, ▁ … █ scaled to the busiest bin."""
    peak = max(counts, default=0)
    if peak <= 0:
        return " " * len(counts)
    top = len(_BLOCKS) - 1
    return "".join(_BLOCKS[0 if c <= 0 else max(1, round(c / peak * top))] for c in counts)


class _Spark:
    """A sparkline as wide as its column: adjacent bins are summed when the column is
    narrower than the strip, so the whole session stays in view."""

    def __init__(self, counts: Sequence[int]) -> None:
        self.counts = list(counts)

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(min(10, len(self.counts)), len(self.counts))

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(1, min(options.max_width, len(self.counts)))
        bins = [0] * width
        for i, count in enumerate(self.counts):
            bins[i * width // len(self.counts)] += count
        yield Text(sparkline(bins), style="cyan", no_wrap=True)


def format_duration(seconds: float) -> str:
    """`45s`, `12m05s`, `1h02m`."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _offset(at: float, start: float) -> str:
    minutes, secs = divmod(int(round(at - start)), 60)
    return f"+{minutes:d}:{secs:02d}"


def _trigger_table(timeline: Timeline, start: float) -> Table:
    table = Table(title="When it phones home (per trigger)", title_justify="left")
    table.add_column("trigger", no_wrap=True)
    table.add_column("first", justify="right", no_wrap=True)
    table.add_column("last", justify="right", no_wrap=True)
    table.add_column("flows", justify="right", no_wrap=True)
    table.add_column("over the session")
    for row in timeline.triggers:
        style = "yellow" if row["trigger"] == "unknown" else None
        table.add_row(
            safe_text(row["trigger"], style=style or ""),
            _offset(row["first"], start),
            _offset(row["last"], start),
            str(row["count"]),
            _Spark(row["strip"]) if row["strip"] else Text(""),
        )
    return table


def _phase_table(timeline: Timeline, start: float) -> Table:
    table = Table(title="Phases", title_justify="left")
    table.add_column("phase")
    table.add_column("from", justify="right")
    table.add_column("duration", justify="right")
    table.add_column("flows", justify="right")
    table.add_column("bytes", justify="right")
    table.add_column("categories sent")
    for phase in timeline.phases:
        table.add_row(
            safe_text(phase["name"]),
            _offset(phase["start"], start),
            format_duration(phase.get("duration_s", phase["end"] - phase["start"])),
            str(phase.get("flows", "")),
            format_size(int(phase.get("bytes", 0))),
            safe_text(", ".join(phase.get("categories", ())) or "-"),
        )
    return table


def _cadence_table(timeline: Timeline) -> Table:
    table = Table(title="Regular streams", title_justify="left")
    table.add_column("what")
    table.add_column("every", justify="right")
    table.add_column("count", justify="right")
    table.add_column("score", justify="right")
    table.add_column("mostly in")
    for entry in timeline.cadence:
        if not entry.get("regular"):
            continue
        table.add_row(
            safe_text(entry["event"] or entry["endpoint"]),
            f"{entry['median_interval_s']:.0f} s ± {entry.get('jitter_s', 0):.1f} s",
            str(entry["count"]),
            f"{entry['score']:.2f}",
            safe_text(entry.get("phase") or "-"),
        )
    return table


def format_timeline(timeline: Timeline | Mapping[str, Any]) -> Group:
    """Per-trigger timeline, phase table and regular streams, as one renderable.

    Takes the Timeline `apply_timeline` returned, or a built report dict.
    """
    if not isinstance(timeline, Timeline):
        timeline = timeline_from_report(timeline)
    if timeline.start is None:
        return Group(Text("No flows or markers: no timeline."))
    parts: list[Table | Text] = [_trigger_table(timeline, timeline.start)]
    if timeline.phases:
        parts.append(_phase_table(timeline, timeline.start))
    if any(entry.get("regular") for entry in timeline.cadence):
        parts.append(_cadence_table(timeline))
    if timeline.after_opt_out:
        parts.append(
            Text(
                f"{len(timeline.after_opt_out)} telemetry flow(s) sent after telemetry was "
                "disabled (opt_out marker)",
                style="bold red",
            )
        )
    return Group(*parts)
