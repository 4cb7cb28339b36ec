"""JSONPath: parsed once with jsonpath-ng, compiled into matchers over leaf paths.

jsonpath-ng's `find()` is the reference semantics; the common steps compile into one
`Trie` walked once per leaf, and anything else falls back to `find()`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonpath_ng import jsonpath as jp
from jsonpath_ng.exceptions import JsonPathLexerError, JsonPathParserError
from jsonpath_ng.ext import parser as _ext_parser

from ..model import PathPart

__all__ = [
    "ParsedPath",
    "parse_path",
    "Step",
    "Trie",
    "TrieNode",
    "walk_leaves",
    "find_paths",
    "has_scalar",
    "subtree",
    "datum_path",
]

KEY, IDX, ANY, DESC = "key", "idx", "any", "desc"


@dataclass(frozen=True, slots=True)
class Step:
    kind: str
    values: frozenset[PathPart] = frozenset()


class NotCompilable(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ParsedPath:
    text: str
    expr: Any
    """The jsonpath-ng expression (reference semantics, fallback)."""
    steps: tuple[Step, ...] | None
    """Compiled steps, or None when the path uses a construct we don't compile."""


# Spelled "Extented" before jsonpath-ng 1.7.
_PARSER_CLASS: Any = (getattr(_ext_parser, "ExtendedJsonPathParser", None)
                      or _ext_parser.ExtentedJsonPathParser)
_PARSER: list[Any] = []
_PARSER_LOCK = threading.Lock()


def _ext_parse(text: str) -> Any:
    """jsonpath-ng's `ext.parse`, on one parser: a new one per path costs more than the
    parse itself, which made a large pack slow to load."""
    with _PARSER_LOCK:
        if not _PARSER:
            _PARSER.append(_PARSER_CLASS())
        return _PARSER[0].parse(text)


