"""JSON parsing that is fast on good input and bounded on bad input.

Neither path recurses, so any depth is safe (see `parse_json`); `json_tokens` yields
a valid document's tokens with their spans, for rewriting one value in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from json.decoder import scanstring
from typing import Any, NamedTuple

from .limits import Context

try:
    import orjson

    _loads = orjson.loads
    _JSONError: tuple[type[Exception], ...] = (orjson.JSONDecodeError, ValueError, TypeError)
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _loads = json.loads
    _JSONError = (ValueError, TypeError, RecursionError)

__all__ = [
    "loads_or_none",
    "parse_json",
    "parse_tolerant",
    "JsonResult",
    "JsonToken",
    "json_tokens",
    "utf8_text",
]

_MISSING: Any = object()
_VALUE = re.compile(
    r"[ \t\n\r]*(?:"
    r"([\[{])|"  # 1 open
    r"(\")|"  # 2 string
    r"(-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?)|"  # 3 number (4 frac, 5 exp)
    r"(true|false|null)"  # 6 literal
    r")"
)
_AFTER = re.compile(r"[ \t\n\r]*([,\]}:])")
_KEY = re.compile(r'[ \t\n\r]*(?:(")|(\}))')
_SIMPLE_KEY = re.compile(r'([^"\\\x00-\x1f]*)"[ \t\n\r]*:')
_SKIP = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.S)
_INFINITIES = (float("inf"), float("-inf"))
_LITERALS = {"true": True, "false": False, "null": None}


def loads_or_none(data: bytes | str) -> tuple[bool, Any]:
    """(True, value) when `data` is one JSON document, else (False, None)."""
    try:
        return True, _loads(data)
    except _JSONError:
        return False, None


def utf8_text(data: bytes, ctx: Context, what: str = "body") -> str:
    """Decode UTF-8 (BOM dropped); invalid bytes are replaced and noted once."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        ctx.note(f"invalid UTF-8 at byte {e.start} of {what}")
        return data.decode("utf-8-sig", errors="replace")


@dataclass(frozen=True, slots=True)
class JsonResult:
    tree: Any
    complete: bool
    """True when the whole input was one valid JSON document."""
    error_at: int | None = None
    """Character offset of the first syntax error (or end of input)."""
    limited: bool = False
    """Parsing stopped at max_leaves (the tree is the valid prefix)."""

    @property
    def usable(self) -> bool:
        """Valid JSON, possibly cut by the leaf limit."""
        return self.complete or self.limited


def parse_json(data: bytes, ctx: Context, what: str = "body") -> JsonResult | None:
    """Parse a JSON document within the limits; None when nothing JSON-like was found.

    A body with far more separators than the leaf limit goes straight to the
    tolerant parser, which stops at the limit: orjson would build the whole
    tree first (seconds for a million keys).

    `parse_json` tries orjson (or json) first. When that fails (invalid JSON, a
    cut-off stream, nesting past orjson's 1024 levels) it falls back to
    `parse_tolerant`, an iterative parser that keeps everything up to the first
    error, skips containers nested deeper than the limit, and stops after
    `max_leaves` scalars. Neither path recurses, so any depth is safe.
    `json_tokens` yields a valid document's tokens with their spans, numbers as
    written, for rewriting one value without touching the bytes around it.
    """
    if data.count(b",") <= 2 * ctx.limits.max_leaves:
        ok, tree = loads_or_none(data)
        if ok:
            return JsonResult(tree, True)
    text = utf8_text(data, ctx, what)
    if data[:3] == b"\xef\xbb\xbf" or "\ufffd" in text:
        ok, tree = loads_or_none(text)
        if ok:
            return JsonResult(tree, True)
    result = parse_tolerant(text, ctx)
    if result.tree is _MISSING:
        return None
    return result


def parse_tolerant(text: str, ctx: Context) -> JsonResult:
    """Iterative JSON parser: keeps what parsed before an error, bounded by the limits.

    Containers opened deeper than max_depth are skipped and appear as None (the
    walker then cuts the level above and prune() replaces it by None too).
    """
    max_depth = ctx.max_depth
    room = ctx.limits.max_leaves
    n = len(text)
    root: Any = _MISSING
    stack: list[Any] = []  # open containers
    key: str | None = None  # pending key of the innermost dict
    pos = 0
    scalars = 0

    def done(complete: bool, at: int | None) -> JsonResult:
        return JsonResult(root, complete, at)

    while True:
        # --- a value is expected at pos
        m = _VALUE.match(text, pos)
        if m is None:
            return done(False, pos)
        pos = m.end()
        kind = m.lastindex
        opened = False
        if kind == 1:
            if len(stack) > max_depth:  # one level past the walker's cut: it marks and prunes
                ctx.depth_hit()
                pos = _skip_container(text, m.start(1))
                if pos < 0:
                    return done(False, n)
                value: Any = None
            else:
                value = {} if m.group(1) == "{" else []
                opened = True
        elif kind == 2:
            try:
                value, pos = scanstring(text, pos, False)
            except ValueError:
                return done(False, pos)
            if not value.isascii():
                value = _no_surrogates(value)
        elif kind == 6:
            value = _LITERALS[m.group(6)]
        else:  # 3: a number; groups 4 / 5 hold a fraction / exponent
            num = m.group(3)
            if m.group(4) or m.group(5):
                value = float(num)
                if value in _INFINITIES:  # JSON has no infinity: keep the digits
                    value = num
            else:
                value = int(num) if len(num) < 4000 else num  # int() refuses huge digit runs
        if not opened:
            scalars += 1
            if scalars > room:
                ctx.truncate(f"more than {ctx.limits.max_leaves} leaves")
                return JsonResult(root, False, None, True)
        # --- attach
        if stack:
            parent = stack[-1]
            if type(parent) is list:
                parent.append(value)
            else:
                parent[key] = value
        else:
            root = value
        if opened:
            stack.append(value)
            if type(value) is dict:
                m = _KEY.match(text, pos)
                if m is None:
                    return done(False, pos)
                pos = m.end()
                if m.group(2):  # {}
                    stack.pop()
                else:
                    key, pos, ok = _read_key(text, pos)
                    if not ok:
                        return done(False, pos)
                    continue
            else:
                m = _AFTER.match(text, pos)
                if m is not None and m.group(1) == "]":
                    pos = m.end()
                    stack.pop()
                else:
                    continue
        # --- after a complete value: comma or closers
        while True:
            if not stack:
                rest = text[pos:].strip()
                return done(not rest, None if not rest else pos)
            m = _AFTER.match(text, pos)
            if m is None:
                return done(False, pos)
            pos = m.end()
            ch = m.group(1)
            top = stack[-1]
            if ch == ",":
                if type(top) is dict:
                    m = _KEY.match(text, pos)
                    if m is None or not m.group(1):
                        return done(False, pos)
                    key, pos, ok = _read_key(text, m.end())
                    if not ok:
                        return done(False, pos)
                break
            if (ch == "]" and type(top) is list) or (ch == "}" and type(top) is dict):
                stack.pop()
                continue
            return done(False, pos)


