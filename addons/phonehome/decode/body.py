"""Pick the body's format (declared Content-Type, checked by sniffing) and parse it.

Every parser returns (kind, tree) and writes its problems to the Context.
A body that starts with "{" or "[" and parses as JSON is JSON whatever was
declared; a declared format that does not parse falls back to sniffing:
JSON, JSON lines, form (undeclared or text/plain only), printable UTF-8
text, else binary.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from ..model import Observation
from .encodings import decompress
from .forms import file_summary, group, parse_form, parse_multipart
from .jsonio import JsonResult, loads_or_none, parse_json, utf8_text
from .limits import Context
from .protobuf import parse_grpc_frames, parse_protobuf

__all__ = ["decode_body", "declared_type", "media_type", "family"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FORM = re.compile(r"[\w.~%+*!\[\]-]+=[^&\s]*(?:&[\w.~%+*!\[\]-]+=?[^&\s]*)*&?")
_JSON_START = (b"{", b"[")
_WS = b" \t\r\n"

_FAMILIES = {
    "application/json": "json",
    "text/json": "json",
    "application/x-json": "json",
    "application/x-ndjson": "ndjson",
    "application/ndjson": "ndjson",
    "application/jsonl": "ndjson",
    "application/x-jsonlines": "ndjson",
    "application/jsonlines": "ndjson",
    "application/json-seq": "ndjson",
    "application/x-json-stream": "ndjson",
    "application/x-sentry-envelope": "ndjson",
    "application/x-www-form-urlencoded": "form",
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/x-google-protobuf": "protobuf",
    "application/vnd.google.protobuf": "protobuf",
    "application/x-protobuffer": "protobuf",
    "application/grpc": "grpc",
    "application/grpc+proto": "grpc",
    "application/grpc-web": "grpc",
    "application/grpc-web+proto": "grpc",
    "application/grpc-web-text": "grpc-web-text",
    "application/grpc-web-text+proto": "grpc-web-text",
    "application/xml": "text",
    "application/javascript": "text",
    "application/ecmascript": "text",
    "application/x-javascript": "text",
    "application/yaml": "text",
    "application/x-yaml": "text",
    "application/graphql": "text",
    "application/csp-report": "json",
    "application/reports+json": "json",
    "application/octet-stream": "",
    "": "",
}


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def declared_type(obs: Observation) -> str:
    """The request's media type: its Content-Type, unless that is text/plain and the
    query string names one (a client that moved its headers into the query string to
    keep a cross-origin request simple, as 1DS does on page unload)."""
    mt = media_type(obs.content_type or "")
    if mt in ("", "text/plain"):
        for name, value in obs.query:
            if name.lower() == "content-type" and family(media_type(value)) != "other":
                return media_type(value)
    return mt


def family(mt: str) -> str:
    """json, ndjson, form, multipart, protobuf, grpc, grpc-web-text, text, other or ""."""
    known = _FAMILIES.get(mt)
    if known is not None:
        return known
    if mt.endswith("+json") or mt.endswith("/json"):
        return "json"
    if mt.startswith("multipart/"):
        return "multipart"
    if mt.startswith("text/") or mt.endswith("+xml"):
        return "text"
    if "protobuf" in mt:
        return "protobuf"
    return "other"


def decode_body(data: bytes, obs: Observation, ctx: Context) -> tuple[str, Any]:
    """(kind, tree) of an already decompressed body."""
    if not data:
        return "empty", None
    mt = declared_type(obs)
    fam = family(mt)
    if fam == "ndjson":
        tree = _ndjson(data, ctx, strict=False)
        if tree is not None:
            return "ndjson", tree
    parsed = None
    if fam == "json" or data.lstrip(_WS)[:1] in _JSON_START:
        parsed = parse_json(data, ctx)
        if parsed is not None and parsed.usable:
            if fam not in ("json", "", "text", "other"):
                ctx.note(f"declared {mt} but body is JSON")
            return "json", parsed.tree
    if fam == "json":
        return _json(data, mt, parsed, ctx)
    if fam == "form":
        return "form", parse_form(utf8_text(data, ctx))
    elif fam == "multipart":
        found = _multipart(data, obs.content_type, ctx)
        if found is not None:
            return found
        ctx.note(f"declared {mt} but body has no multipart boundary")
    elif fam == "protobuf":
        result = parse_protobuf(data, ctx)
        if result.tree or result.error_at is None:
            return "protobuf", result.tree
        ctx.note(f"declared {mt} but body is not protobuf")
    elif fam in ("grpc", "grpc-web-text"):
        found = _grpc(data, fam, obs, ctx)
        if found is not None:
            return found
    return _sniff(data, mt, fam, parsed, ctx)


def _json(data: bytes, mt: str, result: JsonResult | None, ctx: Context) -> tuple[str, Any]:
    """Declared JSON that is not one valid document: JSON lines, a valid prefix, or other."""
    lines = _ndjson(data, ctx, strict=True)
    if lines is not None:
        ctx.note(f"declared {mt} but body is JSON lines")
        return "ndjson", lines
    if result is None or (not result.tree and not result.complete):
        ctx.note(f"declared {mt} but body is not JSON")
        return _sniff(data, mt, "other", None, ctx)
    ctx.note(
        f"declared {mt} but body is not JSON (error at character {result.error_at});"
        " kept what parsed before it"
    )
    return "json", result.tree


def _ndjson(data: bytes, ctx: Context, strict: bool) -> list | None:
    """One tree per line (blank line: None). strict: every line must be JSON, ≥ 2 lines."""
    lines = data.split(b"\n")
    if lines and not lines[-1].strip():
        lines.pop()
    if strict and (len(lines) < 2 or lines[0].lstrip(_WS)[:1] not in _JSON_START):
        return None
    tree: list[Any] = []
    for index, raw in enumerate(lines):
        if index >= ctx.limits.max_leaves:
            ctx.truncate(f"more than {ctx.limits.max_leaves} leaves")
            break
        line = raw.strip(_WS)
        if not line:
            tree.append(None)
            continue
        ok, value = loads_or_none(line)
        if not ok and line[:1] in _JSON_START:
            result = parse_json(line, ctx, f"line {index}")
            if result is not None and result.usable:
                ok, value = True, result.tree
        if not ok:
            if strict:
                return None
            ctx.note(f"ndjson: line {index} is not JSON")
            value = utf8_text(line, ctx, f"line {index}")
        tree.append(value)
    return tree


def _multipart(data: bytes, content_type: str, ctx: Context) -> tuple[str, Any] | None:
    parts = parse_multipart(data, content_type, ctx)
    if parts is None:
        return None
    pairs = []
    for part in parts:
        ct = media_type(part.content_type)
        if part.filename is None and _is_text(part.body):
            pairs.append((part.name, part.body.decode("utf-8")))
            continue
        entry = file_summary(part)
        content = _part_content(part.body, ct, part.name, ctx)
        if content is not None:
            entry["content"] = content
        pairs.append((part.name, entry))
    return "multipart", group(pairs)


def _part_content(body: bytes, ct: str, name: str, ctx: Context) -> Any:
    """A file part's content when it is JSON or text, else None."""
    fam = family(ct)
    if fam == "json" or body.lstrip(_WS)[:1] in _JSON_START:
        result = parse_json(body, ctx, f"part {name!r}")
        if result is not None and (result.usable or fam == "json"):
            return result.tree
    if fam == "text":
        return utf8_text(body, ctx, f"part {name!r}")
    if _is_text(body):
        return body.decode("utf-8")
    return None


