"""YAML with positions: every mapping and sequence remembers where its items are.

A rule pack is read into `Located` containers (`LDict`, `LList`) that carry the
line and column of each key and value, so the validator can say
`rules/webex.yaml:42:7: unknown key 'filtr'`. Duplicate keys, anchors/aliases and
excessive nesting are reported as errors instead of being silently accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RuleError", "Pos", "LDict", "LList", "load_yaml", "MAX_PACK_BYTES", "MAX_DEPTH"]

MAX_PACK_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64

_BaseLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class RuleError:
    """One problem in a rule pack, with its place (1-based line and column)."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    col: int


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1) if mark is not None else Pos(1, 1)


class LDict(dict):
    """A mapping that remembers where it, its keys and its values start."""

    pos: Pos
    key_pos: dict[Any, Pos]
    value_pos: dict[Any, Pos]


class LList(list):
    """A sequence that remembers where it and each item start."""

    pos: Pos
    item_pos: list[Pos]


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Only parsing and composing are used; `_Builder` makes the values."""


_SCALARS = yaml.constructor.SafeConstructor.yaml_constructors


class _Builder:
    """Node graph → LDict/LList/scalars, recording problems instead of raising."""

    def __init__(self, loader: _Loader) -> None:
        self.loader = loader
        self.problems: list[tuple[Pos, str]] = []
        self._seen: set[int] = set()

    def build(self, node: yaml.Node, depth: int = 0) -> Any:
        if isinstance(node, yaml.ScalarNode):
            make = _SCALARS.get(node.tag)
            if make is None:
                self.problems.append((_pos(node.start_mark), f"unsupported YAML tag {node.tag}"))
                return None
            try:
                return make(self.loader, node)
            except (yaml.YAMLError, ValueError) as e:
                self.problems.append((_pos(node.start_mark), f"bad {node.tag} value: {e}"))
                return None
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


def load_yaml(path: Path, display: str) -> tuple[Any, list[RuleError]]:
    """Read one YAML document; return (data or None, errors)."""
    try:
        size = path.stat().st_size
        if size > MAX_PACK_BYTES:
            return None, [RuleError(display, 1, 1, f"file is larger than {MAX_PACK_BYTES} bytes")]
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return None, [RuleError(display, 1, 1, f"not UTF-8 text: {e.reason}")]
    except OSError as e:
        return None, [RuleError(display, 1, 1, f"cannot read: {e.strerror or e}")]
    try:
        loader = _Loader(text)
        builder = _Builder(loader)
        try:
            node = loader.get_single_node()
            data = builder.build(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        pos = _pos(mark)
        reason = " ".join(str(part) for part in (e.context, e.problem) if part)
        return None, [RuleError(display, pos.line, pos.col, f"invalid YAML: {reason}")]
    except yaml.YAMLError as e:
        return None, [RuleError(display, 1, 1, f"invalid YAML: {e}")]
    errors = [RuleError(display, p.line, p.col, msg) for p, msg in builder.problems]
    return data, errors
