"""Test helper for the detect tests: build a Payload straight from a dict.

Locations follow decode's syntax (`$.a[0].b`, `$['x-y']`, `query:uid`,
`header:Name`, `cookie:sid`, `url`), so findings read as they would in a report.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from phonehome.model import Leaf, Payload

__all__ = ["make_payload", "tree_leaves", "suffix", "nest"]


def suffix(key: str | int) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    if key.isascii() and (key.isidentifier() or key.isdigit()):
        return "." + key
    return "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


def tree_leaves(tree: Any, location: str = "$", path: tuple = (), source: str = "body"
                ) -> list[Leaf]:
    out: list[Leaf] = []
    stack: list[tuple[Any, str, tuple]] = [(tree, location, path)]
    while stack:
        node, loc, p = stack.pop()
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            out.append(Leaf(loc, p, node, source))
            continue
        for key, value in reversed(items):
            stack.append((value, loc + suffix(key), p + (key,)))
    return out


def make_payload(
    tree: Any = None,
    *,
    query: Iterable[tuple[str, str]] = (),
    headers: Iterable[tuple[str, str]] = (),
    cookies: Iterable[tuple[str, str]] = (),
    url: str | None = None,
) -> Payload:
    leaves = tree_leaves(tree) if tree is not None else []
    for name, value in query:
        leaves.append(Leaf(f"query:{name}", (name,), value, "query"))
    for name, value in headers:
        leaves.append(Leaf(f"header:{name}", (name,), value, "header"))
    for name, value in cookies:
        leaves.append(Leaf(f"cookie:{name}", (name,), value, "cookie"))
    if url is not None:
        leaves.append(Leaf("url", ("url",), url, "url"))
    body = json.dumps(tree).encode() if tree is not None else b""
    return Payload(
        kind="json" if tree is not None else "empty",
        tree=tree,
        leaves=leaves,
        size=len(body),
        decoded_size=len(body),
        sha256=hashlib.sha256(body).hexdigest(),
    )


def nest(path: tuple, value: Any) -> Any:
    """{"a": [{"b": value}]} from ("a", 0, "b") and value."""
    node = value
    for part in reversed(path):
        node = [node] if isinstance(part, int) else {part: node}
    return node