def _grpc(data: bytes, fam: str, obs: Observation, ctx: Context) -> tuple[str, Any] | None:
    if fam == "grpc-web-text":
        try:
            data = base64.b64decode(b"".join(data.split()), validate=False)
        except (binascii.Error, ValueError):
            ctx.note("grpc-web-text: body is not base64")
            return None
    frames = parse_grpc_frames(data, ctx)
    if frames is None:
        ctx.note("grpc: body is not gRPC-framed; parsed as one protobuf message")
        return "protobuf", parse_protobuf(data, ctx).tree
    coding = (obs.header("grpc-encoding") or "").strip().lower()
    budget = ctx.limits.max_decompressed_bytes
    messages: list[Any] = []
    for index, (flag, body) in enumerate(frames):
        what = f"grpc frame {index}"
        if flag & 0x80:  # grpc-web trailers
            messages.append({"trailers": utf8_text(body, ctx, what)})
            continue
        if flag & 1:
            if coding in ("gzip", "deflate", "zstd", "br") and budget > 0:
                ctx.note(f"{what} compressed ({coding})")
                body = decompress(body, coding, ctx, cap=budget)
                budget -= len(body)
            else:
                ctx.note(f"{what} compressed ({coding or 'no grpc-encoding'}); not decoded")
                digest = hashlib.sha256(body).hexdigest()
                messages.append({"compressed": True, "size": len(body), "sha256": digest})
                continue
        messages.append(parse_protobuf(body, ctx, what).tree)
    if not messages:
        return "protobuf", {}
    return "protobuf", messages[0] if len(messages) == 1 else messages


def _is_text(data: bytes) -> bool:
    """Valid UTF-8 without control characters (tab, CR, LF allowed)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return _CONTROL.search(text) is None


def _sniff(
    data: bytes, mt: str, fam: str, parsed: JsonResult | None, ctx: Context
) -> tuple[str, Any]:
    """JSON lines, form, text, else binary (`parsed`: the JSON attempt already made)."""
    if data.lstrip(_WS)[:1] in _JSON_START:
        lines = _ndjson(data, ctx, strict=True)
        if lines is not None:
            return "ndjson", lines
    if fam == "text":
        text = utf8_text(data, ctx)
    else:
        if not _is_text(data.removeprefix(b"\xef\xbb\xbf")):
            return "binary", None
        text = data.decode("utf-8-sig")
    if fam == "" or mt == "text/plain":
        if "=" in text and _FORM.fullmatch(text.strip()):
            return "form", parse_form(text.strip())
    return "text", text
