"""Reading saved captures: mitmproxy flow files (.mitm) and HAR files.

Flows are streamed, one at a time. A file that breaks part-way gives every
flow read before the break, and a `CaptureProblem` saying where it broke.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from mitmproxy.io.har import request_to_flow

from .flowfile import read_flow

__all__ = ["CaptureError", "CaptureProblem", "check_capture", "read_capture"]


class CaptureError(Exception):
    """A capture that cannot be read at all (missing, unreadable, not a capture)."""


@dataclass(frozen=True)
class CaptureProblem:
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def check_capture(path: Path) -> str:
    """"mitm" or "har"; raises CaptureError with a one-line reason."""
    if not path.exists():
        raise CaptureError(f"{path}: no such file")
    if path.is_dir():
        raise CaptureError(f"{path}: is a directory, not a capture file")
    if not os.access(path, os.R_OK):
        raise CaptureError(f"{path}: not readable (permission denied)")
    try:
        with path.open("rb") as fo:
            head = fo.read(64)
    except OSError as e:
        raise CaptureError(f"{path}: cannot read ({e.strerror or e})") from e
    if not head:
        raise CaptureError(f"{path}: empty file, not a capture")
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{"):
        return "har"
    # tnetstring: "<digits>:" then the payload, a dict ('}') for a flow.
    length, colon, _ = head.partition(b":")
    if colon and length.isdigit():
        return "mitm"
    raise CaptureError(f"{path}: not a mitmproxy flow file or HAR file")


def _read_mitm(path: Path, fo: BinaryIO, problem: Callable[[str], None]) -> Iterator[Any]:
    # mitmproxy's FlowReader ends silently on a truncated last flow; this loop
    # tells a clean end of file from a break.
    count = 0
    while True:
        start = fo.tell()
        if not fo.read(1):
            return
        fo.seek(start)
        try:
            flow = read_flow(fo)
        except Exception as e:  # noqa: BLE001 - any parse error is a break in the file
            problem(f"broken after {count} flow(s), near byte {start}: {e}"[:300])
            return
        count += 1
        yield flow, fo.tell()


def _read_har(path: Path, fo: BinaryIO, problem: Callable[[str], None]) -> Iterator[Any]:
    raw = fo.read()
    try:
        document = json.loads(raw.decode("utf-8-sig"))
        entries = document["log"]["entries"]
        if not isinstance(entries, list):
            raise TypeError("log.entries is not a list")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        entries = _salvage_har_entries(raw)
        where = f"line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        problem(
            f"not valid HAR{' at ' + where if where else ''} ({type(e).__name__}); "
            f"recovered {len(entries)} complete entr{'y' if len(entries) == 1 else 'ies'}"
        )
    for index, entry in enumerate(entries):
        try:
            yield request_to_flow(entry), int(len(raw) * (index + 1) / len(entries))
        except Exception as e:  # noqa: BLE001 - one bad entry must not lose the rest
            problem(f"entry {index} skipped: {type(e).__name__}: {e}"[:300])


def _salvage_har_entries(raw: bytes) -> list[dict[str, Any]]:
    """The complete entries at the start of a truncated or corrupt HAR file."""
    text = raw.decode("utf-8", errors="replace")
    start = text.find('"entries"')
    if start < 0:
        return []
    bracket = text.find("[", start)
    if bracket < 0:
        return []
    decoder = json.JSONDecoder()
    entries: list[dict[str, Any]] = []
    position = bracket + 1
    while len(entries) < 10_000_000:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] != "{":
            break
        try:
            entry, position = decoder.raw_decode(text, position)
        except ValueError:
            break
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def read_capture(
    path: Path, on_problem: Callable[[CaptureProblem], None] | None = None
) -> Iterator[tuple[Any, int]]:
    """Yield (mitmproxy flow, bytes of the file read so far), streaming.

    Raises CaptureError before the first flow if the file can't be read at
    all; problems part-way are passed to `on_problem`.
    """
    kind = check_capture(path)

    def problem(message: str) -> None:
        if on_problem is not None:
            on_problem(CaptureProblem(path, message))

    try:
        with path.open("rb") as fo:
            reader = _read_har if kind == "har" else _read_mitm
            yield from reader(path, fo, problem)
    except OSError as e:
        raise CaptureError(f"{path}: cannot read ({e.strerror or e})") from e
