"""What a parsed mitmproxy filter reads, so its verdict can be remembered.

Most rule filters only look at the request line: `~m POST & ~u "/clientmetrics"`,
`~d "^identity"`. Their verdict is a function of the method, the URL and the
host, so the engine can run the real filter once per distinct request line and
remember the answer. Filters with any other part (`~b`, `~hq`, `~t`, `~s`, …)
read more of the flow and always run.

The inputs follow mitmproxy's own filter classes (11.x and 12.x):
`~m` searches `request.data.method`, `~u` searches `request.pretty_url`,
`~d` searches `request.host` then `request.pretty_host`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mitmproxy import flowfilter, http

__all__ = ["INPUTS", "filter_inputs", "request_reader"]

INPUTS = ("method", "url", "host", "pretty_host")
"""Request attributes a remembered verdict may depend on, in key order."""

_READERS: dict[str, Callable[[Any], Any]] = {
    "method": lambda request: request.data.method,
    "url": lambda request: request.pretty_url,
    "host": lambda request: request.host,
    "pretty_host": lambda request: request.pretty_host,
}

_LEAVES: dict[type, tuple[str, ...]] = {
    flowfilter.FMethod: ("method",),
    flowfilter.FUrl: ("url",),
    flowfilter.FDomain: ("host", "pretty_host"),
    flowfilter.FAll: (),
}


def filter_inputs(node: Any) -> frozenset[str] | None:
    """The request attributes `node` reads, or None when it reads anything else."""
    kind = type(node)
    if kind is flowfilter.FAnd or kind is flowfilter.FOr:
        found: set[str] = set()
        for item in node.lst:
            inputs = filter_inputs(item)
            if inputs is None:
                return None
            found |= inputs
        return frozenset(found)
    if kind is flowfilter.FNot:
        return filter_inputs(node.itm)
    leaf = _LEAVES.get(kind)
    return None if leaf is None else frozenset(leaf)


def request_reader(inputs: frozenset[str]) -> Callable[[Any], tuple[Any, ...] | None]:
    """flow → the values of `inputs` (in INPUTS order), or None for a non-HTTP flow."""
    readers = tuple(_READERS[name] for name in INPUTS if name in inputs)

    def read(flow: Any) -> tuple[Any, ...] | None:
        if not isinstance(flow, http.HTTPFlow):
            return None
        request = flow.request
        return tuple(reader(request) for reader in readers)

    return read
