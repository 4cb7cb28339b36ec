"""form-urlencoded and multipart/form-data bodies, query strings and Cookie headers."""

from __future__ import annotations

import hashlib
import re
from typing import Any
from urllib.parse import parse_qsl

from .limits import Context

__all__ = [
    "parse_form",
    "parse_multipart",
    "parse_query",
    "parse_cookie_header",
    "group",
    "media_params",
]

_PARAM = re.compile(r';\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
_HEADER_END = re.compile(rb"\r?\n\r?\n")


def group(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """{name: value}, or {name: [values…]} for names given more than once."""
    tree: dict[str, Any] = {}
    repeated: set[str] = set()
    for name, value in pairs:
        if name not in tree:
            tree[name] = value
        elif name in repeated:
            tree[name].append(value)
        else:
            tree[name] = [tree[name], value]
            repeated.add(name)
    return tree


def parse_query(text: str, max_fields: int) -> list[tuple[str, str]]:
    """Pairs of a query string / form body (blank values kept, at most max_fields)."""
    pairs = []
    for i, pair in enumerate(
        parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="replace")
    ):
        if i >= max_fields:
            break
        pairs.append(pair)
    return pairs


def parse_form(text: str, encoding: str = "utf-8") -> dict[str, Any]:
    """The fields of a form-urlencoded body (the walker enforces the leaf limit).

    `encoding` reads the %XX escapes: the body's charset when it is ASCII-compatible.
    """
    return group(parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="replace"))


def parse_cookie_header(value: str) -> list[tuple[str, str]]:
    """name=value pairs of a Cookie header; a bare word becomes ("word", "")."""
    pairs = []
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, val = part.partition("=")
        val = val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        pairs.append((name.strip(), val))
    return pairs


def media_params(content_type: str) -> dict[str, str]:
    """Parameters of a Content-Type value, names lower-cased, quotes removed."""
    params = {}
    for m in _PARAM.finditer(content_type):
        value = m.group(2).strip()
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[m.group(1).lower()] = value
    return params


def _part_headers(raw: bytes) -> dict[str, str]:
    headers = {}
    for line in raw.decode("utf-8", errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _find_boundary(data: bytes) -> bytes | None:
    """The boundary from the body's first line ("--boundary"), when not declared."""
    first = data.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r")
    if first.startswith(b"--") and 2 < len(first) <= 72 and b" " not in first.strip():
        return first[2:]
    return None


class Part:
    __slots__ = ("name", "filename", "content_type", "body")

    def __init__(self, name: str, filename: str | None, content_type: str, body: bytes) -> None:
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.body = body


def parse_multipart(data: bytes, content_type: str, ctx: Context) -> list[Part] | None:
    """The parts of a multipart body; None when no boundary can be found."""
    boundary = media_params(content_type).get("boundary", "").encode("utf-8", "replace")
    if not boundary or (b"--" + boundary) not in data:
        found = _find_boundary(data)
        if found is None:
            return None
        if boundary:
            ctx.note("multipart: declared boundary not found; used the body's first line")
        boundary = found
    delimiter = b"--" + boundary
    chunks = data.split(delimiter)
    parts: list[Part] = []
    closed = False
    for index, chunk in enumerate(chunks[1:]):
        if chunk.startswith(b"--"):
            closed = True
            break
        if len(parts) >= ctx.limits.max_leaves:
            ctx.truncate(f"more than {ctx.limits.max_leaves} leaves")
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk.lstrip(b"\n")
        m = _HEADER_END.search(chunk)
        if m is None:
            head, body = chunk, b""
        else:
            head, body = chunk[: m.start()], chunk[m.end() :]
        if body.endswith(b"\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n"):
            body = body[:-1]
        headers = _part_headers(head)
        disposition = media_params(";" + headers.get("content-disposition", "").partition(";")[2])
        name = disposition.get("name") or f"part{index}"
        parts.append(Part(name, disposition.get("filename"), headers.get("content-type", ""), body))
    if not closed:
        ctx.note("multipart: no closing boundary (truncated body?)")
    return parts


def file_summary(part: Part) -> dict[str, Any]:
    return {
        "filename": part.filename,
        "content_type": part.content_type,
        "size": len(part.body),
        "sha256": hashlib.sha256(part.body).hexdigest(),
    }
