"""Redacted previews and fingerprints: enough to locate a value, nothing more.

`redact` gives the evidence reports show; `redact_tree` and `redact_url` replace the
flagged values of a body or URL by it; `fingerprint` is keyed (HMAC): it links values,
and a guess cannot confirm it.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, unquote, unquote_plus

from ..model import Finding, PathPart, severity_rank
from ..terms import parse_location
from .base import compile_re2, safe_text
from .cache import remember

__all__ = [
    "EPHEMERAL_KEY",
    "fingerprint",
    "flagged_values",
    "parse_location",
    "redact",
    "redact_text",
    "redact_tree",
    "redact_url",
]

_DIGEST_BY_HEX_LEN = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 128: "sha512"}
_HEX = compile_re2(r"^[0-9A-Fa-f]+$")
_EMAIL = compile_re2(r"^([^@\s]+)@([^@\s]+)$")
_EXT = compile_re2(r"(\.[A-Za-z0-9]{1,6})$")


EPHEMERAL_KEY = os.urandom(32)
"""The key when no per-install one is given: fingerprints then link within this process."""


def fingerprint(value: object, key: bytes = EPHEMERAL_KEY) -> str:
    """A short keyed digest of a value: "hmac:" + 16 hex digits of HMAC-SHA256.

    Unkeyed, a digest next to masked evidence gives the value back to anyone
    who can guess it (256 tries for a masked IPv4); keyed, it only links."""
    text = value if isinstance(value, str) else repr(value)
    memo = (key, text)
    found = _FINGERPRINTS.get(memo)
    if found is None:
        data = text.encode("utf-8", "surrogatepass")
        found = "hmac:" + hmac.digest(key, data, "sha256")[:8].hex()
        if len(text) <= _MAX_FINGERPRINTED_TEXT:  # the memo stays small
            remember(_FINGERPRINTS, memo, found, _MAX_FINGERPRINTS)
    return found


_FINGERPRINTS: dict[tuple[bytes, str], str] = {}
"""`fingerprint` by (key, text): the same values recur across a capture's flows."""
_MAX_FINGERPRINTS = 8192
_MAX_FINGERPRINTED_TEXT = 256


def _stars(word: str) -> str:
    return (word[:1] + "***") if word else "***"


def _email(value: str) -> str | None:
    m = _EMAIL.search(value)
    if m is None:
        return None
    local, domain = m.group(1), m.group(2)
    labels = domain.split(".")
    tld = labels[-1] if len(labels) > 1 else ""
    head = _stars(local.split(":")[-1])  # sip:jane@… keeps only the user part
    return f"{head}@{_stars(labels[0])}" + (f".{tld}" if tld else "")


def _ip(value: str) -> str | None:
    text = value.strip().strip("[]")
    parts = text.split(".")
    if len(parts) == 4 and all(p.isdigit() and len(p) <= 3 for p in parts):
        return ".".join(parts[:3]) + ".x"
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if ip.version == 4:
        return ".".join(str(ip).split(".")[:3]) + ".x"
    groups = ip.exploded.split(":")
    return ":".join(g.lstrip("0") or "0" for g in groups[:4]) + ":x"


def _mac(value: str) -> str:
    hexdigits = "".join(ch for ch in value if ch.isalnum())
    if len(hexdigits) != 12:
        return _generic(value)
    sep = ":" if ":" in value else "-" if "-" in value else ":"
    pairs = [hexdigits[i : i + 2] for i in range(0, 6, 2)]
    return sep.join(pairs + ["xx", "xx", "xx"])


def _phone(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) < 4:
        return "***"
    if value.lstrip().startswith("+"):
        return "+" + digits[0] + "*" * max(len(digits) - 3, 1) + digits[-2:]
    return "*" * max(len(digits) - 2, 1) + digits[-2:]


def _name(value: str) -> str:
    words = value.split()
    if not words:
        return "***"
    shown = " ".join(_stars(w) for w in words[:4])
    return shown + (" …" if len(words) > 4 else "")


def _text(value: str) -> str:
    words = value.split()
    first = _stars(words[0]) if words else "***"
    return f"{first} ({len(words)} words, {len(value)} chars)"


def _file(value: str) -> str:
    base = value.replace("\\", "/").rsplit("/", 1)[-1]
    m = _EXT.search(base)
    ext = m.group(1) if m else ""
    return _stars(base[: len(base) - len(ext)].strip()) + ext


def _generic(value: str) -> str:
    value = value.strip()
    if len(value) <= 4:
        return "*" * len(value) or "***"
    return f"{value[:4]}… ({len(value)} chars)"


