"""Our YAML documents (rule packs, claims, enforce and identity files), read one way.

Positions of every key and value (`LDict`, `LList`); duplicate keys, aliases and deep
nesting refused; keys and choices checked with did-you-mean hints (`Checker`); every
problem a `path:line:col: message`, all of them carried by one `DocumentError`.
"""


from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "Checker",
    "DocumentError",
    "LDict",
    "LList",
    "Pos",
    "Problem",
    "did_you_mean",
    "load_document",
    "typename",
]

T = TypeVar("T")

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    col: int


TOP = Pos(1, 1)


class Problem(str):
    """One problem with its place: the text `path:line:col: message`, with the parts
    as attributes. A document that is not a file (a mapping) has no line: `path: message`."""

    path: str
    line: int
    col: int
    message: str

    def __new__(cls, path: str, line: int | None, col: int | None, message: str) -> Problem:
        text = f"{path}: {message}" if line is None else f"{path}:{line}:{col or 1}: {message}"
        self = super().__new__(cls, text)
        self.path, self.line, self.col, self.message = path, line or 0, col or 0, message
        return self


class DocumentError(ValueError):
    """A document that cannot be used. `errors` holds every problem; str() is the first
    one, on one line, with how many more there are."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        first = self.errors[0] if self.errors else "invalid document"
        more = len(self.errors) - 1
        suffix = f" (and {more} more error{'s' if more != 1 else ''})" if more > 0 else ""
        super().__init__(first + suffix)


class LDict(dict):
    """A mapping that remembers where it, its keys and its values start."""

    pos: Pos
    key_pos: dict[Any, Pos]
    value_pos: dict[Any, Pos]


class LList(list):
    """A sequence that remembers where it and each item start."""

    pos: Pos
    item_pos: list[Pos]


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1) if mark is not None else TOP


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Only parsing and composing are used; `_Builder` makes the values."""


_SCALARS = yaml.constructor.SafeConstructor.yaml_constructors
_BOOL, _NULL = "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null"


class _Builder:
    """Node graph → LDict/LList/scalars, recording problems instead of raising.

    With `text_scalars`, a scalar stays the text it was written as (an identity
    value `12:34:56` is not a number), except true/false/null, which a reader
    must be able to refuse.
    """

    def __init__(self, loader: _Loader, text_scalars: bool) -> None:
        self.loader = loader
        self.text_scalars = text_scalars
        self.problems: list[tuple[Pos, str]] = []
        self._seen: set[int] = set()

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if id(node) in self._seen:
            # The same node twice means an alias: refuse it (no YAML bombs).
            self.problems.append((_pos(node.start_mark), "YAML anchors/aliases are not allowed"))
            return None
        self._seen.add(id(node))
        if depth >= MAX_DEPTH:
            self.problems.append((_pos(node.start_mark), f"nesting deeper than {MAX_DEPTH} levels"))
            return None
        if isinstance(node, yaml.SequenceNode):
            seq = LList(self.build(child, depth + 1) for child in node.value)
            seq.pos = _pos(node.start_mark)
            seq.item_pos = [_pos(child.start_mark) for child in node.value]
            return seq
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, depth)
        self.problems.append((_pos(node.start_mark), "unsupported YAML node"))
        return None

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if self.text_scalars and node.tag not in (_BOOL, _NULL):
            return node.value
        make = _SCALARS.get(node.tag)
        if make is None:
            self.problems.append((_pos(node.start_mark), f"unsupported YAML tag {node.tag}"))
            return None
        try:
            return make(self.loader, node)
        except (yaml.YAMLError, ValueError) as e:
            self.problems.append((_pos(node.start_mark), f"bad {node.tag} value: {e}"))
            return None

    def _mapping(self, node: yaml.MappingNode, depth: int) -> LDict:
        result = LDict()
        result.pos = _pos(node.start_mark)
        result.key_pos = {}
        result.value_pos = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                self.problems.append((_pos(key_node.start_mark), "YAML merge keys are not allowed"))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append((_pos(key_node.start_mark), "a mapping key must be a scalar"))
                continue
            key = self.build(key_node)
            if key in result:
                first = result.key_pos[key]
                self.problems.append(
                    (_pos(key_node.start_mark),
                     f"duplicate key {key!r} (first at line {first.line})"))
                continue
            result[key] = self.build(value_node, depth + 1)
            result.key_pos[key] = _pos(key_node.start_mark)
            result.value_pos[key] = _pos(value_node.start_mark)
        return result


def _within(pos: Pos, text: str) -> Pos:
    """libyaml puts the end of a file without a final newline on a line after it."""
    last = text.count("\n") + 1
    if pos.line <= last:
        return pos
    return Pos(last, len(text) - (text.rfind("\n") + 1) + 1)


