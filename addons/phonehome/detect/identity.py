"""The auditor's own values: the identity file, its expansion, the one-pass search.

Each declared value is expanded once into every form it could travel in, and all
forms go into one Aho-Corasick automaton that runs once over every leaf's text.
The file format (README, "Your identity file"): a mapping of field → value(s).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus

import ahocorasick
import phonenumbers

from ..terms import BOUNDED_ENCODINGS, DIGESTS, IDENTITY_FIELDS
from ..yamldoc import (
    TOP,
    Checker,
    DocumentError,
    LDict,
    LList,
    did_you_mean,
    load_document,
    typename,
)

__all__ = [
    "IDENTITY_FIELDS",
    "Identity",
    "IdentityError",
    "IdentityForm",
    "IdentityIndex",
    "expand",
    "load_identity",
    "MAX_VALUE_CHARS",
    "MAX_VALUES",
    "MIN_NEEDLE",
]

MIN_NEEDLE = 4
"""Needles shorter than this would match by chance; such values are skipped."""
MIN_ALIGNED = 8
"""Shortest stable base64 middle worth searching inside blobs."""
MAX_VALUE_CHARS = 1024
"""Longest declared value: each expands into about a hundred forms, several times its length."""
MAX_VALUES = 2000
"""Most declared values in one file: each costs about 0.1 MB of forms and trie, in
every process that audits (2000 load in a few seconds)."""
TRIE_CHARS = 24
"""Characters of each form that go into the automaton; a hit is then checked whole."""
TRIE_CHARS_HASHED = 12
"""The same for digests: their characters are random, so 12 are rarely shared."""

IdentityError = DocumentError
"""A bad identity file or mapping; `.errors` holds every `path:line:col: message`."""


@dataclass(frozen=True, slots=True)
class IdentityForm:
    """One searchable form of one declared value."""

    needle: str
    field: str
    index: int
    """Position of the declared value in Identity.values."""
    encoding: str
    hashed: bool
    aligned: bool = False
    """A base64 middle for a value embedded in a longer blob."""

    @property
    def bounded(self) -> bool:
        return self.encoding in BOUNDED_ENCODINGS


# --- expansion ----------------------------------------------------------------


def _b64(data: bytes, urlsafe: bool, pad: bool) -> str:
    out = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode("ascii")
    return out if pad else out.rstrip("=")


def _b64_aligned(data: bytes, offset: int, urlsafe: bool) -> str:
    """The characters of base64(prefix + data) that depend on `data` alone."""
    encoded = _b64(b"\0" * offset + data, urlsafe, pad=False)
    total = offset + len(data)
    stable_end = 4 * (total // 3) + (total % 3)
    return encoded[(0, 2, 3)[offset] : stable_end]


# How a value is expanded (`expand`): case variants, reversed, URL-encoded, hex,
# base64 (standard and URL-safe, padded or not), md5/sha1/sha224/sha256/sha512 of the
# raw value and of its trimmed lower-cased form as hex (either case), base64 or
# base64url, plus two-layer chains (`url>base64`, `base64>url`, `sha256(lower)>base64`,
# `sha256>hex>base64`). Names read left to right (terms.py).
#
# Base64 inside a longer blob: a value at byte offset 0, 1 or 2 (mod 3) of the blob
# encodes three ways. For each alignment the value is encoded behind 0/1/2 zero bytes,
# the characters that mix in the prefix (0, 2 or 3) and the last one that mixes in
# what follows are dropped, and the stable middle (at least 8 characters) is searched:
# such matches say `base64` with "inside a base64 blob" in the reason.
#
# The automaton holds the first TRIE_CHARS characters of each form (checked whole on
# a hit), so it grows linearly with the values and stays shallow.


def _variants(field: str, value: str) -> list[tuple[str, str]]:
    """(text, encoding) for the value as typed, its case variants and its formats."""
    out = [(value, "plain")]
    for variant in (value.lower(), value.upper(), value.title(), value.strip()):
        out.append((variant, "case-folded" if variant.strip() != value.strip() else "plain"))
    if field == "mac":
        digits = "".join(ch for ch in value if ch.isalnum()).lower()
        if len(digits) == 12:
            pairs = [digits[i : i + 2] for i in range(0, 12, 2)]
            for text in (":".join(pairs), "-".join(pairs), digits,
                         ".".join(digits[i : i + 4] for i in range(0, 12, 4))):
                out.append((text, "plain"))
                out.append((text.upper(), "plain"))
    elif field == "phone":
        try:
            number = phonenumbers.parse(value, None if value.strip().startswith("+") else "US")
        except phonenumbers.NumberParseException:
            number = None
        if number is not None:
            fmt = phonenumbers.PhoneNumberFormat
            for style in (fmt.E164, fmt.INTERNATIONAL, fmt.NATIONAL):
                out.append((phonenumbers.format_number(number, style), "plain"))
            e164 = phonenumbers.format_number(number, fmt.E164)
            out.append((e164[1:], "plain"))
            out.append((str(number.national_number), "plain"))
    elif field == "meeting_ids":
        out.append(("".join(value.split()), "plain"))
    return out


def expand(field: str, value: str) -> list[tuple[str, str, bool, bool]]:
    """Every (needle, encoding, hashed, aligned) form of one declared value, most
    specific encoding first; duplicates keep their first (simplest) name."""
    forms: list[tuple[str, str, bool, bool]] = []

    def add(needle: str, encoding: str, hashed: bool = False, aligned: bool = False) -> None:
        forms.append((needle, encoding, hashed, aligned))

    variants = _variants(field, value)
    texts = list(dict.fromkeys(text for text, _ in variants))
    names = {}
    for text, encoding in variants:
        names.setdefault(text, encoding)
    for text in texts:
        add(text, names[text])
    for text in texts:
        if len(text) >= MIN_NEEDLE:
            add(text[::-1], "reversed")
    for text in texts:
        for encoded in (quote(text, safe=""), quote_plus(text, safe=""), quote(text, safe="@")):
            if encoded != text:
                add(encoded, "url")
                add(_lower_escapes(encoded), "url")
    for text in texts:
        raw = text.encode("utf-8")
        add(raw.hex(), "hex")
        add(raw.hex().upper(), "hex")
    # base64 of the value as typed and in the formats above (not of case variants:
    # those that differ are searched through the digest of the lower-cased form).
    encoded_texts = [t for t, enc in variants if enc == "plain"]
    for text in dict.fromkeys(encoded_texts):
        raw = text.encode("utf-8")
        for urlsafe in (False, True):
            name = "base64url" if urlsafe else "base64"
            add(_b64(raw, urlsafe, pad=True), name)
            add(_b64(raw, urlsafe, pad=False), name)
        quoted = quote(text, safe="")
        if quoted != text:
            add(_b64(quoted.encode("ascii"), False, pad=True), "url>base64")
            add(_b64(quoted.encode("ascii"), True, pad=False), "url>base64url")
            add(quote(_b64(raw, False, pad=True), safe=""), "base64>url")
    for text in dict.fromkeys(encoded_texts):
        raw = text.encode("utf-8")
        for offset in (0, 1, 2):
            for urlsafe in (False, True):
                middle = _b64_aligned(raw, offset, urlsafe)
                if len(middle) >= MIN_ALIGNED:
                    add(middle, "base64url" if urlsafe else "base64", aligned=True)
    sources = {value: ""}
    normalized = value.strip().lower()
    sources.setdefault(normalized, "(lower)")
    for text, _ in variants:
        if text not in sources and text == text.strip():
            sources[text] = ""  # formats (E.164, canonical MAC) hash as themselves
    for text, label in sources.items():
        raw = text.encode("utf-8")
        for algo in DIGESTS:
            digest = hashlib.new(algo, raw).digest()
            name = algo + label
            add(digest.hex(), name, True)
            add(digest.hex().upper(), name, True)
            add(_b64(digest, False, pad=True), f"{name}>base64", True)
            add(_b64(digest, True, pad=False), f"{name}>base64url", True)
            add(_b64(digest.hex().encode("ascii"), False, pad=True), f"{name}>hex>base64", True)
    return forms


def _lower_escapes(encoded: str) -> str:
    """`jane%40example.org` with lower-case hex escapes (`%2f` instead of `%2F`)."""
    out = []
    i = 0
    while i < len(encoded):
        if encoded[i] == "%" and i + 2 < len(encoded):
            out.append(encoded[i : i + 3].lower())
            i += 3
        else:
            out.append(encoded[i])
            i += 1
    return "".join(out)


# --- the identity -------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """Declared values and every form they expand to (computed once)."""

    values: tuple[tuple[str, str], ...]
    """(field, value) in declaration order."""
    forms: tuple[IdentityForm, ...]
    notes: tuple[str, ...] = ()
    """Values skipped, and why."""

    @classmethod
    def from_entries(cls, entries: list[tuple[str, str]]) -> Identity:
        """Expand every value; raises IdentityError past MAX_VALUES or MAX_VALUE_CHARS."""
        problem = _bound_problem(entries)
        if problem:
            raise IdentityError([f"identity: {problem}"])
        values: list[tuple[str, str]] = []
        declared: set[tuple[str, str]] = set()
        notes: list[str] = []
        forms: list[IdentityForm] = []
        seen: set[str] = set()
        for field, value in entries:
            if len(value.strip()) < MIN_NEEDLE:
                notes.append(
                    f"{field} value of {len(value.strip())} characters skipped "
                    f"(shorter than {MIN_NEEDLE} would match by chance)"
                )
                continue
            if (field, value) in declared:
                continue
            declared.add((field, value))
            index = len(values)
            values.append((field, value))
            for needle, encoding, hashed, aligned in expand(field, value):
                if len(needle) < MIN_NEEDLE or needle in seen:
                    continue
                seen.add(needle)
                forms.append(IdentityForm(needle, field, index, encoding, hashed, aligned))
        return cls(tuple(values), tuple(forms), tuple(notes))

    def __bool__(self) -> bool:
        return bool(self.forms)


def _bound_problem(entries: list[tuple[str, str]]) -> str | None:
    """Why these values are too many or too long to search for, if they are."""
    if len(entries) > MAX_VALUES:
        return f"{len(entries)} values, more than the {MAX_VALUES} an identity file may hold"
    for number, (field, value) in enumerate(entries, 1):
        if len(value) > MAX_VALUE_CHARS:
            return (f"{field} value #{number} has {len(value)} characters, more than "
                    f"{MAX_VALUE_CHARS} (an identity value is a name, an address, a title)")
    return None


def load_identity(path: Path) -> Identity:
    """Read an identity YAML file; IdentityError with every `path:line:col: message`.

    Values are read as written (`12:34:56` is a MAC fragment, not a number).
    """
    path = Path(path)
    checker = Checker(str(path))
    root, problems = load_document(path, checker.display, what="identity file",
                                   text_scalars=True)
    checker.errors.extend(problems)  # duplicate keys, aliases: the rest is still checked
    if root is None and not problems:
        checker.err(TOP, "identity file is empty (expected field: value lines)")
    elif root is not None and not isinstance(root, LDict):
        checker.err(getattr(root, "pos", TOP), "expected a mapping of fields")
    checker.raise_errors()
    entries: list[tuple[str, str]] = []
    for key, value in root.items():
        if key not in IDENTITY_FIELDS:
            checker.err(root.key_pos[key], f"unknown key {key!r} (expected one of: "
                                           f"{', '.join(IDENTITY_FIELDS)})"
                                           f"{did_you_mean(key, IDENTITY_FIELDS)}")
            continue
        if isinstance(value, LList):
            items, places = list(value), value.item_pos  # a list item: its own place
            if not items:
                checker.err(root.key_pos[key], f"{key}: empty list")
        else:
            items, places = [value], [root.key_pos[key]]  # one value: the key's place
        for item, place in zip(items, places, strict=True):
            problem = _value_problem(key, item)
            if problem:
                checker.err(place, problem)
            else:
                entries.append((key, item))
    checker.raise_errors()
    if len(entries) > MAX_VALUES:
        checker.err(TOP, str(_bound_problem(entries)))
        checker.raise_errors()
    return Identity.from_entries(entries)


def _value_problem(key: str, value: object) -> str | None:
    """Why a value read as text cannot be searched for, if it cannot."""
    if isinstance(value, (LDict, LList)):
        kind = "a mapping" if isinstance(value, LDict) else "a nested list"
        return f"{key}: expected a string or a list of strings, got {kind}"
    if not isinstance(value, str):  # true/false/null: only those are not kept as text
        return f"{key}: expected a string, got {typename(value)}"
    if not value.strip():
        return f"{key}: empty value"
    if len(value) > MAX_VALUE_CHARS:
        return (f"{key}: value of {len(value)} characters, more than "
                f"{MAX_VALUE_CHARS} (an identity value is a name, an address, a title)")
    return None


# --- the search ---------------------------------------------------------------


class IdentityIndex:
    """One Aho-Corasick automaton over the first TRIE_CHARS characters of every form
    of every declared value; a hit on such a prefix is checked against each whole
    form that starts with it. The same answers as a trie of whole forms, in a trie
    whose size is linear in the number of forms and whose depth is bounded (the
    library frees a trie recursively)."""

    __slots__ = ("automaton", "forms", "needles")

    def __init__(self, identity: Identity) -> None:
        self.forms = identity.forms
        self.needles = len(identity.forms)
        by_prefix: dict[str, list[int]] = {}
        for number, form in enumerate(identity.forms):
            cut = TRIE_CHARS_HASHED if form.hashed else TRIE_CHARS
            by_prefix.setdefault(form.needle[:cut], []).append(number)
        automaton = ahocorasick.Automaton()
        for prefix, numbers in by_prefix.items():
            automaton.add_word(prefix, (len(prefix), tuple(numbers)))
        if len(automaton):
            automaton.make_automaton()
        self.automaton = automaton if len(automaton) else None

    def matches(self, text: str) -> list[tuple[int, int, IdentityForm]]:
        """(start, end, form) for every occurrence, overlapping ones included."""
        if self.automaton is None:
            return []
        out = []
        forms = self.forms
        for last, (length, numbers) in self.automaton.iter(text):
            start = last + 1 - length
            for number in numbers:
                form = forms[number]
                needle = form.needle
                if len(needle) > length and not text.startswith(needle, start):
                    continue
                end = start + len(needle)
                if form.bounded and not _bounded(text, start, end):
                    continue
                out.append((start, end, form))
        return out


def _bounded(text: str, start: int, end: int) -> bool:
    """No letter or digit glued to either end (when the needle itself starts/ends with one)."""
    if start > 0 and text[start].isalnum() and text[start - 1].isalnum():
        return False
    if end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        return False
    return True
