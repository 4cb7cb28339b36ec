"""What a parsed mitmproxy filter reads, so its verdict can be remembered; and the
compiling of a rule's filter (request parts only, regexes run by RE2).

A filter that reads only the request line gets one verdict per request line; others
get a partial verdict in three-valued logic and run in full when it leaves them open.
"""

# Most rule filters only look at the request line: `~m POST & ~u "/clientmetrics"`,
# `~d "^identity"`. A filter with other parts (`~b`, `~hq`, `~t`, `~s`, ...) is
# settled by its request-line parts where Kleene logic allows (`~u "/x" & ~hq "y"`
# is false whenever `~u "/x"` is). The inputs follow mitmproxy's own filter classes
# (11.x and 12.x): `~m` searches `request.data.method`, `~u` `request.pretty_url`,
# `~d` `request.host` then `request.pretty_host`.


from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from mitmproxy import flowfilter

from . import patterns

__all__ = ["Partial", "compile_filter", "filter_inputs", "partial_verdict"]

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


# --- compiling a rule's filter ------------------------------------------------------


def compile_filter(text: str) -> Any:
    """Parse a rule's filter, refuse response parts, run its regexes with RE2.
    Raises ValueError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = flowfilter.parse(text)
        except ValueError:
            raise ValueError(f"invalid mitmproxy filter expression {text!r}") from None
    if parsed is None:  # older mitmproxy returned None on bad input
        raise ValueError(f"invalid mitmproxy filter expression {text!r}")
    _refuse_response_parts(parsed, text)
    _linearize(parsed)
    return parsed


class _LinearRegex:
    """Stands in for a flowfilter node's `re`: same pattern, run by RE2."""

    def __init__(self, original: re.Pattern[Any]) -> None:
        self.pattern = original.pattern
        self.flags = original.flags
        inline = "".join(letter for flag, letter in
                         ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
                         if original.flags & flag)
        prefix = f"(?{inline})" if inline else ""
        pattern = original.pattern
        if isinstance(pattern, bytes):
            self._re = patterns.compile_regex(prefix.encode() + pattern)
        else:
            self._re = patterns.compile_regex(prefix + pattern)

    def search(self, text: Any) -> Any:
        return self._re.search(text)


# Filter parts that read the response (or its absence). A live audit classifies
# the request before any response exists, so these would match differently live
# and offline; the request-only form is named where mitmproxy has one.
_RESPONSE_PARTS: dict[type, str] = {
    flowfilter.FCode: "~c", flowfilter.FResp: "~s", flowfilter.FReq: "~q",
    flowfilter.FErr: "~e", flowfilter.FAsset: "~a", flowfilter.FReplayServer: "~replays",
    flowfilter.FHeadResponse: "~hs", flowfilter.FBodResponse: "~bs",
    flowfilter.FContentTypeResponse: "~ts",
}
_EITHER_SIDE_PARTS: dict[type, tuple[str, str]] = {
    flowfilter.FHead: ("~h", "~hq"), flowfilter.FBod: ("~b", "~bq"),
    flowfilter.FContentType: ("~t", "~tq"),
}


def _filter_parts(node: Any) -> Iterator[Any]:
    """Every node of a parsed mitmproxy filter, the root first."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        stack.extend(getattr(item, "lst", ()))
        if getattr(item, "itm", None) is not None:
            stack.append(item.itm)


def _refuse_response_parts(node: Any, text: str) -> None:
    """ValueError when the filter reads the response: rules see requests only."""
    for item in _filter_parts(node):
        kind = type(item)
        if kind in _RESPONSE_PARTS:
            raise ValueError(
                f"filter {text!r} uses {_RESPONSE_PARTS[kind]}, which reads the response: rules "
                "classify the request (live, before any response exists), so match on the "
                "request alone")
        if kind in _EITHER_SIDE_PARTS:
            either, request_only = _EITHER_SIDE_PARTS[kind]
            raise ValueError(
                f"filter {text!r} uses {either}, which also reads the response: rules classify "
                f"the request, so use {request_only}")


def _linearize(node: Any) -> None:
    """Swap every regex inside a parsed filter for RE2, so no filter can backtrack."""
    for item in _filter_parts(node):
        original = getattr(item, "re", None)
        if isinstance(original, re.Pattern):
            item.re = _LinearRegex(original)
