"""What each flagged value becomes: the replacement table (`build_redactor`) and the text rewriting.

A `Redactor` replaces needles (flagged raw values, wherever they occur) and masks
(flagged locations whose value is not a substring of its leaf); `rewrite_json`
changes only the tokens of flagged values and keeps every other byte as sent.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from ..decode.jsonio import json_tokens
from ..decode.walk import key_suffix, nested_json
from ..model import Finding, Payload
from .placeholder import placeholder

__all__ = [
    "UnsafeRedaction",
    "Needle",
    "Redactor",
    "MIN_NEEDLE",
    "build_redactor",
    "rewrite_json",
]

MAX_DEPTH = 400
MIN_NEEDLE = 3
"""Shorter flagged values are replaced at their location only, never everywhere."""
MIN_GLOBAL_NUMBER = 6
"""Numbers shorter than this are replaced at their location only, too."""
_NUMBER = re.compile(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")
_NEST_FIRST = frozenset("{[eWICD7")


class UnsafeRedaction(Exception):
    """The request cannot be redacted faithfully; the message says why."""


@dataclass(frozen=True, slots=True)
class Needle:
    value: str
    replacement: str
    locations: tuple[str, ...]


def _zero(number: str) -> str:
    """A JSON number token's zero of the same kind: 0, or 0.0 for a fraction or exponent."""
    return "0.0" if any(c in number for c in ".eE") else "0"


class Redactor:
    """Replacement state for one request; records the locations it changed.

    Two ways to replace, both driven by the findings a plan selected:

    - needles: each flagged raw value (and its URL-encoded / decoded twin) is
      replaced wherever it occurs, in every string of the decoded body, in JSON
      or base64-JSON nested inside strings, in header, query and cookie values
      and in the URL path;
    - masks: a flagged location whose value is not a substring of its leaf (a
      number such as an audio level, a whole participant list, a grouped
      series) is replaced at that location: numbers become 0 of the same type,
      strings a same-shape placeholder, containers have every scalar replaced.
    """

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
        try:
            if found[1] == ("json",):
                return rewrite_json(value, loc, self, nested - 1)
            urlsafe = "-" in value or "_" in value
            padded = value + "=" * (-len(value) % 4)
            raw = base64.urlsafe_b64decode(padded) if urlsafe else base64.b64decode(padded)
            text = raw.decode("utf-8")
            inner = text.lstrip(" \t\r\n\ufeff")
            new = text[: len(text) - len(inner)] + rewrite_json(inner, loc, self, nested - 1)
        except (UnsafeRedaction, UnicodeDecodeError, ValueError):
            return value  # needles still apply; the recheck catches what is left
        if new == text:
            return value
        data = new.encode("utf-8")
        encoded = (base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)).decode()
        keep_padding = value.endswith("=") or (len(value) % 4 == 0 and not urlsafe)
        return encoded if keep_padding else encoded.rstrip("=")

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


class _Frame:
    __slots__ = ("loc", "is_dict", "index", "masked")

    def __init__(self, loc: str, is_dict: bool, masked: str | None) -> None:
        self.loc = loc
        self.is_dict = is_dict
        self.index = 0
        self.masked = masked
        """The location of the masked container this one is in (or is)."""


def _json_string(value: str, written: str) -> str:
    """`value` as a JSON string token, escaped like the token it replaces."""
    return json.dumps(value, ensure_ascii=written.isascii())


def rewrite_json(text: str, base: str, r: Redactor, nested: int) -> str:
    """`text` (one JSON document at location `base`) with only flagged tokens replaced.

    A flagged container (a participant list) has every scalar in it replaced.
    Raises UnsafeRedaction when `text` is not one valid document.
    """
    out: list[str] = []
    last = 0
    stack: list[_Frame] = []
    key_loc = base

    def splice(start: int, end: int, new: str) -> None:
        nonlocal last
        out.append(text[last:start])
        out.append(new)
        last = end

    try:
        for kind, start, end, value in json_tokens(text, MAX_DEPTH):
            if kind == "close":
                stack.pop()
                continue
            if kind == "key":
                key_loc = stack[-1].loc + key_suffix(value)
                new_key = r.replace(value)
                if new_key != value:
                    r.mark(key_loc)
                    splice(start, end, _json_string(new_key, text[start:end]))
                continue
            frame = stack[-1] if stack else None
            if frame is None:
                loc = base
            elif frame.is_dict:
                loc = key_loc
            else:
                loc = f"{frame.loc}[{frame.index}]"
                frame.index += 1
            masked = frame.masked if frame is not None else None
            if kind == "open":
                if masked is None and loc in r.masks:
                    masked = loc
                stack.append(_Frame(loc, value == "{", masked))
            elif kind == "string":
                if masked is not None:
                    new = placeholder(value) if value else value
                    if new != value:
                        r.mark(masked)
                else:
                    new = r.text(value, loc, nested)  # marks `loc` itself
                if new != value:
                    splice(start, end, _json_string(new, text[start:end]))
            elif kind == "number" and (masked is not None or loc in r.masks):
                if float(value) != 0:
                    r.mark(masked or loc)
                    splice(start, end, _zero(value))
    except (ValueError, RecursionError) as e:
        raise UnsafeRedaction(f"JSON does not parse: {e}") from e
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


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
