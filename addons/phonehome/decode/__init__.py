"""DECODE: turn one captured request into a Payload — body tree plus leaves.

    payload = decode(observation)              # never raises
    payload = decode(observation, DecodeLimits(max_leaves=1000))
"""

from __future__ import annotations

import hashlib

from ..model import Observation, Payload
from ..urls import url_query
from .body import decode_body
from .encodings import decompress
from .forms import parse_cookie_header, parse_query
from .limits import Context, DecodeLimits, LeafLimit
from .walk import Walker, prune

__all__ = ["decode", "DecodeLimits"]

_DEFAULT_LIMITS = DecodeLimits()


def decode(obs: Observation, limits: DecodeLimits = _DEFAULT_LIMITS) -> Payload:
    """Decode `obs` within `limits`. Never raises: problems land in truncated/notes.

    Steps: leaves of the URL, query, headers and cookies; Content-Encoding
    undone with a hard size cap (encodings.py); the charset and the body's format
    picked from Content-Type, BOM and sniffing (body.py): JSON, JSON lines, form, multipart,
    protobuf / gRPC, text, binary; one walk of the tree builds the body leaves,
    decoding JSON and base64-JSON found inside strings (walk.py, which also
    documents the location syntax). Limits that were hit go to
    `Payload.truncated`, recoverable problems to `Payload.notes`, and whatever
    was decoded up to that point is kept.
    """
    ctx = Context(limits)
    body = obs.body
    if isinstance(body, str):  # not what capture builds, but never worth an exception
        body = body.encode("utf-8", "surrogatepass")
    raw = bytes(body) if isinstance(body, (bytes, bytearray, memoryview)) else b""
    payload = Payload(
        kind="empty",
        tree=None,
        leaves=ctx.leaves,
        size=len(raw),
        decoded_size=0,
        sha256=hashlib.sha256(raw).hexdigest(),
        truncated=ctx.truncated,
        notes=ctx.notes,
    )
    walker = Walker(ctx)
    nested = max(0, limits.max_nested)
    try:
        _request_leaves(obs, walker, nested)
    except LeafLimit:
        pass
    except Exception as e:  # never break the pipeline on hostile metadata
        ctx.note(f"decode: request metadata: {type(e).__name__}: {e}")
    try:
        data = decompress(raw, obs.content_encoding or "", ctx)
        payload.decoded_size = len(data)
        payload.kind, payload.tree = decode_body(data, obs, ctx)
        if payload.kind == "binary":
            ctx.unreadable("no text or structure found")
    except Exception as e:  # bugs and MemoryError alike: keep what we have
        ctx.note(f"decode: body: {type(e).__name__}: {e}")
        ctx.unreadable(f"{type(e).__name__} while decoding")
        _opaque(payload, ctx)
        walker.finish()
        return payload
    _opaque(payload, ctx)
    try:
        if payload.kind not in ("binary", "empty"):
            walker.walk_tree(payload.tree, nested)
    except LeafLimit:
        pass
    except Exception as e:
        ctx.note(f"decode: leaves: {type(e).__name__}: {e}")
        walker.limit_hit = True
    try:
        walker.finish()
    except Exception as e:
        ctx.note(f"decode: leaves: {type(e).__name__}: {e}")
    if walker.limit_hit:
        try:
            payload.tree = prune(
                payload.tree, ctx.max_depth, walker.tree_scalars if walker.full else None
            )
        except Exception as e:
            ctx.note(f"decode: tree: {type(e).__name__}: {e}")
            payload.tree = None
    return payload


def _opaque(payload: Payload, ctx: Context) -> None:
    if ctx.opaque is not None and payload.size:
        payload.opaque = ctx.opaque
        ctx.note(f"opaque body: {ctx.opaque}")


def _request_leaves(obs: Observation, walker: Walker, nested: int) -> None:
    """url, query:, header: and cookie: leaves, in that order."""
    if obs.url:
        walker.value(obs.url, "url", "url", "url", 0)
    query = obs.query
    if not query and "?" in (obs.url or ""):
        query = parse_query(url_query(obs.url), walker.ctx.limits.max_leaves)
    for name, value in query:
        walker.value(value, f"query:{name}", name, "query", nested)
    cookie_headers = []
    for name, value in obs.headers:
        if name.lower() == "cookie":
            cookie_headers.append(value)
            continue
        walker.value(value, f"header:{name}", name, "header", nested)
    cookies = obs.cookies
    if not cookies and cookie_headers:
        cookies = [pair for value in cookie_headers for pair in parse_cookie_header(value)]
    for name, value in cookies:
        walker.value(value, f"cookie:{name}", name, "cookie", nested)
