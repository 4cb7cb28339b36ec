"""Words and spellings every stage shares: marker labels, enforce actions, identity
file keys, encoding names, the location syntax (`$.a[0].b`, `header:Name`, `query:k`)
and byte sizes. Reports, rule packs and enforce files use exactly these; the
vocabulary of model.py (triggers, categories, purposes, severities) is the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import Flag, auto
from typing import NamedTuple

import re2

from .model import PathPart

__all__ = [
    "ACTIONS",
    "BOUNDED_ENCODINGS",
    "DIGESTS",
    "IDENTITY_FIELDS",
    "IdentityField",
    "MARKER_LABELS",
    "MARKS",
    "action_rank",
    "encoding_family",
    "format_location",
    "format_size",
    "key_suffix",
    "parse_location",
    "strongest_action",
]

# --- marker labels ------------------------------------------------------------------

class _LabelUse(Flag):
    PHASE = auto()
    """Opens or closes a timeline phase."""
    PROVABLE = auto()
    """A rule may prove it: the request shows the moment by itself."""


_PHASE, _PROVABLE = _LabelUse.PHASE, _LabelUse.PROVABLE
_LABELS: dict[str, _LabelUse] = {
    "setup": _PHASE,
    "app_start": _PROVABLE,
    "sign_in": _PHASE | _PROVABLE,
    "idle": _PHASE,
    "meeting_create": _PROVABLE,
    "meeting_join": _PHASE | _PROVABLE,
    "meeting_leave": _PHASE | _PROVABLE,
    "screen_share_start": _PHASE | _PROVABLE,
    "screen_share_stop": _PHASE | _PROVABLE,
    "muted": _PHASE | _PROVABLE,
    "unmuted": _PHASE | _PROVABLE,
    "opt_out": _PHASE,
    "shutdown": _PROVABLE,
}

MARKER_LABELS: tuple[str, ...] = tuple(label for label, use in _LABELS.items() if _PHASE in use)
"""Labels that open or close a phase. Any other valid label is stored and shown."""

MARKS: tuple[str, ...] = tuple(label for label, use in _LABELS.items() if _PROVABLE in use)
"""Labels a rule may prove (`marks`): the moments a request shows by itself."""

# --- enforce actions --------------------------------------------------------------

ACTIONS = ("observe", "redact", "block")
"""What enforce mode may do to a flow, weakest first."""

_ACTION_RANK = {action: rank for rank, action in enumerate(ACTIONS)}


def action_rank(action: str) -> int:
    """0 for observe, 1 for redact, 2 for block."""
    return _ACTION_RANK[action]


def strongest_action(actions: Iterable[str | None]) -> str | None:
    """The strongest of these actions (block over redact over observe), or None."""
    best: str | None = None
    for action in actions:
        if action and (best is None or _ACTION_RANK[action] > _ACTION_RANK[best]):
            best = action
    return best


# --- identity file keys -----------------------------------------------------------

class IdentityField(NamedTuple):
    """A key of the identity file: how its values are masked and named."""

    masked_as: str
    """The finding type whose masking (redact.py) a value gets in evidence."""
    label: str
    """What a person reads for it in the digest."""


IDENTITY_FIELDS: Mapping[str, IdentityField] = {
    "email": IdentityField("email", "your e-mail"),
    "name": IdentityField("person_name", "your name"),
    "phone": IdentityField("phone", "your phone number"),
    "username": IdentityField("username", "your user name"),
    "device_name": IdentityField("hostname", "your device name"),
    "hostname": IdentityField("hostname", "your host name"),
    "ip": IdentityField("ip_address", "your IP address"),
    "mac": IdentityField("mac_address", "your MAC address"),
    "meeting_ids": IdentityField("identity_match", "your meeting ids"),
    "meeting_titles": IdentityField("meeting_title", "your meeting titles"),
    "custom": IdentityField("identity_match", "your custom value"),
}


# --- encoding names ----------------------------------------------------------------
# A finding's `encoding` reads left to right: "sha256(lower)>base64" is base64 of the
# sha256 digest of the lower-cased value.

DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha512")
BOUNDED_ENCODINGS = frozenset({"plain", "case-folded", "reversed", "url"})
"""Forms a value takes without a deliberate transformation: they must stand alone
("jroe" does not match inside "jroebuck")."""


def encoding_family(encoding: str | None) -> str:
    """The first layer of an encoding: "sha256(lower)>base64" → "sha256"."""
    first = (encoding or "plain").split(">", 1)[0]
    return first.split("(", 1)[0] or "plain"


# --- locations ---------------------------------------------------------------------
# Body leaves use JSONPath: `$`, then `.key` for an ASCII identifier or an all-digit
# key (protobuf field numbers: `$.1.3[0]`), `['other key']` with `\` and `'` escaped,
# and `[i]` for list items. Other sources: `query:uid`, `header:X-Device`,
# `cookie:sid`, `url`; JSON found inside such a value goes on the same way.


def key_suffix(key: str) -> str:
    """The location suffix for a key: ".name" or "['other key']"."""
    if key.isascii() and (key.isidentifier() or key.isdigit()):
        return "." + key
    return "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


def format_location(source: str, path: Sequence[PathPart]) -> str:
    """The location of a path: ("body", ("a", 0)) → `$.a[0]`, ("query", ("k",)) → `query:k`."""
    def suffix(part: PathPart) -> str:
        return f"[{part}]" if isinstance(part, int) else key_suffix(part)

    if source == "body":
        return "$" + "".join(suffix(p) for p in path)
    if source == "url" or not path:
        return source
    return f"{source}:{path[0]}" + "".join(suffix(p) for p in path[1:])


_LOCATION_PART = re2.compile(  # linear: locations may come from hostile traffic
    r"\.([A-Za-z_][A-Za-z0-9_]*|[0-9]+)|\[([0-9]+)\]|\['((?:[^'\\]|\\.)*)'\]")


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


# --- sizes -------------------------------------------------------------------------


def format_size(n: int | float | None) -> str:
    """1536 → "1.5 KiB"; whole bytes below 1 KiB."""
    value = float(n or 0)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
