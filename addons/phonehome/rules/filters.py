"""What a parsed mitmproxy filter reads, so its verdict can be remembered.

Most rule filters only look at the request line: `~m POST & ~u "/clientmetrics"`,
`~d "^identity"`. Their verdict is a function of the method, the URL and the
host, so the engine can run the real filter once per distinct request line and
remember the answer. A filter with other parts (`~b`, `~hq`, `~t`, `~s`, …)
gets a partial verdict from its request-line parts in three-valued logic
(`~u "/x" & ~hq "y"` is false whenever `~u "/x"` is), and runs in full only
when that leaves it open.

The inputs follow mitmproxy's own filter classes (11.x and 12.x):
`~m` searches `request.data.method`, `~u` searches `request.pretty_url`,
`~d` searches `request.host` then `request.pretty_host`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mitmproxy import flowfilter, http

__all__ = ["INPUTS", "Partial", "filter_inputs", "partial_verdict", "request_reader"]

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


Partial = Callable[[Any], "bool | None"]
"""flow → the filter's verdict, or None when the request line does not settle it."""


def partial_verdict(node: Any) -> tuple[frozenset[str], Partial | None]:
    """(request attributes read, the partial verdict), or (∅, None): never settled.

    A part that reads only the request line runs as mitmproxy runs it; the
    other parts are unknown; `&`, `|` and `!` combine in Kleene logic, which is
    exact wherever it gives an answer.
    """
    inputs = filter_inputs(node)
    if inputs is not None:
        return inputs, lambda flow: bool(node(flow))
    kind = type(node)
    if kind is flowfilter.FAnd or kind is flowfilter.FOr:
        parts = [partial_verdict(item) for item in node.lst]
        known = [verdict for _inputs, verdict in parts if verdict is not None]
        if not known:
            return frozenset(), None
        used = frozenset().union(*(inputs for inputs, _verdict in parts))
        # `&` is settled by one False, `|` by one True; otherwise open if any part is
        settles = kind is flowfilter.FOr
        open_parts = len(known) < len(parts)

        def combined(flow: Any) -> bool | None:
            unknown = open_parts
            for verdict in known:
                value = verdict(flow)
                if value is None:
                    unknown = True
                elif value is settles:
                    return settles
            return None if unknown else not settles

        return used, combined
    if kind is flowfilter.FNot:
        used, inner = partial_verdict(node.itm)
        if inner is None:
            return frozenset(), None
        inner_verdict = inner

        def negated(flow: Any) -> bool | None:
            value = inner_verdict(flow)
            return None if value is None else not value

        return used, negated
    return frozenset(), None


def request_reader(inputs: frozenset[str]) -> Callable[[Any], tuple[Any, ...] | None]:
    """flow → the values of `inputs` (in INPUTS order), or None for a non-HTTP flow."""
    readers = tuple(_READERS[name] for name in INPUTS if name in inputs)

    def read(flow: Any) -> tuple[Any, ...] | None:
        if not isinstance(flow, http.HTTPFlow):
            return None
        request = flow.request
        return tuple(reader(request) for reader in readers)

    return read
