"""Reading saved captures: mitmproxy flow files (.mitm) and HAR files.

Flows are streamed, one at a time. A file that breaks part-way gives every
flow read before the break, and a `CaptureProblem` saying where it broke.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlencode

from mitmproxy.io.har import request_to_flow

from .mitm_reader import read_flow, read_frame

__all__ = ["CaptureError", "CaptureProblem", "Frame", "check_capture", "complete_har_entry",
           "read_capture", "read_capture_frames"]


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


@dataclass(frozen=True)
class Frame:
    """One flow of a .mitm file, not yet parsed (`mitm_reader.flow_from_frame` reads it):
    how many flows of its file came before it, and where it starts."""

    data: bytes
    index: int
    start: int

    def broken(self, reason: str) -> str:
        """The problem when this flow cannot be read: the file breaks here."""
        return _broken(self.index, self.start, reason)


def _read_mitm(path: Path, fo: BinaryIO, problem: Callable[[str], None],
               count: int = 0) -> Iterator[Any]:
    # mitmproxy's FlowReader ends silently on a truncated last flow; this loop
    # tells a clean end of file from a break.
    while True:
        start = fo.tell()
        if not fo.read(1):
            return
        fo.seek(start)
        try:
            flow = read_flow(fo)
        except Exception as e:  # noqa: BLE001 - any parse error is a break in the file
            problem(_broken(count, start, str(e)))
            return
        count += 1
        yield flow, fo.tell()


def _broken(count: int, start: int, reason: str) -> str:
    return f"broken after {count} flow(s), near byte {start}: {reason}"[:300]


def _read_har(path: Path, fo: BinaryIO, problem: Callable[[str], None]) -> Iterator[Any]:
    raw = fo.read()
    try:
        document = json.loads(raw.decode("utf-8-sig"))
        entries = document["log"]["entries"]
        if not isinstance(entries, list):
            raise TypeError("log.entries is not a list")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        entries = _salvage_har_entries(raw)
        where = f" at line {e.lineno}, column {e.colno}" if isinstance(e, json.JSONDecodeError) \
            else ""
        if not entries:
            what = (f"not JSON{where} ({type(e).__name__})"
                    if isinstance(e, (UnicodeDecodeError, ValueError))
                    else "JSON, but no log.entries list")
            raise CaptureError(f"{path}: not a HAR file: {what}") from None
        problem(f"not valid HAR{where} ({type(e).__name__}); recovered {len(entries)} "
                f"complete entr{'y' if len(entries) == 1 else 'ies'}")
    started = _EPOCH
    for index, entry in enumerate(entries):
        try:
            complete = complete_har_entry(entry, started)
        except ValueError as e:
            problem(f"entry {index} skipped: {e}"[:300])
            continue
        started = complete["startedDateTime"]
        try:
            flow = request_to_flow(complete)
        except Exception as e:  # noqa: BLE001 - one bad entry must not lose the rest
            problem(f"entry {index} skipped: mitmproxy cannot read it "
                    f"({type(e).__name__}: {e})"[:300])
            continue
        yield flow, int(len(raw) * (index + 1) / len(entries))


_EPOCH = "1970-01-01T00:00:00+00:00"


def complete_har_entry(entry: Any, previous_start: str = _EPOCH) -> dict[str, Any]:
    """The entry with every field mitmproxy's HAR reader needs: a request needs only its
    method and URL; a missing time is 0, a missing start the previous entry's, a missing
    response empty. Raises ValueError saying what makes an entry unusable."""
    if not isinstance(entry, dict):
        raise ValueError("not a JSON object")
    request = entry.get("request")
    if not isinstance(request, dict):
        raise ValueError("no request object")
    for name in ("method", "url"):
        if not isinstance(request.get(name), str) or not request[name]:
            raise ValueError(f"no request.{name}")
    response = entry.get("response") if isinstance(entry.get("response"), dict) else {}
    content = response.get("content") if isinstance(response.get("content"), dict) else {}
    started = entry.get("startedDateTime")
    if not isinstance(started, str) or _iso_time(started) is None:
        started = previous_start
    elapsed = entry.get("time")
    if isinstance(elapsed, bool) or not isinstance(elapsed, (int, float)) \
            or not math.isfinite(elapsed) or elapsed < 0:
        elapsed = 0
    status = response.get("status")
    complete: dict[str, Any] = {
        "startedDateTime": started,
        "time": elapsed,
        "request": {
            "method": request["method"], "url": request["url"],
            "httpVersion": _text(request.get("httpVersion"), "HTTP/1.1"),
            "headers": _har_headers(request.get("headers")),
        },
        "response": {
            "status": status if isinstance(status, int) and not isinstance(status, bool)
            and 0 <= status <= 999 else 0,
            "httpVersion": _text(response.get("httpVersion"), "HTTP/1.1"),
            "headers": _har_headers(response.get("headers")),
            "content": {"text": _text(content.get("text"), "")},
        },
    }
    if content.get("encoding") == "base64":
        complete["response"]["content"]["encoding"] = "base64"
    body = _post_text(request.get("postData"))
    if body is not None:
        complete["request"]["postData"] = {"text": body}
    if isinstance(entry.get("serverIPAddress"), str) and entry["serverIPAddress"]:
        complete["serverIPAddress"] = entry["serverIPAddress"]
    return complete


def _iso_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _har_headers(headers: Any) -> list[dict[str, str]]:
    """{name, value} pairs (or [name, value] lists); anything else is left out."""
    out = []
    for header in headers if isinstance(headers, list) else ():
        if isinstance(header, dict):
            name, value = header.get("name"), header.get("value")
        elif isinstance(header, list) and len(header) == 2:
            name, value = header
        else:
            continue
        if isinstance(name, str) and name and isinstance(value, (str, int, float)):
            out.append({"name": name, "value": str(value)})
    return out


def _post_text(post: Any) -> str | None:
    """postData's text, or its params form-encoded when a tool saved only those."""
    if not isinstance(post, dict):
        return None
    if isinstance(post.get("text"), str):
        return post["text"]
    params = post.get("params")
    if isinstance(params, list):
        pairs = [(str(p.get("name", "")), str(p.get("value", "")))
                 for p in params if isinstance(p, dict)]
        return urlencode(pairs)
    return None


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


