"""Capture: a mitmproxy flow (or one WebSocket message of it) → `Observation`.

This module reads mitmproxy's flow objects but knows nothing of its hooks:
the live addon and the offline reader both call it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from mitmproxy import http

from ..model import Observation
from ..urls import query_pairs, split_url

__all__ = ["observe_request", "observe_websocket_message", "observations_from_flow",
           "observe_saved_flow"]


def _timestamp(flow: http.HTTPFlow) -> float:
    return _first_time(flow.request.timestamp_start, flow.timestamp_created)


def _first_time(*values: Any) -> float:
    """The first usable time: a saved flow may hold anything, and reports need a number."""
    for value in values:
        try:
            when = float(value or 0.0)
        except (TypeError, ValueError, OverflowError):
            continue
        if when and math.isfinite(when):
            return when
    return 0.0


def _response_fields(flow: http.HTTPFlow) -> tuple[int | None, int | None]:
    if flow.response is None:
        return None, None
    raw = flow.response.raw_content
    return flow.response.status_code, (len(raw) if raw is not None else None)


def _markers(flow: Any) -> list[tuple[str, float]]:
    """Auditor markers the live addon saved in this flow's metadata."""
    meta = getattr(flow, "metadata", None) or {}
    phonehome = meta.get("phonehome") if isinstance(meta, dict) else None
    markers: list[tuple[str, float]] = []
    if isinstance(phonehome, dict):
        for item in phonehome.get("markers", ()):
            try:
                markers.append((str(item["label"]), float(item["timestamp"])))
            except (KeyError, TypeError, ValueError):
                continue
    return markers


def _url(request: http.Request) -> str:
    # pretty_url builds from the Host header the app wrote: keep it as it came,
    # and if mitmproxy can't build it, join the parts the same way.
    try:
        return request.pretty_url
    except Exception:  # noqa: BLE001 - untrusted text must not stop the capture
        return f"{request.scheme}://{_host(request)}:{request.port}{request.path}"


def _host(request: http.Request) -> str:
    try:
        return request.pretty_host
    except Exception:  # noqa: BLE001 - untrusted text must not stop the capture
        return request.host


def _cookies(request: http.Request) -> list[tuple[str, str]]:
    try:
        return [(k, v) for k, v in request.cookies.items(multi=True)]
    except Exception:  # noqa: BLE001 - the decode stage reads the Cookie header itself
        return []


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")  # as mitmproxy's Headers give it


def _header(fields: Any, name: bytes) -> str:
    """`Headers.get(name, "")` over the raw fields: repeats folded with ", "."""
    values = [_text(v) for k, v in fields if k.lower() == name]
    return ", ".join(values)


def observe_request(flow: http.HTTPFlow, *, source: str = "live") -> Observation:
    """The request half of an HTTP flow, as it went on the wire.

    Everything here is the app's own text: read without parsers that raise
    (`Request.query` runs urlsplit over the host and fails on a stray `[`).
    """
    request = flow.request
    body = request.raw_content or b""
    status, response_size = _response_fields(flow)
    fields = request.headers.fields  # (bytes, bytes) pairs, decoded once here
    return Observation(
        id=flow.id,
        timestamp=_timestamp(flow),
        method=request.method,
        url=_url(request),
        scheme=request.scheme,
        host=_host(request),
        port=request.port,
        path=request.path,
        http_version=request.http_version,
        headers=[(_text(k), _text(v)) for k, v in fields],
        cookies=_cookies(request),
        query=query_pairs(split_url(request.path).query),
        body=body,
        content_type=_header(fields, b"content-type"),
        content_encoding=_header(fields, b"content-encoding"),
        status=status,
        response_size=response_size,
        kind="http",
        source=source,
        markers=_markers(flow),
        server_host=request.host,
        authority=request.authority,
    )


def observe_websocket_message(
    flow: http.HTTPFlow, index: int, *, source: str = "live"
) -> Observation | None:
    """Message `index` of a WebSocket flow, if it went from client to server."""
    if flow.websocket is None:
        return None
    message = flow.websocket.messages[index]
    if not message.from_client:
        return None
    handshake = observe_request(flow, source=source)
    handshake.id = f"{flow.id}:ws{index}"
    handshake.timestamp = _first_time(message.timestamp, handshake.timestamp)
    handshake.body = message.content
    handshake.content_type = "text/plain" if message.is_text else "application/octet-stream"
    handshake.content_encoding = ""
    handshake.method = "WS"
    handshake.kind = "websocket"
    return handshake


def observations_from_flow(flow: Any, *, source: str) -> Iterator[Observation]:
    """Every observation a saved flow holds: its request, then its client messages."""
    if not isinstance(flow, http.HTTPFlow):
        return
    yield observe_request(flow, source=source)
    if flow.websocket is not None:
        for index in range(len(flow.websocket.messages)):
            observation = observe_websocket_message(flow, index, source=source)
            if observation is not None:
                yield observation


def observe_saved_flow(flow: Any, source: str) -> tuple[list[Observation], str | None]:
    """A saved flow's observations, or why it cannot be read: one unreadable flow is
    a problem to report, not the end of the audit."""
    try:
        return list(observations_from_flow(flow, source=source)), None
    except Exception as e:  # noqa: BLE001 - one unreadable flow must not stop the audit
        flow_id = getattr(flow, "id", "?")
        return [], f"flow {flow_id} skipped: {type(e).__name__}: {e}"[:300]
