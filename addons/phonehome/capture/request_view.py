"""The request as rule filters see it: a small HTTPFlow rebuilt from an Observation.

Rebuilding it from the Observation alone gives the live proxy, the audit worker and
`audit --jobs` the same request, and `request_line` keys a filter's remembered verdict.
"""


from __future__ import annotations

from mitmproxy import connection, http, websocket

from ..model import Observation
from .mitm_reader import new_request

__all__ = ["flow_of", "request_flow", "request_line"]

_CLIENT = (("127.0.0.1", 0), ("127.0.0.1", 0))


def request_line(obs: Observation) -> tuple[object, ...]:
    """Everything `request_flow` takes its method, URL and hosts from."""
    return (obs.method, obs.scheme, obs.server_host or obs.host, obs.port, obs.path,
            obs.http_version, obs.authority,
            tuple(value for name, value in obs.headers if name.lower() == "host"))


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def request_flow(obs: Observation) -> http.HTTPFlow:
    """An HTTPFlow with the observation's request: no response, and for a WebSocket
    message, that message as the body and an empty `websocket` (for `~websocket`).

    The request line comes from the observation's own fields, never from parsing
    `obs.url` back (mitmproxy writes an IPv6 host there unbracketed).
    """
    host = obs.server_host or obs.host
    request = new_request(dict(
        host=host, port=obs.port, method=_encoded(obs.method or "GET"),
        scheme=_encoded(obs.scheme), authority=_encoded(obs.authority),
        path=_encoded(obs.path), http_version=_encoded(obs.http_version),
        headers=tuple((_encoded(k), _encoded(v)) for k, v in obs.headers),
        content=obs.body or b"", trailers=None, timestamp_start=obs.timestamp,
        timestamp_end=None))
    flow = flow_of(request)
    if obs.kind == "websocket":
        flow.websocket = websocket.WebSocketData()
    return flow


def flow_of(request: http.Request) -> http.HTTPFlow:
    """A flow that holds only `request` (mitmproxy's filters and capture read flows)."""
    client = connection.Client(peername=_CLIENT[0], sockname=_CLIENT[1],
                               timestamp_start=request.timestamp_start)
    flow = http.HTTPFlow(client, connection.Server(address=(request.host, request.port)))
    flow.timestamp_created = request.timestamp_start
    flow.request = request
    return flow