def _mitm_frames(path: Path, fo: BinaryIO, problem: Callable[[str], None]) -> Iterator[Any]:
    """Each flow's bytes, unparsed; from the first that cannot be framed on, flows
    read here one by one (`_read_mitm` says where the file breaks, if it does)."""
    count = 0
    while True:
        start = fo.tell()
        try:
            data = read_frame(fo)
        except ValueError:
            fo.seek(start)
            yield from _read_mitm(path, fo, problem, count)
            return
        yield Frame(data, count, start), fo.tell()
        count += 1


def read_capture_frames(
    path: Path, on_problem: Callable[[CaptureProblem], None] | None = None
) -> Iterator[tuple[Any, int]]:
    """`read_capture`, but a .mitm file's flows come as `Frame`s, for other processes
    to parse: yields (Frame or flow, bytes of the file read so far)."""
    yield from read_capture(path, on_problem, _frames=True)


def read_capture(
    path: Path, on_problem: Callable[[CaptureProblem], None] | None = None,
    *, _frames: bool = False,
) -> Iterator[tuple[Any, int]]:
    """Yield (mitmproxy flow, bytes of the file read so far), streaming.

    Raises CaptureError before the first flow if the file can't be read at
    all (for a HAR: not JSON, or no entries list, and nothing to salvage);
    problems part-way, such as a skipped HAR entry, are passed to `on_problem`.
    """
    kind = check_capture(path)

    def problem(message: str) -> None:
        if on_problem is not None:
            on_problem(CaptureProblem(path, message))

    try:
        with path.open("rb") as fo:
            reader = _read_har if kind == "har" else _mitm_frames if _frames else _read_mitm
            yield from reader(path, fo, problem)
    except OSError as e:
        raise CaptureError(f"{path}: cannot read ({e.strerror or e})") from e
