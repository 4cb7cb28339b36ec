"""Helpers for the tests_rules_* files: observations and payloads built by hand."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from phonehome.model import Leaf, Observation, Payload


def walk(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every scalar of a JSON document with its path tuple, in document order."""
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in walk(value, path + (key,))]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in walk(value, path + (i,))]
    return [(path, node)]


def location(path: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def payload_of(obs: Observation) -> Payload:
    """JSON body leaves plus query, header and cookie leaves, like the decoder makes."""
    tree = json.loads(obs.body) if obs.body else None
    leaves = [Leaf(location(p), p, v, "body") for p, v in walk(tree)] if tree is not None else []
    for source, pairs in (("query", obs.query), ("header", obs.headers),
                          ("cookie", obs.cookies)):
        leaves.extend(Leaf(f"{source}:{k}", (k,), v, source) for k, v in pairs)
    return Payload("json" if tree is not None else "empty", tree, leaves, len(obs.body),
                   len(obs.body), "")


def make_obs(url: str, body: Any = None, *, method: str = "POST",
             headers: dict[str, str] | None = None, ident: str = "f1") -> Observation:
    """A flow-less Observation (the engine builds its own flow for flowfilter)."""
    parts = urlsplit(url)
    raw = json.dumps(body).encode() if body is not None else b""
    hdrs = list((headers or {}).items())
    if body is not None:
        hdrs.append(("content-type", "application/json"))
    return Observation(
        id=ident, timestamp=1.0, method=method, url=url, scheme=parts.scheme,
        host=parts.hostname or "", port=parts.port or 443,
        path=(parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
        headers=hdrs, query=parse_qsl(parts.query), body=raw,
        content_type="application/json" if body is not None else "",
    )


def ca_batch(*events: dict[str, Any]) -> dict[str, Any]:
    """A Call Analyzer batch: one metrics[] item per event dict."""
    return {"metrics": [{"type": ["diagnostic-event"], "eventPayload": {"event": e}}
                        for e in events]}
