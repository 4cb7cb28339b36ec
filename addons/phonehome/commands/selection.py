"""Store targets and selections on the command line: STORE, --sensor, --since, --until."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from ..audit.store import StoreTarget, is_postgres_url
from ..audit.store_pg import StoreSelection

__all__ = ["store_target", "parse_time", "add_selection_arguments", "selection_from_args"]


def store_target(text: str) -> StoreTarget:
    """argparse type: a postgresql:// URL stays text, anything else is a file path."""
    return text if is_postgres_url(text) else Path(text)


def parse_time(text: str) -> float:
    """argparse type: epoch seconds, or an ISO 8601 date or time (UTC when no zone is given)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither epoch seconds nor an ISO 8601 time") from e
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def add_selection_arguments(parser: Any, prefix: str = "") -> None:
    dashed = f"--{prefix}-" if prefix else "--"
    what = f" for the {prefix} side" if prefix else ""
    parser.add_argument(f"{dashed}sensor", action="append", default=[], metavar="NAME",
                        help=f"only this sensor's flows{what} (repeatable; shared stores)")
    parser.add_argument(f"{dashed}since", type=parse_time, metavar="T",
                        help=f"only flows at or after T{what} (epoch seconds or ISO 8601)")
    parser.add_argument(f"{dashed}until", type=parse_time, metavar="T",
                        help=f"only flows before T{what}")


def selection_from_args(args: argparse.Namespace, prefix: str = "") -> StoreSelection | None:
    key = f"{prefix}_" if prefix else ""
    sensors = tuple(getattr(args, f"{key}sensor") or ())
    since, until = getattr(args, f"{key}since"), getattr(args, f"{key}until")
    if not sensors and since is None and until is None:
        return None
    return StoreSelection(sensors=sensors, since=since, until=until)