def load_document(path: Path, display: str | None = None, *, what: str = "",
                  text_scalars: bool = False) -> tuple[Any, list[Problem]]:
    """Read one YAML document: (data or None, problems). Never raises.

    `what` names the document in "cannot read" problems ("identity file").
    """
    display = str(path) if display is None else display
    cannot_read = f"cannot read {what}".rstrip()
    try:
        size = path.stat().st_size
        if size > MAX_DOCUMENT_BYTES:
            return None, [Problem(display, 1, 1,
                                  f"file is larger than {MAX_DOCUMENT_BYTES} bytes")]
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return None, [Problem(display, 1, 1, f"not UTF-8 text: {e.reason}")]
    except OSError as e:
        return None, [Problem(display, 1, 1, f"{cannot_read}: {e.strerror or e}")]
    try:
        loader = _Loader(text)
        builder = _Builder(loader, text_scalars)
        try:
            node = loader.get_single_node()
            data = builder.build(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        pos = _within(_pos(e.problem_mark or e.context_mark), text)
        reason = " ".join(str(part) for part in (e.context, e.problem) if part)
        return None, [Problem(display, pos.line, pos.col, f"invalid YAML: {reason}")]
    except yaml.YAMLError as e:
        return None, [Problem(display, 1, 1, f"invalid YAML: {e}")]
    return data, [Problem(display, p.line, p.col, message) for p, message in builder.problems]


# --- validation -------------------------------------------------------------------


def typename(value: Any) -> str:
    """How a YAML value is named in messages: "a mapping", "a string", "null", …"""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest choice, or ""."""
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class Checker:
    """Collects the problems of one document and checks its common shapes."""

    def __init__(self, display: str) -> None:
        self.display = display
        self.errors: list[Problem] = []

    def err(self, pos: Pos, message: str) -> None:
        self.errors.append(Problem(self.display, pos.line, pos.col, message))

    def where(self, pos: Pos) -> str:
        """`path:line` of a place, for messages that point back to it."""
        return f"{self.display}:{pos.line}"

    @staticmethod
    def vpos(m: LDict, key: str) -> Pos:
        """Where the value of `key` starts (the mapping's own place when it is absent)."""
        return m.value_pos.get(key, m.pos)

    def raise_errors(self) -> None:
        """DocumentError with every problem in document order, if there is any."""
        if self.errors:
            raise DocumentError(sorted(self.errors, key=lambda e: (e.line, e.col)))

    def keys(self, m: Any, pos: Pos, allowed: Sequence[str], required: Sequence[str],
             what: str, not_mapping: str | None = None) -> bool:
        """Whether `m` is a mapping (else the error `not_mapping`, or one naming `what`);
        unknown keys (with a hint) and missing ones are errors."""
        if not isinstance(m, LDict):
            self.err(pos, not_mapping or f"{what} must be a mapping, not {typename(m)}")
            return False
        for key in m:
            if key not in allowed:
                self.err(m.key_pos[key], f"unknown key {key!r} in {what}"
                                         f"{did_you_mean(key, allowed)}")
        for key in required:
            if key not in m:
                self.err(m.pos, f"{what} is missing required key {key!r}")
        return True

    def choice(self, value: Any, pos: Pos, label: str, choices: Sequence[str], *,
               sep: str = ": ") -> bool:
        """Whether `value` is one of `choices`; else an error naming them, with a hint:
        `<label><sep><value> is not one of …`."""
        if value in choices:
            return True
        self.err(pos, f"{label}{sep}{value!r} is not one of {', '.join(choices)}"
                      f"{did_you_mean(value, choices) if isinstance(value, str) else ''}")
        return False

    def member(self, m: LDict, key: str, kind: type[T], shape: str) -> T | None:
        """The `kind` (LList, LDict) under `key`: None when absent, or when of another
        type, with an error: `'<key>' must be <shape>, not <type>`."""
        if key not in m:
            return None
        value = m[key]
        if not isinstance(value, kind):
            self.err(self.vpos(m, key), f"{key!r} must be {shape}, not {typename(value)}")
            return None
        return value

    def string(self, m: LDict, key: str, *, choices: Sequence[str] | None = None,
               allow_number: bool = False) -> str | None:
        """The string under `key` (None when absent or wrong, with an error for wrong)."""
        if key not in m:
            return None
        value = m[key]
        if allow_number and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.err(self.vpos(m, key), f"{key!r} must be a string, not {typename(value)}")
            return None
        if choices is not None and not self.choice(value, self.vpos(m, key), repr(key), choices):
            return None
        return value

    def strings(self, m: LDict, key: str, *, choices: Sequence[str] | None = None,
                single: bool = True,
                check: Callable[[str, Pos], Any] | None = None) -> list[tuple[str, Any]]:
        """A list of strings (or one string when `single`): (value, what `check` made of it)."""
        if key not in m:
            return []
        value = m[key]
        if single and isinstance(value, str):
            items, poses = [value], [self.vpos(m, key)]
        elif isinstance(value, LList):
            items, poses = list(value), value.item_pos
        else:
            kind = "a string or a list of strings" if single else "a list of strings"
            self.err(self.vpos(m, key), f"{key!r} must be {kind}, not {typename(value)}")
            return []
        out: list[tuple[str, Any]] = []
        for item, pos in zip(items, poses, strict=True):
            if not isinstance(item, str):
                self.err(pos, f"{key!r} items must be strings, not {typename(item)}")
                continue
            if choices is not None and not self.choice(item, pos, repr(key), choices):
                continue
            checked: Any = item
            if check is not None:
                checked = check(item, pos)
                if checked is None:
                    continue
            out.append((item, checked))
        return out
