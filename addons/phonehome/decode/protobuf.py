"""Schema-less protobuf wire format, and gRPC framing around it.

A message becomes a dict keyed by field-number strings, so locations read `$.1.3[0]`
(see walk.py); what each wire type becomes is said at `parse_protobuf`.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .limits import Context

__all__ = ["parse_protobuf", "parse_grpc_frames", "ProtobufResult"]

_MAX_FIELD = (1 << 29) - 1
_HEX_MAX = 256
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_WORK_PER_LEAF = 8  # field reads allowed (nested attempts included) per leaf of the limit


class _Bad(Exception):
    pass


class ProtobufResult:
    __slots__ = ("tree", "error_at")

    def __init__(self, tree: dict, error_at: int | None) -> None:
        self.tree = tree
        self.error_at = error_at


class _Parser:
    __slots__ = ("work", "exhausted")

    def __init__(self, work: int) -> None:
        self.work = work
        self.exhausted = False

    def message(self, buf: memoryview, depth_left: int, strict: bool) -> tuple[dict, int | None]:
        """Fields of one message; with strict=False stops at the first bad byte."""
        fields: dict[str, Any] = {}
        pos = 0
        n = len(buf)
        while pos < n:
            if self.work <= 0:  # bounded work, nested attempts included
                self.exhausted = True
                if strict:
                    raise _Bad
                return fields, None
            self.work -= 1
            start = pos
            try:
                key, pos = _varint(buf, pos)
                number, wire = key >> 3, key & 7
                if number == 0 or number > _MAX_FIELD:
                    raise _Bad
                if wire == 0:
                    value, pos = _varint(buf, pos)
                elif wire == 1:
                    if pos + 8 > n:
                        raise _Bad
                    value = int.from_bytes(buf[pos : pos + 8], "little")
                    pos += 8
                elif wire == 5:
                    if pos + 4 > n:
                        raise _Bad
                    value = int.from_bytes(buf[pos : pos + 4], "little")
                    pos += 4
                elif wire == 2:
                    length, pos = _varint(buf, pos)
                    if pos + length > n:
                        raise _Bad
                    value = self.length_delimited(buf[pos : pos + length], depth_left)
                    pos += length
                else:
                    raise _Bad
            except _Bad:
                if strict:
                    raise
                return fields, start
            name = str(number)
            if name in fields:
                old = fields[name]
                if type(old) is _Repeated:
                    old.append(value)
                else:
                    fields[name] = _Repeated([old, value])
            else:
                fields[name] = value
        return fields, None

    def length_delimited(self, chunk: memoryview, depth_left: int) -> Any:
        if not chunk:
            return ""
        try:
            text: str | None = str(chunk, "utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and _CONTROL.search(text) is None:
            return text
        if depth_left > 1:
            try:
                msg, _ = self.message(chunk, depth_left - 1, True)
            except _Bad:
                msg = None
            if msg:
                return msg
        if text is not None:
            return text
        if len(chunk) <= _HEX_MAX:
            return {"size": len(chunk), "hex": chunk.hex()}
        return {"size": len(chunk), "sha256": hashlib.sha256(chunk).hexdigest()}


class _Repeated(list):
    """A list built from a repeated field (tells it apart from a parsed value)."""


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    n = len(buf)
    while pos < n and shift < 70:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
    raise _Bad


def _plain(node: Any) -> Any:
    """Replace _Repeated lists by plain lists (JSON-safe, comparable)."""
    stack = [node]
    while stack:
        cur = stack.pop()
        if type(cur) is dict:
            for k, v in cur.items():
                if type(v) is _Repeated:
                    v = cur[k] = list(v)
                if type(v) in (dict, list):
                    stack.append(v)
        elif type(cur) is list:
            for i, v in enumerate(cur):
                if type(v) is _Repeated:
                    v = cur[i] = list(v)
                if type(v) in (dict, list):
                    stack.append(v)
    return node


def parser_work(ctx: Context) -> int:
    return max(ctx.limits.max_leaves, 1) * _WORK_PER_LEAF


def parse_protobuf(data: bytes, ctx: Context, what: str = "protobuf") -> ProtobufResult:
    """Parse a protobuf message, keeping the fields read before any error.

    A message becomes a dict keyed by field-number strings ("1", "2", …); a field
    seen more than once becomes a list in wire order, so locations read
    `$.1.3[0]` (see walk.py). Values:

    - varint → int (unsigned; no zigzag guess), fixed64 / fixed32 → unsigned int;
    - length-delimited → clean printable UTF-8 text → str; else a nested message
      if the bytes parse as one completely; else any UTF-8 → str; else
      {"size": n, "hex": "…"} (hex only up to 256 bytes, then "sha256" instead).
      Text is tried before a nested message (unlike `protoc --decode_raw`) because
      many printable strings happen to parse as messages and would become junk.
    - groups (wire types 3/4) end the message: they are deprecated and rare.

    gRPC bodies are a series of frames (1 flag byte, 4-byte big-endian length).
    One frame gives its message as the tree; several give a list. A compressed
    frame (flag 1) is decompressed with the grpc-encoding when possible, else kept
    as {"compressed": true, "size": n, "sha256": "…"}.
    """
    parser = _Parser(parser_work(ctx))
    # a list level sits between repeated fields and their messages: keep depth ≤ limit
    depth = max(1, ctx.max_depth // 2)
    tree, error_at = parser.message(memoryview(data), depth, False)
    if parser.exhausted:
        ctx.truncate(f"{what}: work limit reached ({parser_work(ctx)} field reads)")
    if error_at is not None:
        ctx.note(f"{what}: invalid wire data at byte {error_at}; kept the fields before it")
    return ProtobufResult(_plain(tree), error_at)


def parse_grpc_frames(data: bytes, ctx: Context) -> list[tuple[int, bytes]] | None:
    """[(flag, message bytes)] of a gRPC body, or None when it is not framed."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    n = len(data)
    while pos < n:
        if n - pos < 5:
            ctx.note(f"grpc: {n - pos} stray bytes after frame {len(frames)}")
            break
        flag = data[pos]
        length = int.from_bytes(data[pos + 1 : pos + 5], "big")
        if flag not in (0, 1, 0x80, 0x81):
            if not frames:
                return None
            ctx.note(f"grpc: bad frame flag {flag} at byte {pos}")
            break
        body = data[pos + 5 : pos + 5 + length]
        if len(body) < length:
            ctx.note(f"grpc: frame {len(frames)} truncated ({len(body)} of {length} bytes)")
        frames.append((flag, body))
        pos += 5 + length
        if len(frames) >= ctx.limits.max_leaves:
            ctx.truncate(f"grpc: more than {ctx.limits.max_leaves} frames")
            break
    return frames
