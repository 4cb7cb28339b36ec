"""Rewriting one request: every flagged value replaced by its placeholder.

Two ways to replace, both driven by the findings a plan selected:

- needles: each flagged raw value (and its URL-encoded / decoded twin) is
  replaced wherever it occurs, in every string of the decoded body, in JSON
  or base64-JSON nested inside strings, in header, query and cookie values
  and in the URL path;
- masks: a flagged location whose value is not a substring of its leaf (a
  number such as an audio level, a whole participant list, a grouped
  series) is replaced at that location: numbers become 0 of the same type,
  strings a same-shape placeholder, containers have every scalar replaced.

Bodies are rebuilt by kind (JSON, JSON lines, form, text; multipart and
length-prefixed binary formats by same-length byte replacement) and
re-encoded with the request's Content-Encoding. Anything that cannot be
rebuilt faithfully raises `UnsafeRedaction`; the caller blocks instead.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from mitmproxy import http
from mitmproxy.net import encoding as mitm_encoding

from ..decode.walk import key_suffix, nested_json
from ..model import Finding, Payload
from .placeholder import placeholder

__all__ = [
    "UnsafeRedaction",
    "Needle",
    "Redactor",
    "build_redactor",
    "redact_request",
    "decode_content",
    "encode_content",
]

MAX_DEPTH = 400
MIN_NEEDLE = 3
"""Shorter flagged values are replaced at their location only, never everywhere."""
MIN_GLOBAL_NUMBER = 6
"""Numbers shorter than this are replaced at their location only, too."""
_NUMBER = re.compile(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")
_STRUCTURAL_HEADERS = frozenset(
    {"host", "content-length", "content-encoding", "transfer-encoding", "content-type"}
)
_NEST_FIRST = frozenset("{[eWICD7")
_CODING_ALIASES = {"x-gzip": "gzip"}
_BYTE_KINDS = ("protobuf", "binary")
_TEXT_SAFE_PATH = "/:@!$&'()*+,;=~-._"


class UnsafeRedaction(Exception):
    """The request cannot be redacted faithfully; the message says why."""


@dataclass(frozen=True, slots=True)
class Needle:
    value: str
    replacement: str
    locations: tuple[str, ...]


def _number_zero(value: Any) -> Any:
    return 0.0 if isinstance(value, float) else 0


class Redactor:
    """Replacement state for one request; records the locations it changed."""

    def __init__(self, needles: Sequence[Needle], masks: dict[str, tuple[str, str | None]],
                 nested: int = 3) -> None:
        self.needles = {n.value: n for n in needles}
        self.masks = masks
        """location → (finding type, encoding) of what is masked there."""
        self.nested = nested
        ordered = sorted(self.needles, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
        self.changed: dict[str, None] = {}
        self.hit: set[str] = set()
        """Needle values that were found (and replaced) somewhere."""

    def mark(self, location: str) -> None:
        self.changed.setdefault(location, None)

    # --- strings

    def replace(self, text: str) -> str:
        if self._pattern is None or not text:
            return text

        def swap(m: re.Match[str]) -> str:
            self.hit.add(m.group(0))
            return self.needles[m.group(0)].replacement

        return self._pattern.sub(swap, text)

    def text(self, value: str, loc: str, nested: int | None = None) -> str:
        """A string leaf at `loc`: nested JSON first, then needles, then a mask."""
        nested = self.nested if nested is None else nested
        new = value
        if nested > 0 and len(value) >= 2 and value[0] in _NEST_FIRST:
            new = self._nested(value, loc, nested)
        new = self.replace(new)
        if loc in self.masks and new == value:
            kind, enc = self.masks[loc]
            new = placeholder(value, kind, enc)
        if new != value:
            self.mark(loc)
        return new

    def _nested(self, value: str, loc: str, nested: int) -> str:
        found = nested_json(value)
        if found is None:
            return value
        tree, layers = found
        before = len(self.changed)
        new_tree = self.node(tree, loc, 0, nested - 1)
        if len(self.changed) == before:
            return value
        text = _dumps(new_tree)
        if layers == ("base64", "json"):
            urlsafe = "-" in value or "_" in value
            raw = text.encode("utf-8")
            encoded = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
            padded = value.endswith("=") or (len(value) % 4 == 0 and not urlsafe)
            return encoded if padded else encoded.rstrip("=")
        return text

    # --- trees

    def node(self, node: Any, loc: str, depth: int, nested: int) -> Any:
        if depth > MAX_DEPTH:
            raise UnsafeRedaction(f"nesting deeper than {MAX_DEPTH} levels")
        if loc in self.masks and isinstance(node, (dict, list)):
            masked = self.mask_tree(node, depth)
            if masked != node:
                self.mark(loc)
            return masked
        t = type(node)
        if t is dict:
            out = {}
            for key, value in node.items():
                new_key = self.replace(key) if isinstance(key, str) else key
                suffix = key_suffix(key if isinstance(key, str) else str(key))
                out[new_key] = self.node(value, loc + suffix, depth + 1, nested)
                if new_key != key:
                    self.mark(loc + suffix)
            return out
        if t is list:
            return [self.node(v, f"{loc}[{i}]", depth + 1, nested) for i, v in enumerate(node)]
        if t is str:
            return self.text(node, loc, nested)
        if (t is int or t is float) and loc in self.masks:
            zero = _number_zero(node)
            if node != zero:
                self.mark(loc)
            return zero
        return node

    def mask_tree(self, node: Any, depth: int) -> Any:
        """Every scalar under `node` replaced (numbers → 0, strings → placeholder)."""
        if depth > MAX_DEPTH:
            raise UnsafeRedaction(f"nesting deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            return {k: self.mask_tree(v, depth + 1) for k, v in node.items()}
        if isinstance(node, list):
            return [self.mask_tree(v, depth + 1) for v in node]
        if isinstance(node, str):
            return placeholder(node) if node else node
        if isinstance(node, (int, float)) and not isinstance(node, bool):
            return _number_zero(node)
        return node

    # --- bytes

    def replace_bytes(self, data: bytes, same_length: bool) -> bytes:
        for value in sorted(self.needles, key=len, reverse=True):
            needle = self.needles[value]
            raw, new = value.encode("utf-8"), needle.replacement.encode("utf-8")
            if raw not in data:
                continue
            if same_length and len(raw) != len(new):
                raise UnsafeRedaction("a flagged value in a length-prefixed body has no "
                                      "placeholder of the same length")
            data = data.replace(raw, new)
            self.hit.add(value)
            for location in needle.locations:
                self.mark(location)
        return data


def _dumps(tree: Any) -> str:
    return json.dumps(tree, ensure_ascii=False, separators=(",", ":"))


# --- building the replacement table ------------------------------------------------


def build_redactor(payload: Payload | None, findings: Iterable[Finding],
                   nested: int = 3) -> Redactor:
    """Needles and masks for the selected findings of one payload."""
    leaves: dict[str, Any] = {}
    if payload is not None:
        for leaf in payload.leaves:
            leaves.setdefault(leaf.location, leaf.value)
    table: dict[str, tuple[str, list[str]]] = {}
    masks: dict[str, tuple[str, str | None]] = {}

    def add(value: str, replacement: str, location: str) -> None:
        if len(value) < MIN_NEEDLE or value == replacement:
            return
        entry = table.setdefault(value, (replacement, []))
        if location not in entry[1]:
            entry[1].append(location)

    for finding in findings:
        value = finding.value if isinstance(finding.value, str) else str(finding.value)
        leaf = leaves.get(finding.location)
        if isinstance(leaf, str) and _global(value) and value in leaf:
            new = placeholder(value, finding.type, finding.encoding)
            add(value, new, finding.location)
            # the same value URL-encoded or decoded elsewhere (query, URL, form)
            if "%" in value:
                add(unquote(value), unquote(new), finding.location)
            else:
                add(quote(value, safe=""), quote(new, safe=""), finding.location)
                add(quote_plus(value, safe=""), quote_plus(new, safe=""), finding.location)
        elif finding.location != "url":  # the URL is never replaced whole
            masks.setdefault(finding.location, (finding.type, finding.encoding))
    needles = [Needle(v, r, tuple(locs)) for v, (r, locs) in table.items()]
    return Redactor(needles, masks, nested)


def _global(value: str) -> bool:
    """Whether a value is distinctive enough to replace wherever it occurs.

    Short numbers (an audio level "0.5", a count "17") would also hit version
    strings and unrelated fields, so they are replaced at their location only.
    """
    if len(value) < MIN_NEEDLE:
        return False
    if len(value) < MIN_GLOBAL_NUMBER and _NUMBER.fullmatch(value.strip()):
        return False
    return True


# --- content encoding -----------------------------------------------------------------


def _codings(header: str) -> list[str]:
    out = []
    for part in header.split(","):
        coding = part.strip().lower()
        if coding and coding != "identity":
            out.append(_CODING_ALIASES.get(coding, coding))
    return out


def decode_content(raw: bytes, content_encoding: str) -> bytes:
    """Undo every Content-Encoding layer (last applied first). Raises UnsafeRedaction."""
    data = raw
    for coding in reversed(_codings(content_encoding)):
        try:
            out = mitm_encoding.decode(data, coding)
        except (ValueError, TypeError) as e:
            raise UnsafeRedaction(f"cannot decode content-encoding {coding!r}: {e}") from e
        if not isinstance(out, bytes):
            raise UnsafeRedaction(f"content-encoding {coding!r} is not a byte encoding")
        data = out
    return data


def encode_content(data: bytes, content_encoding: str) -> bytes:
    """Apply every Content-Encoding layer again, in order. Raises UnsafeRedaction."""
    out = data
    for coding in _codings(content_encoding):
        try:
            encoded = mitm_encoding.encode(out, coding)
        except (ValueError, TypeError) as e:
            raise UnsafeRedaction(f"cannot re-encode content-encoding {coding!r}: {e}") from e
        if not isinstance(encoded, bytes):
            raise UnsafeRedaction(f"content-encoding {coding!r} is not a byte encoding")
        out = encoded
    if decode_content(out, content_encoding) != data:
        raise UnsafeRedaction("re-encoded body does not decode to the redacted body")
    return out


# --- the parts of a request ---------------------------------------------------------------


def _utf8(data: bytes) -> tuple[str, str]:
    """(BOM, text) of strict UTF-8, or raises UnsafeRedaction."""
    bom = "\ufeff" if data.startswith(b"\xef\xbb\xbf") else ""
    try:
        return bom, data[3 if bom else 0 :].decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnsafeRedaction(f"body is not valid UTF-8 (byte {e.start})") from e


def _body_masks(r: Redactor) -> list[str]:
    return [loc for loc in r.masks if loc.startswith("$")]


def _json_body(data: bytes, r: Redactor) -> bytes:
    bom, text = _utf8(data)
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise UnsafeRedaction(f"JSON body does not parse: {e}") from e
    before = len(r.changed)
    new = r.node(tree, "$", 0, r.nested)
    if len(r.changed) == before:
        return data
    return (bom + _dumps(new)).encode("utf-8")


def _ndjson_body(data: bytes, r: Redactor) -> bytes:
    bom, text = _utf8(data)
    lines = text.split("\n")
    out = []
    for index, line in enumerate(lines):
        stripped = line.strip(" \t\r")
        loc = f"$[{index}]"
        if not stripped:
            out.append(line)
            continue
        before = len(r.changed)
        try:
            tree = json.loads(stripped)
        except (ValueError, RecursionError):
            new_line = r.text(line, loc)
        else:
            new_tree = r.node(tree, loc, 1, r.nested)
            new_line = _dumps(new_tree) + ("\r" if line.endswith("\r") else "")
        out.append(new_line if len(r.changed) != before else line)
    return (bom + "\n".join(out)).encode("utf-8")


def _form_body(data: bytes, r: Redactor) -> bytes:
    bom, text = _utf8(data)
    pairs = text.split("&")
    names = [unquote_plus(p.partition("=")[0]) for p in pairs if p]
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
        name = unquote_plus(raw_name)
        index = seen.get(name, 0)
        seen[name] = index + 1
        loc = "$" + key_suffix(name) + (f"[{index}]" if counts[name] > 1 else "")
        out.append(raw_name + eq + _component(raw_value, loc, r, plus=True))
    return (bom + "&".join(out)).encode("utf-8")


def _component(raw: str, loc: str, r: Redactor, *, plus: bool, safe: str = "") -> str:
    """One URL-encoded value: raw needles first, then the decoded value."""
    value = unquote_plus(raw) if plus else unquote(raw)
    new = r.text(value, loc)
    if new != value:
        return quote_plus(new, safe=safe) if plus else quote(new, safe=safe)
    swapped = r.replace(raw)
    if swapped != raw:
        r.mark(loc)
    return swapped


def _text_body(data: bytes, r: Redactor) -> bytes:
    bom, text = _utf8(data)
    new = r.text(text, "$")
    return data if new == text else (bom + new).encode("utf-8")


def _body(data: bytes, kind: str, r: Redactor) -> bytes:
    if kind == "empty" or not data:
        return data
    if kind == "json":
        return _json_body(data, r)
    if kind == "ndjson":
        return _ndjson_body(data, r)
    if kind == "form":
        return _form_body(data, r)
    if kind == "text":
        return _text_body(data, r)
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
    """Rewrite `request` in place (give it a copy). Raises UnsafeRedaction."""
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
    new_data = _body(data, kind, r)
    if new_data == data:
        return
    encoded = encode_content(new_data, content_encoding)
    request.raw_content = encoded
    if "transfer-encoding" not in request.headers:
        request.headers["content-length"] = str(len(encoded))