def parse_path(text: str) -> ParsedPath:
    """Parse with jsonpath-ng (ext grammar: filters allowed). Raises ValueError."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            expr = _ext_parse(text)
        except (JsonPathLexerError, JsonPathParserError, Exception) as e:  # noqa: B014
            raise ValueError(f"invalid JSONPath {text!r}: {e}") from None
    for warning in caught:
        if issubclass(warning.category, DeprecationWarning):
            raise ValueError(f"deprecated JSONPath syntax in {text!r}: {warning.message}")
    try:
        steps: tuple[Step, ...] | None = tuple(_compile(expr, top=True))
    except NotCompilable:
        steps = None
    return ParsedPath(text, expr, steps)


def _compile(node: Any, *, top: bool = False) -> list[Step]:
    kind = type(node)
    if kind is jp.Root:
        if not top:
            raise NotCompilable
        return []
    if kind is jp.This:
        return []
    if kind is jp.Child:
        left = _compile(node.left, top=top)
        return left + _compile(node.right)
    if kind is jp.Descendants:
        return _compile(node.left, top=top) + [Step(DESC)] + _compile(node.right)
    if kind is jp.Fields:
        if getattr(node, "_deprecated_wildcard_use", "*" in node.fields):
            raise NotCompilable
        return [Step(KEY, frozenset(node.fields))]
    if kind is getattr(jp, "Wildcard", None):
        return [Step(ANY)]
    if kind is jp.Index:
        indices = getattr(node, "indices", None)
        if indices is None:
            indices = (node.index,)
        if any(i < 0 for i in indices):
            raise NotCompilable
        return [Step(IDX, frozenset(indices))]
    raise NotCompilable


# --- the trie of compiled paths ----------------------------------------------


@dataclass(eq=False, slots=True)
class TrieNode:
    lit: dict[PathPart, TrieNode] = field(default_factory=dict)
    any: TrieNode | None = None
    desc: TrieNode | None = None
    loop: bool = False
    """A node after `..`: it may consume any number of parts."""
    accept: list[Any] = field(default_factory=list)
    closure: tuple[TrieNode, ...] = ()


class Trie:
    """Many compiled paths, each with a target, matched in one walk.

    Users write JSONPath, and jsonpath-ng's `find()` is the reference semantics.
    Per flow, though, running `find()` per path is too slow (hundreds of µs for
    `[*]` or `..`), and the decoder already walked the tree once: every leaf
    knows its path as a tuple such as `("metrics", 0, "eventPayload", "name")`.

    So each path made of the common steps is compiled into `Step`s:
      `.name` / `["a","b"]`  → Key(names)      `[n, m]` (n ≥ 0) → Idx(indices)
      `.*` / `[*]`           → Any()          `..`             → Desc (skip 0+ parts)
    and all the compiled paths of a rule go into one `Trie`, walked once per leaf
    (sharing work between consecutive leaves with a common prefix). Anything else
    (filters `[?()]`, slices, negative indices, `parent`, unions…) is not compiled
    and falls back to `find()` on the decoded tree.

    A path "finds" a leaf when some prefix of the leaf's path (or the whole path)
    matches: `$.identifiers` finds every leaf under `identifiers`. A path that
    finds nothing is absent; an empty object or array has no leaves and is absent.
    """

    def __init__(self) -> None:
        self.root = TrieNode()
        self._frozen = False

    def add(self, steps: Sequence[Step], target: Any) -> None:
        assert not self._frozen
        for node in self._insert(self.root, tuple(steps)):
            node.accept.append(target)

    def _insert(self, node: TrieNode, steps: tuple[Step, ...]) -> Iterator[TrieNode]:
        if not steps:
            yield node
            return
        step, rest = steps[0], steps[1:]
        if step.kind == DESC:
            if node.desc is None:
                node.desc = TrieNode(loop=True)
            yield from self._insert(node.desc, rest)
        elif step.kind == ANY:
            if node.any is None:
                node.any = TrieNode()
            yield from self._insert(node.any, rest)
        else:
            for value in step.values:
                child = node.lit.get(value)
                if child is None:
                    child = node.lit[value] = TrieNode()
                yield from self._insert(child, rest)

    def freeze(self) -> Trie:
        """Precompute epsilon closures (a node plus the `..` nodes hanging off it)."""
        stack = [self.root]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            closure = [node]
            cur = node
            while cur.desc is not None:
                closure.append(cur.desc)
                cur = cur.desc
            node.closure = tuple(closure)
            stack.extend(node.lit.values())
            stack.extend(n for n in (node.any, node.desc) if n is not None)
        self._frozen = True
        return self

    @property
    def empty(self) -> bool:
        r = self.root
        return not (r.lit or r.any or r.desc or r.accept)


def _step(states: tuple[TrieNode, ...], part: PathPart) -> tuple[TrieNode, ...]:
    out: list[TrieNode] = []
    for node in states:
        if node.loop:
            out.append(node)
        child = node.lit.get(part)
        if child is not None and not isinstance(part, bool):
            out.extend(child.closure)
        if node.any is not None:
            out.extend(node.any.closure)
    if len(out) > 1:
        out = list(dict.fromkeys(out))
    return tuple(out)


def walk_leaves(
    trie: Trie, paths: Iterable[tuple[PathPart, ...]]
) -> Iterator[tuple[int, list[tuple[Any, int]]]]:
    """For each path (by position), the (target, depth) pairs that match a prefix.

    `depth == len(path)` means the compiled path matched the leaf exactly.
    Consecutive paths that share a prefix share the work: the states and the
    hits gathered so far are kept per depth and reused. The hit lists are
    shared between calls; don't modify them.
    """
    root_states = trie.root.closure
    root_hits = [(target, 0) for node in root_states for target in node.accept]
    states_stack: list[tuple[TrieNode, ...]] = [root_states]
    hits_stack: list[list[tuple[Any, int]]] = [root_hits]
    prev: tuple[PathPart, ...] = ()
    for position, path in enumerate(paths):
        common = 0
        limit = min(len(prev), len(path), len(states_stack) - 1)
        while common < limit and prev[common] == path[common] and type(
            prev[common]
        ) is type(path[common]):
            common += 1
        del states_stack[common + 1 :]
        del hits_stack[common + 1 :]
        for part in path[common:]:
            states = states_stack[-1]
            nxt = _step(states, part) if states else ()
            states_stack.append(nxt)
            hits = hits_stack[-1]
            depth = len(states_stack) - 1
            accepted = [(target, depth) for node in nxt for target in node.accept]
            hits_stack.append(hits + accepted if accepted else hits)
        prev = path
        yield position, hits_stack[-1]


# --- the fallback: jsonpath-ng find() on the decoded tree ---------------------


def datum_path(datum: Any) -> tuple[PathPart, ...]:
    """The tuple path of a jsonpath-ng DatumInContext (None parts are dropped)."""
    parts: list[PathPart] = []
    while datum is not None:
        path = getattr(datum, "path", None)
        if isinstance(path, jp.Fields) and len(path.fields) == 1:
            parts.append(path.fields[0])
        elif isinstance(path, jp.Index) and len(getattr(path, "indices", ())) == 1:
            parts.append(path.indices[0])
        datum = getattr(datum, "context", None)
    parts.reverse()
    return tuple(parts)


def find_paths(parsed: ParsedPath, data: Any) -> list[tuple[tuple[PathPart, ...], Any]]:
    """(relative path, value) for every node jsonpath-ng finds in `data`."""
    if data is None:
        return []
    try:
        found = parsed.expr.find(data)
    except Exception:  # a hostile document must not break classification
        return []
    return [(datum_path(d), d.value) for d in found]


def has_scalar(value: Any, budget: int = 10_000) -> bool:
    """Whether a found node holds at least one scalar (bounded walk)."""
    stack = [value]
    while stack and budget > 0:
        budget -= 1
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        else:
            return True
    return False


def subtree(tree: Any, prefix: tuple[PathPart, ...]) -> Any:
    node = tree
    for part in prefix:
        if isinstance(part, str) and isinstance(node, dict):
            node = node.get(part)
        elif isinstance(part, int) and isinstance(node, list) and 0 <= part < len(node):
            node = node[part]
        else:
            return None
    return node