def _no_surrogates(s: str) -> str:
    """Lone surrogates ("\\ud800" escapes) become U+FFFD, so the tree stays UTF-8 safe."""
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _read_key(text: str, pos: int) -> tuple[str, int, bool]:
    """Read a key string (pos just after its quote) and the colon after it."""
    m = _SIMPLE_KEY.match(text, pos)
    if m is not None:
        return m.group(1), m.end(), True
    try:
        key, pos = scanstring(text, pos, False)
    except ValueError:
        return "", pos, False
    if not key.isascii():
        key = _no_surrogates(key)
    m = _AFTER.match(text, pos)
    if m is None or m.group(1) != ":":
        return key, pos, False
    return key, m.end(), True


def _skip_container(text: str, start: int) -> int:
    """End offset of the container opening at `start`, or -1 if it never closes."""
    depth = 0
    for m in _SKIP.finditer(text, start):
        tok = m.group()
        if tok in "[{":
            depth += 1
        elif tok in "]}":
            depth -= 1
            if depth == 0:
                return m.end()
    return -1


class JsonToken(NamedTuple):
    """One token of a JSON text: `text[start:end]` is exactly what was written."""

    kind: str
    """open, close, key, string, number or literal."""
    start: int
    end: int
    value: Any
    """open/close: the bracket; key/string: the decoded text; number: as written;
    literal: True, False or None."""


def json_tokens(text: str, max_depth: int = 400) -> Iterator[JsonToken]:
    """The tokens of one strict JSON document, in order. Raises ValueError where it is
    not one (or nests deeper than `max_depth`); never recurses."""
    stack: list[str] = []
    pos = 0
    while True:
        # --- a value is expected at pos
        m = _VALUE.match(text, pos)
        if m is None:
            raise ValueError(f"expected a JSON value at character {pos}")
        kind = m.lastindex
        start = m.start(kind)
        pos = m.end()
        if kind == 1:
            bracket = m.group(1)
            if len(stack) >= max_depth:
                raise ValueError(f"nesting deeper than {max_depth} levels")
            yield JsonToken("open", start, pos, bracket)
            stack.append("}" if bracket == "{" else "]")
            close = _AFTER.match(text, pos)
            if close is not None and close.group(1) == stack[-1]:
                yield JsonToken("close", close.start(1), close.end(), stack.pop())
                pos = close.end()
            elif bracket == "{":
                pos = yield from _key(text, pos)
                continue
            else:
                continue
        elif kind == 2:
            value, pos = scanstring(text, pos, True)
            yield JsonToken("string", start, pos, value)
        elif kind == 6:
            yield JsonToken("literal", start, pos, _LITERALS[m.group(6)])
        else:
            yield JsonToken("number", start, pos, m.group(3))
        # --- after a complete value: a comma or closers
        while True:
            if not stack:
                if text[pos:].strip(" \t\n\r"):
                    raise ValueError(f"extra data at character {pos}")
                return
            m = _AFTER.match(text, pos)
            if m is None:
                raise ValueError(f"expected ',' or a closing bracket at character {pos}")
            ch = m.group(1)
            if ch == ",":
                pos = m.end()
                if stack[-1] == "}":
                    pos = yield from _key(text, pos)
                break
            if ch != stack[-1]:
                raise ValueError(f"unexpected {ch!r} at character {m.start(1)}")
            yield JsonToken("close", m.start(1), m.end(), stack.pop())
            pos = m.end()


def _key(text: str, pos: int) -> Iterator[JsonToken]:
    """A member's key and its colon; returns where its value starts."""
    m = _KEY.match(text, pos)
    if m is None or not m.group(1):
        raise ValueError(f"expected a key at character {pos}")
    start = m.start(1)
    key, pos = scanstring(text, m.end(), True)
    yield JsonToken("key", start, pos, key)
    m = _AFTER.match(text, pos)
    if m is None or m.group(1) != ":":
        raise ValueError(f"expected ':' at character {pos}")
    return m.end()
