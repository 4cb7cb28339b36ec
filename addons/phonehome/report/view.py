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
from ..model import most_severe
from ..terms import format_size

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


def format_time(ts: float | int | None, with_date: bool = False) -> str:
    """Epoch seconds → `HH:MM:SS.s` UTC (optionally with the date)."""
    if ts is None:
        return ""
    moment = _dt.datetime.fromtimestamp(float(ts), tz=_dt.timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")
    return f"{text}.{int(moment.microsecond / 100_000)}"


def max_severity(findings: Iterable[Mapping[str, Any]]) -> str | None:
    return most_severe(finding.get("severity", "info") for finding in findings)
