"""One walk over a decoded tree builds every leaf, with its location (terms.py).

A string that holds JSON, or base64 of JSON, keeps its own leaf and the decoded
values follow below it (`$.data` and `$.data.user.email`), `via` naming the layers.
"""


from __future__ import annotations

import base64
import binascii
import re
from functools import partial
from typing import Any

from ..model import Leaf
from ..terms import key_suffix
from .jsonio import loads_or_none
from .limits import Context, LeafLimit

__all__ = ["Walker", "build_leaves", "nested_json", "prune", "key_suffix"]

# Strings worth a nested-JSON attempt, checked with one C call per string: "{" or
# "[" first, or the base64 of "{" / "[" ("e" / "W" and then one of 16 characters)
# or of leading whitespace or a BOM ("I", "C", "D", "7"); base64 at least 6 long.
_NEST_HINT = re.compile(r"[{\[]|[eW][wxyz0-9+/_-][\w+/-]{4}|[ICD7][\w+/-]{5}").match
_NEST_FIRST = frozenset("{[eWICD7")
_B64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")
_CONTAINERS = frozenset((dict, list))
_SCALARS = frozenset((int, float, bool, type(None)))

_new_leaf = partial(tuple.__new__, Leaf)

_SUFFIXES: dict[Any, str] = {}
"""Location suffixes of string keys, shared by every walk: payloads repeat their keys."""
_MAX_SUFFIXES = 16384


def build_leaves(rows: list[tuple]) -> list[Leaf]:
    """Leaf objects from (location, path, value, source, via) rows, at C speed."""
    return list(map(_new_leaf, rows))


def nested_json(s: str) -> tuple[Any, tuple[str, ...]] | None:
    """(tree, via layers) when `s` holds a JSON object/array, plain or base64; else None."""
    first = s[0]
    if first == "{" or first == "[":
        if s[-1] not in "}]" and s.rstrip()[-1:] not in ("}", "]"):
            return None
        ok, tree = loads_or_none(s)
        if ok and tree and type(tree) in (dict, list):
            return tree, ("json",)
        return None
    if _NEST_HINT(s) is None or _B64.fullmatch(s) is None:
        return None
    try:
        if "-" in s or "_" in s:
            raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
        else:
            raw = base64.b64decode(s + "=" * (-len(s) % 4))
    except (binascii.Error, ValueError):
        return None
    raw = raw.lstrip(b" \t\r\n")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if raw[:1] not in (b"{", b"["):
        return None
    ok, tree = loads_or_none(raw)
    if ok and tree and type(tree) in (dict, list):
        return tree, ("base64", "json")
    return None


