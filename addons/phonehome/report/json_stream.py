"""audit.json: the one encoder of the `phonehome.report/1` JSON contract.

msgspec encodes the typed values, keeping integers of any width and passing a
decoded body through as stored. The flows are written one by one, so the file is
the same valid, indented JSON at any size, and memory does not grow with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

import msgspec

__all__ = ["JsonReportWriter", "format_json", "encode"]


def _fallback(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (set, frozenset, Sequence)):  # Sequence: ids listed when written
        return list(value)
    return str(value)


_ENCODER = msgspec.json.Encoder(enc_hook=_fallback)


def encode(value: Any, depth: int = 0) -> bytes:
    """`value` as indented JSON (two spaces), to sit `depth` levels deep."""
    text = msgspec.json.format(_ENCODER.encode(value), indent=2)
    return text.replace(b"\n", b"\n" + b"  " * depth) if depth else text


def _member(key: str, value: Any) -> bytes:
    return b"  " + _ENCODER.encode(key) + b": " + encode(value, 1)


_SCALARS = (str, int, float, bool, type(None))
_CHUNK = 1024


def _write(out: IO[bytes], value: Any, depth: int) -> None:
    """`encode(value, depth)`, written a member or an item at a time: a session-wide
    section (thousands of phases, a persistent id's flows) never sits whole in memory."""
    if isinstance(value, _SCALARS) or not value:
        out.write(encode(value, depth))
    elif isinstance(value, Mapping):
        _write_items(out, b"{", ((_ENCODER.encode(k) + b": ", v) for k, v in value.items()),
                     b"}", depth)
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        _write_items(out, b"[", ((b"", v) for v in value), b"]", depth)
    else:
        out.write(encode(value, depth))


def _write_items(out: IO[bytes], opening: bytes, items: Iterator[tuple[bytes, Any]],
                 closing: bytes, depth: int) -> None:
    out.write(opening)
    indent = b"\n" + b"  " * (depth + 1)
    first = True
    while chunk := list(itertools.islice(items, _CHUNK)):
        scalars: list[bytes] = []
        for prefix, item in chunk:
            if isinstance(item, _SCALARS):  # a run of ids: one write per chunk
                scalars.append(indent + prefix + _ENCODER.encode(item))
                continue
            if scalars:
                out.write((b"" if first else b",") + b",".join(scalars))
                first, scalars = False, []
            out.write((b"" if first else b",") + indent + prefix)
            first = False
            _write(out, item, depth + 1)
        if scalars:
            out.write((b"" if first else b",") + b",".join(scalars))
            first = False
    out.write(b"\n" + b"  " * depth + closing)


class JsonReportWriter:
    """`{ head…, "flows": [ … ], tail… }`, the flows added one at a time."""

    def __init__(self, out: IO[bytes], head: Mapping[str, Any], tail: Mapping[str, Any]) -> None:
        self.out = out
        self.tail = tail
        self.flows = 0
        out.write(b"{\n")
        for key, value in head.items():
            out.write(_member(key, value) + b",\n")
        out.write(b'  "flows": [')

    def add(self, flow: Any) -> None:
        self.out.write((b",\n    " if self.flows else b"\n    ") + encode(flow, 2))
        self.flows += 1

    def finish(self) -> None:
        self.out.write(b"\n  ]" if self.flows else b"]")
        for key, value in self.tail.items():
            self.out.write(b",\n  " + _ENCODER.encode(key) + b": ")
            _write(self.out, value, 1)
        self.out.write(b"\n}\n")


def format_json(report: Mapping[str, Any]) -> str:
    """A built report dict (its flows inside) as the same indented JSON."""
    return (encode(report) + b"\n").decode("utf-8")