def _digest(value: str) -> str | None:
    algo = _DIGEST_BY_HEX_LEN.get(len(value))
    if algo and _HEX.search(value):
        return f"{algo}:…"
    return None


def _numeric(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return _generic(value)
    return f"{number:.1f}~"


def _serial(value: str) -> str:
    value = value.strip()
    return (value[:2] + "*" * max(len(value) - 4, 1) + value[-2:]) if len(value) > 5 else "***"


def _last_digits(value: str) -> str:
    digits = "".join(ch for ch in value if ch.isalnum())
    return "*" * max(len(digits) - 4, 1) + digits[-4:] if len(digits) > 6 else "***"


def _token(value: str) -> str:
    stripped = value.strip()
    if stripped.lower().startswith("bearer "):
        return "Bearer " + _generic(stripped[7:].strip())
    return _generic(stripped)


def _hostname(value: str) -> str:
    first, dot, rest = value.strip().partition(".")
    return _stars(first) + (dot + rest.split(".")[-1] if dot else "")


def _participants(value: str) -> str:
    return value if value.endswith("entries") or value.endswith("entry") else _name(value)


def _audio(value: str) -> str:
    return value if value.startswith("series") else _numeric(value)


_BY_TYPE = {
    "email": lambda v: _email(v) or _generic(v),
    "ip_address": lambda v: _ip(v) or _generic(v),
    "mac_address": _mac,
    "phone": _phone,
    "person_name": _name,
    "username": lambda v: _stars(v.strip()),
    "hostname": _hostname,
    "geo_location": _numeric,
    "device_serial": _serial,
    "credit_card": _last_digits,
    "national_id": _last_digits,
    "auth_token": _token,
    "meeting_title": _text,
    "chat_message": _text,
    "transcript": _text,
    "file_name": _file,
    "participant_list": _participants,
    "audio_level": _audio,
}


def redact(finding_type: str, value: str) -> str:
    """A redacted preview of `value` for a finding of `finding_type`.

    For example:

        email            jane.roe@example.org  → j***@e***.org
        ip_address       203.0.113.42          → 203.0.113.x     (IPv6: first 4 groups + :x)
        mac_address      a4:83:e7:12:34:56     → a4:83:e7:xx:xx:xx  (vendor prefix kept)
        phone            +1 415 555 2671       → +1*******71
        hex digests      (32/40/56/64/128 hex) → sha256:…  (no digits: they would confirm a guess)
        names            Jane Roe              → J*** R***
        free text        Q3 budget review      → Q*** (3 words, 16 chars)
        file names       Q3 Budget.xlsx        → Q***.xlsx
        tokens, ids      eyJhbGciOi…           → eyJh… (812 chars)
    """
    value = safe_text(value if isinstance(value, str) else str(value))
    handler = _BY_TYPE.get(finding_type)
    if handler is not None:
        return handler(value)
    # identity_match, persistent_id and anything else: recognise the shape.
    return _digest(value.strip()) or _email(value) or _ip(value) or _generic(value)


# --- trees ------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a pure function of a few recurring locations
def _parsed_location(location: str) -> tuple[PathPart, ...] | None:
    return parse_location(location)


def _replace(tree: Any, path: tuple[PathPart, ...], evidence: str, copied: set[int]) -> Any:
    """Replace the value at `path`; a string met on the way (it held nested JSON
    or base64) is replaced whole. Containers along the path are copied once
    (their ids go in `copied`), so the input tree is never changed. Returns
    the new root."""
    if not path or isinstance(tree, str):
        return evidence
    steps: list[tuple[Any, PathPart]] = []
    node = tree
    for part in path:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            key: PathPart = part
        elif isinstance(node, dict) and isinstance(part, int) and str(part) in node:
            key = str(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            key = part
        else:
            return tree  # does not resolve: leave the tree alone
        steps.append((node, key))
        node = node[key]
        if isinstance(node, str):
            break
    root = tree if id(tree) in copied else _copied(tree, copied)
    current = root
    for depth, (_, key) in enumerate(steps):
        if depth == len(steps) - 1:
            current[key] = evidence
            break
        child = current[key]
        if id(child) not in copied:
            child = _copied(child, copied)
            current[key] = child
        current = child
    return root


def _copied(container: Any, copied: set[int]) -> Any:
    duplicate = container.copy()
    copied.add(id(duplicate))
    return duplicate


def redact_tree(tree: Any, findings: Sequence[Finding]) -> Any:
    """A copy of `tree` with each flagged body location replaced by its evidence.

    Where several findings share a location the most severe one's evidence is
    used. Non-body locations (header:, query:, cookie:, url) are ignored.
    """
    best: dict[str, Finding] = {}
    for finding in findings:
        current = best.get(finding.location)
        if current is None or severity_rank(finding.severity) > severity_rank(current.severity):
            best[finding.location] = finding
    out = tree
    copied: set[int] = set()
    # Deeper locations first: a container's own finding (a participant list) then
    # replaces the whole subtree, children included.
    for location in sorted(best, key=len, reverse=True):
        path = _parsed_location(location)
        if path is None:
            continue
        out = _replace(out, path, best[location].evidence, copied)
    return out


# --- URLs and other request text -----------------------------------------------

MIN_REDACTED = 4
"""Shorter flagged values are replaced only where a finding located them exactly."""

_URL_TOKENS = re.compile(r"([/?&=#;])")  # a fixed split, no backtracking


def flagged_values(findings: Sequence[Finding]) -> list[tuple[str, str]]:
    """(value, evidence) of every flagged text, longest first (a merged finding's
    values one by one); the most severe finding's evidence where values repeat."""
    best: dict[str, Finding] = {}
    for finding in findings:
        value = finding.value
        if not isinstance(value, str):
            continue
        for part in value.split("\n") if "\n" in value else (value,):
            if not part.strip():
                continue
            current = best.get(part)
            if current is None or severity_rank(finding.severity) > severity_rank(current.severity):
                best[part] = finding
    return sorted(((v, f.evidence) for v, f in best.items()), key=lambda p: -len(p[0]))


def _url_safe(text: str) -> str:
    """Evidence written into a URL: readable, but no delimiter or escape of its own."""
    return quote(text.replace("…", "..."), safe="*@:.,()~!$'[]")


def _substitute(text: str, flagged: list[tuple[str, str]], url: bool) -> str:
    for value, evidence in flagged:
        if (len(value) >= MIN_REDACTED or value == text) and value in text:
            text = text.replace(value, _url_safe(evidence) if url else evidence)
    return text


def redact_text(text: str, findings: Sequence[Finding],
                flagged: list[tuple[str, str]] | None = None) -> str:
    """`text` (a host, a content type) with every flagged value in it replaced;
    `flagged` is `flagged_values(findings)` when the caller has it already."""
    if flagged is None:
        flagged = flagged_values(findings)
    return _substitute(text, flagged, url=False) if flagged and text else text


def _query_targets(findings: Sequence[Finding]) -> list[tuple[str, str]]:
    """(what follows "query:", evidence) for findings located in the query string."""
    return [(f.location[6:], f.evidence) for f in findings if f.location.startswith("query:")]


def _targeted(name: str, targets: list[tuple[str, str]]) -> str | None:
    """The evidence of a finding located in the query parameter `name` (or inside it)."""
    for rest, evidence in targets:
        if rest == name or (rest.startswith(name) and rest[len(name)] in ".["):
            return evidence
    return None


def redact_url(url: str, findings: Sequence[Finding],
               flagged: list[tuple[str, str]] | None = None) -> str:
    """`url` with every flagged value replaced by its evidence, as typed or
    percent-encoded, in the host, path, query and fragment. A query parameter
    that a finding names but whose text does not show the value (base64, nested
    JSON) is replaced whole. Parts that hold nothing flagged stay as they were."""
    if flagged is None:
        flagged = flagged_values(findings)
    if not flagged or not url:
        return url
    targets = _query_targets(findings)
    base, hashmark, fragment = url.partition("#")
    head, mark, query = base.partition("?")
    if mark and targets:
        pairs = query.split("&")
        for i, pair in enumerate(pairs):
            name, equals, value = pair.partition("=")
            evidence = _targeted(unquote_plus(name), targets)
            if evidence is None or not equals:
                continue
            decoded = unquote_plus(value)
            replaced = _substitute(decoded, flagged, url=False)
            pairs[i] = f"{name}={_url_safe(replaced if replaced != decoded else evidence)}"
        url = f"{head}?{'&'.join(pairs)}{hashmark}{fragment}"
    url = _substitute(url, flagged, url=True)
    tokens = _URL_TOKENS.split(url)
    for i in range(0, len(tokens), 2):  # even places: the text between delimiters
        token = tokens[i]
        if "%" not in token and "+" not in token:
            continue
        for decoded in dict.fromkeys((unquote(token), unquote_plus(token))):
            replaced = _substitute(decoded, flagged, url=False)
            if replaced != decoded:
                tokens[i] = _url_safe(replaced)
                break
    return "".join(tokens)