class Walker:
    """Collects leaf rows; raises LeafLimit when max_leaves is reached.

    finish() turns the rows into Leaf objects in `ctx.leaves`.
    """

    __slots__ = (
        "ctx",
        "out",
        "max_depth",
        "max_text",
        "limit_hit",
        "nested_leaves",
        "tree_scalars",
        "full",
        "_suffix",
    )

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.out: list[tuple] = []
        self.max_depth = ctx.max_depth
        self.max_text = ctx.limits.max_text_leaf
        self.limit_hit = False
        """True once a depth or leaf limit cut something (the tree needs pruning)."""
        self.nested_leaves = 0
        self.tree_scalars = 0
        self.full = False
        """True once max_leaves stopped the walk."""
        self._suffix = _SUFFIXES

    # --- entry points

    def finish(self) -> None:
        """Build the Leaf objects (once, at the end) into ctx.leaves."""
        self.ctx.leaves.extend(build_leaves(self.out))
        self.out = []

    def walk_tree(self, tree: Any, nested: int) -> int:
        """Leaves of the body tree, rooted at `$`; returns how many tree scalars became leaves.

        That count (values decoded from inside strings excluded) tells prune() where the
        walk stopped.
        """
        before = len(self.out)
        self.nested_leaves = 0
        try:
            self._visit(tree, "$", (), "body", (), nested)
        finally:
            self.tree_scalars = len(self.out) - before - self.nested_leaves
        return self.tree_scalars

    def value(self, value: Any, location: str, name: str, source: str, nested: int) -> None:
        """One named value of a non-body source (query, header, cookie, url)."""
        self._visit(value, location, (name,), source, (), nested)

    # --- the walk

    def _visit(
        self, node: Any, loc: str, path: tuple, source: str, via: tuple, nested: int
    ) -> None:
        if type(node) is dict or type(node) is list:
            self._container(node, loc, path, source, via, nested)
        else:
            self._scalar(node, loc, path, source, via, nested)

    def _container(
        self, node: Any, loc: str, path: tuple, source: str, via: tuple, nested: int
    ) -> None:
        # The hot loop of decode: scalars are handled inline, containers recurse.
        if not node:
            return
        if len(path) >= self.max_depth:
            self.ctx.depth_hit()
            self.limit_hit = True
            return
        out = self.out
        append = out.append
        room = self.ctx.limits.max_leaves
        max_text = self.max_text
        container = self._container
        if type(node) is dict:
            suffixes = self._suffix
            for k, v in node.items():
                suffix = suffixes.get(k)
                if suffix is None:
                    suffix = key_suffix(str(k))
                    if k.__class__ is str:  # only these: True == 1, but not as a key's text
                        if len(suffixes) >= _MAX_SUFFIXES:
                            suffixes.clear()
                        suffixes[k] = suffix
                t = type(v)
                if t in _CONTAINERS:
                    container(v, loc + suffix, path + (k,), source, via, nested)
                    continue
                if len(out) >= room:
                    self._full()
                if t is str:
                    if len(v) > max_text or (
                        nested and v[:1] in _NEST_FIRST and _NEST_HINT(v) is not None
                    ):
                        self._scalar(v, loc + suffix, path + (k,), source, via, nested)
                        continue
                elif t not in _SCALARS:
                    v = str(v)  # decoders only build JSON-safe trees; stay safe anyway
                append((loc + suffix, path + (k,), v, source, via))
            return
        for i, v in enumerate(node):
            t = type(v)
            if t in _CONTAINERS:
                container(v, f"{loc}[{i}]", path + (i,), source, via, nested)
                continue
            if len(out) >= room:
                self._full()
            if t is str:
                if len(v) > max_text or (
                    nested and v[:1] in _NEST_FIRST and _NEST_HINT(v) is not None
                ):
                    self._scalar(v, f"{loc}[{i}]", path + (i,), source, via, nested)
                    continue
            elif t not in _SCALARS:
                v = str(v)
            append((f"{loc}[{i}]", path + (i,), v, source, via))

    def _full(self) -> None:
        self.limit_hit = True
        self.full = True
        self.ctx.truncate(f"more than {self.ctx.limits.max_leaves} leaves")
        raise LeafLimit

    def _scalar(
        self, node: Any, loc: str, path: tuple, source: str, via: tuple, nested: int
    ) -> None:
        if len(self.out) >= self.ctx.limits.max_leaves:
            self._full()
        if type(node) is str:
            value = node
            if len(node) > self.max_text:
                value = node[: self.max_text]
                self.ctx.truncate(
                    f"string longer than {self.max_text} characters cut (first at {loc})"
                )
            self.out.append((loc, path, value, source, via))
            if nested > 0 and _NEST_HINT(node) is not None:
                self._nested(node, loc, path, source, via, nested)
            return
        if type(node) not in (int, float, bool) and node is not None:
            node = str(node)
        self.out.append((loc, path, node, source, via))

    def _nested(self, s: str, loc: str, path: tuple, source: str, via: tuple, nested: int) -> None:
        found = nested_json(s)
        if found is None:
            return
        tree, layers = found
        before = len(self.out)
        try:
            self._visit(tree, loc, path, source, via + layers, nested - 1)
        finally:
            self.nested_leaves += len(self.out) - before


def prune(tree: Any, max_depth: int, max_scalars: int | None) -> Any:
    """A copy of `tree` holding what the walker turned into leaves.

    Non-empty containers at `max_depth` become None; copying stops after
    `max_scalars` scalars (None: no count limit), in the walker's order.
    Recursion is bounded by max_depth.
    """
    count = 0
    if max_scalars is None:
        max_scalars = 1 << 62

    def copy(node: Any, depth: int) -> Any:
        nonlocal count
        t = type(node)
        if t is dict:
            if not node:
                return {}
            if depth >= max_depth:
                return None
            out: dict = {}
            for k, v in node.items():
                if count >= max_scalars:
                    break
                out[k] = copy(v, depth + 1)
            return out
        if t is list:
            if not node:
                return []
            if depth >= max_depth:
                return None
            items: list = []
            for v in node:
                if count >= max_scalars:
                    break
                items.append(copy(v, depth + 1))
            return items
        count += 1
        return node

    return copy(tree, 0)
