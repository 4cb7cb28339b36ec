"""Pick the body's charset and format (declared Content-Type, checked by sniffing), parse it.

A text body in another charset (declared, BOM, JSON's NUL pattern) is read into UTF-8
first. A body that starts with "{" or "[" and parses as JSON is JSON whatever the
declared type; otherwise sniffing picks JSON lines, form, printable text or binary.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import re
from typing import Any, NamedTuple

from ..model import Observation
from .encodings import decompress
from .forms import file_summary, group, media_params, parse_form, parse_multipart
from .jsonio import JsonResult, loads_or_none, parse_json, utf8_text
from .limits import Context
from .protobuf import parse_grpc_frames, parse_protobuf

__all__ = ["decode_body", "declared_type", "media_type", "family", "Charset", "body_charset"]

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


class Charset(NamedTuple):
    """How a text body is encoded: a Python codec with explicit byte order, and its BOM."""

    codec: str
    bom: bytes = b""
    source: str = "default"
    """declared, bom, sniffed or default (UTF-8)."""

    @property
    def ascii_compatible(self) -> bool:
        return not self.codec.startswith(("utf-16", "utf-32"))


UTF8 = Charset("utf-8")
_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# the form families a charset applies to (multipart parts and protobuf are bytes)
_TEXT_FAMILIES = frozenset({"json", "ndjson", "form", "text", "", "other"})
_UTF8_ALIASES = frozenset({"utf-8", "ascii"})  # ASCII: read as its superset, like servers do


def _nul_pattern(data: bytes) -> str | None:
    """RFC 4627's guess from where the NULs sit in the first four bytes."""
    if len(data) < 4:
        return None
    nul = tuple(b == 0 for b in data[:4])
    return {
        (True, True, True, False): "utf-32-be",
        (False, True, True, True): "utf-32-le",
        (True, False, True, False): "utf-16-be",
        (False, True, False, True): "utf-16-le",
    }.get(nul)


def _byte_order(data: bytes, width: int) -> str:
    """-le or -be for a UTF-16/32 body without a BOM (RFC 2781: big-endian by default)."""
    guess = _nul_pattern(data) or ""
    if guess.startswith(f"utf-{8 * width}"):
        return guess[-3:]
    if width == 2 and len(data) >= 2 and data[0] and not data[1]:
        return "-le"
    return "-be"


def body_charset(data: bytes, content_type: str) -> Charset:
    """The charset of a text body: the declared one (its BOM gives the byte order), else a
    BOM or a NUL-pattern guess that reads plausibly, else UTF-8. An unknown declared
    name counts as UTF-8."""
    declared = media_params(content_type or "").get("charset", "").strip().lower()
    codec = None
    if declared:
        try:
            codec = codecs.lookup(declared).name
        except LookupError:
            codec = None
    for bom, name in _BOMS:
        if data.startswith(bom):
            found = Charset(name, bom, "bom")
            if codec is None and not _plausible(data, found):
                break
            # a declared charset takes only its own BOM: utf-8 + FF FE is not UTF-16
            if codec is None or codec.startswith(name[:6]):
                return found
    if codec in ("utf-16", "utf-32"):
        return Charset(codec + _byte_order(data, 2 if codec == "utf-16" else 4), b"", "declared")
    if codec is not None and codec not in _UTF8_ALIASES:
        return Charset(codec, b"", "declared")
    if codec is None and not declared:
        guess = _nul_pattern(data)
        if guess is not None and _plausible(data, Charset(guess)):
            return Charset(guess, b"", "sniffed")
    return UTF8


def _plausible(data: bytes, charset: Charset) -> bool:
    """An undeclared UTF-16/32 guess holds when the text reads mostly as ASCII: bytes
    such as FF FE + ASCII would read as CJK and hide what a UTF-8 reader sees."""
    if charset.codec == "utf-8":
        return True
    start = len(charset.bom)
    sample = data[start : start + 4096].decode(charset.codec, "replace")
    return sum(ch < "\x80" for ch in sample) * 2 >= len(sample)


def _transcode(data: bytes, charset: Charset, ctx: Context) -> bytes | None:
    """The body as UTF-8; None when it does not decode in its declared charset or BOM."""
    try:
        text = data[len(charset.bom) :].decode(charset.codec)
    except (UnicodeDecodeError, LookupError) as e:
        if charset.source == "sniffed":
            return data  # only a guess: keep the bytes as sent
        what = getattr(e, "start", None)
        ctx.note(f"body is not valid {charset.codec}" + (f" (byte {what})" if what else ""))
        ctx.unreadable(f"body is not valid {charset.codec}")
        return None
    ctx.note(f"body read as {charset.codec} ({charset.source})")
    out = text.encode("utf-8", "surrogatepass")
    cap = ctx.limits.max_decompressed_bytes
    if len(out) > cap:
        ctx.size_hit("body size")
        out = out[:cap]
    return out


def decode_body(data: bytes, obs: Observation, ctx: Context) -> tuple[str, Any]:
    """(kind, tree) of an already decompressed body."""
    if not data:
        return "empty", None
    mt = declared_type(obs)
    fam = family(mt)
    charset = UTF8
    if fam in _TEXT_FAMILIES:
        charset = body_charset(data, obs.content_type or "")
        if charset.codec != "utf-8":
            transcoded = _transcode(data, charset, ctx)
            if transcoded is None:
                return "binary", None
            data = transcoded
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
        escapes = charset.codec if charset.ascii_compatible else "utf-8"
        return "form", parse_form(utf8_text(data, ctx), escapes)
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
