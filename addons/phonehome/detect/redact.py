"""Redacted previews and fingerprints: enough to locate a value, nothing more.

`redact(type, value)` gives the evidence string reports show:

    email            jane.roe@example.org  → j***@e***.org
    ip_address       203.0.113.42          → 203.0.113.x     (IPv6: first 4 groups + :x)
    mac_address      a4:83:e7:12:34:56     → a4:83:e7:xx:xx:xx  (vendor prefix kept)
    phone            +1 415 555 2671       → +1*******71
    hex digests      (32/40/56/64/128 hex) → sha256:3f2a…
    names            Jane Roe              → J*** R***
    free text        Q3 budget review      → Q*** (3 words, 16 chars)
    file names       Q3 Budget.xlsx        → Q***.xlsx
    tokens, ids      eyJhbGciOi…           → eyJh… (812 chars)

`redact_tree(tree, findings)` copies a decoded body with every flagged
location replaced by its finding's evidence.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Sequence
from typing import Any

from ..model import Finding, PathPart, severity_rank
from .base import compile_re2, safe_text

__all__ = ["redact", "redact_tree", "fingerprint", "parse_location"]

_DIGEST_BY_HEX_LEN = {32: "md5", 40: "sha1", 56: "sha224", 64: "sha256", 128: "sha512"}
_HEX = compile_re2(r"^[0-9A-Fa-f]+$")
_EMAIL = compile_re2(r"^([^@\s]+)@([^@\s]+)$")
_EXT = compile_re2(r"(\.[A-Za-z0-9]{1,6})$")


def fingerprint(value: object) -> str:
    """A short stable digest of a value: "sha256:" + first 16 hex digits."""
    text = value if isinstance(value, str) else repr(value)
    data = text.encode("utf-8", "surrogatepass")
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


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
        return f"{algo}:{value[:4].lower()}…"
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
    """A redacted preview of `value` for a finding of `finding_type`."""
    value = safe_text(value if isinstance(value, str) else str(value))
    handler = _BY_TYPE.get(finding_type)
    if handler is not None:
        return handler(value)
    # identity_match, persistent_id and anything else: recognise the shape.
    return _digest(value.strip()) or _email(value) or _ip(value) or _generic(value)


# --- trees ------------------------------------------------------------------

_LOCATION_PART = compile_re2(
    r"\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+)|\[([0-9]+)\]|\['((?:[^'\\]|\\.)*)'\]"
)


@functools.lru_cache(maxsize=8192)
def _parsed_location(location: str) -> tuple[PathPart, ...] | None:
    return parse_location(location)


def parse_location(location: str) -> tuple[PathPart, ...] | None:
    """`$.a[0]['b c'].d` → ("a", 0, "b c", "d"); None for non-body locations."""
    if not location.startswith("$"):
        return None
    parts: list[PathPart] = []
    pos = 1
    while pos < len(location):
        m = _LOCATION_PART.match(location, pos)
        if m is None:
            return None
        name, index, quoted = m.group(1), m.group(2), m.group(3)
        if index is not None:
            parts.append(int(index))
        elif quoted is not None:
            parts.append(quoted.replace("\\'", "'").replace("\\\\", "\\"))
        else:
            parts.append(name)
        pos = m.end()
    return tuple(parts)


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
