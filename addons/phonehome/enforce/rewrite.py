"""Rewriting one request: every flagged value replaced by its placeholder.

Bodies are rewritten by kind, in their own charset, changing only the flagged values'
bytes; what cannot be rewritten faithfully raises `UnsafeRedaction` (the caller blocks).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from mitmproxy import http
from mitmproxy.net import encoding as mitm_encoding

from ..decode.body import UTF8, Charset, body_charset
from ..decode.walk import key_suffix
from .redactor import Redactor, UnsafeRedaction, rewrite_json

__all__ = [
    "redact_request",
    "decode_content",
    "encode_content",
    "body_text",
    "redact_body",
]

_STRUCTURAL_HEADERS = frozenset(
    {"host", "content-length", "content-encoding", "transfer-encoding", "content-type"}
)
_CODING_ALIASES = {"x-gzip": "gzip"}
_BYTE_KINDS = ("protobuf", "binary")
_TEXT_SAFE_PATH = "/:@!$&'()*+,;=~-._"


# --- content encoding -----------------------------------------------------------------


def _codings(header: str) -> list[str]:
    out = []
    for part in header.split(","):
        coding = part.strip().lower()
        if coding and coding != "identity":
            out.append(_CODING_ALIASES.get(coding, coding))
    return out


def _apply_codings(data: bytes, codings: list[str], code: Any, verb: str) -> bytes:
    for coding in codings:
        try:
            out = code(data, coding)
        except (ValueError, TypeError) as e:
            raise UnsafeRedaction(f"cannot {verb} content-encoding {coding!r}: {e}") from e
        if not isinstance(out, bytes):
            raise UnsafeRedaction(f"content-encoding {coding!r} is not a byte encoding")
        data = out
    return data


def decode_content(raw: bytes, content_encoding: str) -> bytes:
    """Undo every Content-Encoding layer (last applied first). Raises UnsafeRedaction."""
    return _apply_codings(raw, _codings(content_encoding)[::-1], mitm_encoding.decode, "decode")


def encode_content(data: bytes, content_encoding: str) -> bytes:
    """Apply every Content-Encoding layer again, in order. Raises UnsafeRedaction."""
    out = _apply_codings(data, _codings(content_encoding), mitm_encoding.encode, "re-encode")
    if decode_content(out, content_encoding) != data:
        raise UnsafeRedaction("re-encoded body does not decode to the redacted body")
    return out


# --- the parts of a request ---------------------------------------------------------------


def body_text(data: bytes, charset: Charset) -> str:
    """The body as text in its charset (BOM dropped), or raises UnsafeRedaction."""
    try:
        return data[len(charset.bom) :].decode(charset.codec)
    except (UnicodeDecodeError, LookupError) as e:
        raise UnsafeRedaction(f"body is not valid {charset.codec.upper()}") from e


def _encoded(text: str, charset: Charset) -> bytes:
    try:
        return charset.bom + text.encode(charset.codec)
    except (UnicodeEncodeError, LookupError) as e:
        raise UnsafeRedaction(f"a placeholder cannot be written in {charset.codec}") from e


def _body_masks(r: Redactor) -> list[str]:
    return [loc for loc in r.masks if loc.startswith("$")]


def _ndjson_text(text: str, r: Redactor) -> str:
    lines = text.split("\n")
    out = []
    for index, line in enumerate(lines):
        loc = f"$[{index}]"
        if not line.strip(" \t\r"):
            out.append(line)
            continue
        try:
            out.append(rewrite_json(line, loc, r, r.nested))
        except UnsafeRedaction:  # a line that is not JSON is text
            out.append(r.text(line, loc))
    return "\n".join(out)


def _form_text(text: str, r: Redactor, escapes: str) -> str:
    pairs = text.split("&")
    names = [unquote_plus(p.partition("=")[0], escapes, "replace") for p in pairs if p]
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    out = []
    for pair in pairs:
        if not pair:
            out.append(pair)
            continue
        raw_name, eq, raw_value = pair.partition("=")
        name = unquote_plus(raw_name, escapes, "replace")
        index = seen.get(name, 0)
        seen[name] = index + 1
        loc = "$" + key_suffix(name) + (f"[{index}]" if counts[name] > 1 else "")
        out.append(raw_name + eq + _component(raw_value, loc, r, plus=True, encoding=escapes))
    return "&".join(out)


def _component(raw: str, loc: str, r: Redactor, *, plus: bool, safe: str = "",
               encoding: str = "utf-8") -> str:
    """One URL-encoded value: raw needles first, then the decoded value."""
    value = (unquote_plus(raw, encoding, "replace") if plus
             else unquote(raw, encoding, "replace"))
    new = r.text(value, loc)
    if new != value:
        return (quote_plus(new, safe=safe, encoding=encoding) if plus
                else quote(new, safe=safe, encoding=encoding))
    swapped = r.replace(raw)
    if swapped != raw:
        r.mark(loc)
    return swapped


_TEXT_KINDS = ("json", "ndjson", "form", "text")


def _body(data: bytes, kind: str, r: Redactor, charset: Charset = UTF8) -> bytes:
    if kind == "empty" or not data:
        return data
    if kind in _TEXT_KINDS:
        text = body_text(data, charset)
        if kind == "json":
            new = rewrite_json(text, "$", r, r.nested)
        elif kind == "ndjson":
            new = _ndjson_text(text, r)
        elif kind == "form":
            new = _form_text(text, r, charset.codec if charset.ascii_compatible else "utf-8")
        else:
            new = r.text(text, "$")
        return data if new == text else _encoded(new, charset)
    masks = _body_masks(r)
    if masks:
        raise UnsafeRedaction(f"{kind} body: cannot replace a value in place at {masks[0]}")
    if kind == "multipart":
        return r.replace_bytes(data, same_length=False)
    if kind in _BYTE_KINDS:
        return r.replace_bytes(data, same_length=True)
    raise UnsafeRedaction(f"cannot rebuild a {kind} body")


def _cookie_header(value: str, r: Redactor) -> str:
    parts = value.split(";")
    out = []
    for part in parts:
        name, eq, raw = part.partition("=")
        if not eq:
            out.append(part)
            continue
        lead = raw[: len(raw) - len(raw.lstrip())]
        core = raw.strip()
        tail = raw[len(lead) + len(core) :]
        quoted = len(core) >= 2 and core[0] == core[-1] == '"'
        inner = core[1:-1] if quoted else core
        new = r.text(inner, f"cookie:{name.strip()}")
        if quoted:
            new = f'"{new}"'
        out.append(name + eq + lead + new + tail)
    return ";".join(out)


def _path(path: str, r: Redactor) -> str:
    base, q, query = path.partition("?")
    segments = [_component(seg, "url", r, plus=False, safe=_TEXT_SAFE_PATH)
                for seg in base.split("/")]
    new = "/".join(segments)
    if not q:
        return new
    pairs = []
    for pair in query.split("&"):
        raw_name, eq, raw_value = pair.partition("=")
        if not eq:
            pairs.append(_component(pair, "url", r, plus=True))
            continue
        loc = f"query:{unquote_plus(raw_name)}"
        pairs.append(raw_name + eq + _component(raw_value, loc, r, plus=True))
    return new + "?" + "&".join(pairs)


def redact_request(request: http.Request, kind: str, r: Redactor) -> None:
    """Rewrite `request` in place (give it a copy). Raises UnsafeRedaction.

    Bodies are rewritten by kind, in their own charset: in JSON and JSON lines
    only the tokens of flagged values change and every other byte stays as sent
    (numbers as written, whitespace, key order, escapes); forms and text the
    same way; multipart and length-prefixed binary formats by same-length byte
    replacement. The result is re-encoded with the request's Content-Encoding.
    """
    # URL path and query
    new_path = _path(request.path, r)
    if new_path != request.path:
        request.path = new_path
        if "url" in r.changed or any(loc.startswith("query:") for loc in r.changed):
            r.mark("url")
    # headers and cookies
    fields = []
    for raw_name, raw_value in request.headers.fields:
        name = raw_name.decode("utf-8", "surrogateescape")
        value = raw_value.decode("utf-8", "surrogateescape")
        lowered = name.lower()
        if lowered in _STRUCTURAL_HEADERS:
            new = value
        elif lowered == "cookie":
            new = _cookie_header(value, r)
        else:
            new = r.text(value, f"header:{name}")
        fields.append((raw_name, new.encode("utf-8", "surrogateescape") if new != value
                       else raw_value))
    request.headers.fields = tuple(fields)
    # body
    raw = request.raw_content
    if raw is None:
        raise UnsafeRedaction("the request body was not captured (streamed)")
    if not raw:
        return
    content_encoding = request.headers.get("content-encoding", "")
    data = decode_content(raw, content_encoding)
    charset = body_charset(data, request.headers.get("content-type", ""))
    new_data = _body(data, kind, r, charset)
    if new_data == data:
        return
    encoded = encode_content(new_data, content_encoding)
    request.raw_content = encoded
    if "transfer-encoding" not in request.headers:
        request.headers["content-length"] = str(len(encoded))


def redact_body(data: bytes, kind: str, r: Redactor, content_type: str) -> bytes:
    """An already decompressed body with its flagged values replaced (a WebSocket
    message, say). Raises UnsafeRedaction."""
    return _body(data, kind, r, body_charset(data, content_type))
