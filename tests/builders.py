"""Flows of every kind a capture can hold, written with mitmproxy's own FlowWriter,
for the tests that compare phonehome's readings with mitmproxy's."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import io, websocket
from mitmproxy.test import tflow, tutils


def http_flow(resp: bool = True, **request: Any) -> Any:
    """A finished HTTP flow (mitmproxy's test flow) with these request fields."""
    return tflow.tflow(req=tutils.treq(**request), resp=resp)


def _gzip_flow() -> Any:
    flow = http_flow(method=b"POST", headers=((b"content-type", b"application/json"),
                                          (b"content-encoding", b"gzip")))
    flow.request.content = b'{"email":"jane.roe@example.org"}'  # mitmproxy gzips it
    return flow


def _no_response_content() -> Any:
    flow = http_flow()
    flow.response.content = None
    return flow


def _empty_response() -> Any:
    flow = http_flow()
    flow.response.content = b""
    return flow


def _no_request_timestamp() -> Any:
    flow = http_flow()
    flow.request.timestamp_start = 0.0  # the observation falls back to timestamp_created
    return flow


def _marked_flow() -> Any:
    flow = http_flow(method=b"POST", content=b'{"a":1}')
    flow.metadata["phonehome"] = {"markers": [{"label": "opt_out", "timestamp": 12.5},
                                              {"label": "broken"}]}
    flow.metadata["other addon"] = {"nested": [1, 2.5, None, True, b"raw"]}
    flow.marked = ":default:"
    flow.comment = "checked"
    return flow


def _websocket_flow() -> Any:
    flow = tflow.twebsocketflow()
    flow.websocket.messages = [
        websocket.WebSocketMessage(1, True, b'{"event":"client.muted"}', 100.0),
        websocket.WebSocketMessage(1, False, b"server says hi", 101.0),
        websocket.WebSocketMessage(2, True, b"\x00\x01binary", 102.0),
        websocket.WebSocketMessage(2, False, b"\xff", 103.0),
    ]
    return flow


FLOWS: dict[str, Callable[[], Any]] = {
    "http1 post": lambda: http_flow(method=b"POST", content=b'{"os":"macOS"}',
                                headers=((b"content-type", b"application/json"),)),
    "http2": lambda: http_flow(http_version=b"HTTP/2.0", scheme=b"https", host="example.com",
                           port=443, authority=b"example.com",
                           headers=((b"user-agent", b"webex/44"),)),
    "gzip body": _gzip_flow,
    "cookies": lambda: http_flow(headers=((b"cookie", b"sid=abc; theme=dark"),
                                      (b"cookie", b"sid=again"))),
    "repeated query keys": lambda: http_flow(path=b"/m?uid=1&uid=2&x=%20y&flag&uid="),
    "ipv6 host": lambda: http_flow(host="2001:db8::1", port=8443, scheme=b"https",
                               authority=b"[2001:db8::1]:8443"),
    "ipv6 host header": lambda: http_flow(host="::1", port=80,
                                      headers=((b"host", b"[::1]"),)),
    "non-default port": lambda: http_flow(host="metrics.example.com", port=8080,
                                      headers=((b"host", b"metrics.example.com:8080"),)),
    "no response": lambda: http_flow(resp=False),
    "response with no content": _no_response_content,
    "empty response": _empty_response,
    "error": lambda: tflow.tflow(resp=False, err=True),
    "non-ascii header and binary body": lambda: http_flow(
        method=b"PUT", content=bytes(range(256)),
        headers=((b"x-name", "Zoë".encode()), (b"x-raw", b"\xff\xfe"))),
    "no request timestamp": _no_request_timestamp,
    "marker metadata": _marked_flow,
    "websocket": _websocket_flow,
    "tcp": tflow.ttcpflow,
    "udp": tflow.tudpflow,
    "dns": tflow.tdnsflow,
}


def write_flows(path: Path, flows: list[Any]) -> Path:
    with path.open("wb") as fo:
        writer = io.FlowWriter(fo)
        for flow in flows:
            writer.add(flow)
    return path


def full_flows(path: Path) -> list[Any]:
    with path.open("rb") as fo:
        return list(io.FlowReader(fo).stream())
