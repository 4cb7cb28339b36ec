"""Pure helpers the text formats share: endpoint keys, sizes, times, severities.

Markdown, HTML, CSV and the diff name endpoints and times through these, so the
formats agree with one another.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import Any

from ..analysis.tally import endpoint_key as _endpoint_key
from ..analysis.tally import path_template, split_endpoint
from ..model import severity_rank

__all__ = [
    "endpoint_key",
    "format_size",
    "format_time",
    "max_severity",
    "path_template",
    "split_endpoint",
]


def endpoint_key(flow: Mapping[str, Any]) -> str:
    """`METHOD host/path-template`, the unit endpoints are grouped and diffed by."""
    return _endpoint_key(str(flow.get("method") or "?"), str(flow.get("url") or ""),
                         str(flow.get("host") or ""))


def format_size(n: int | float) -> str:
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def format_time(ts: float | int | None, with_date: bool = False) -> str:
    """Epoch seconds → `HH:MM:SS.s` UTC (optionally with the date)."""
    if ts is None:
        return ""
    moment = _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return f"{text}.{int(moment.microsecond / 100_000)}"


def max_severity(findings: Iterable[Mapping[str, Any]]) -> str | None:
    best: str | None = None
    for finding in findings:
        severity = finding.get("severity", "info")
        if best is None or severity_rank(severity) > severity_rank(best):
            best = severity
    return best
