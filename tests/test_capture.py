"""Capture: mitmproxy flows → Observations (tflow, no proxy)."""

from __future__ import annotations

import pytest
from mitmproxy import websocket
from mitmproxy.test import tflow, tutils

from phonehome.capture.observe import observations_from_flow, observe_request


def _flow(**request: object):
    return tflow.tflow(req=tutils.treq(**request), resp=True)


@pytest.mark.parametrize(
    ("request_kwargs", "field", "expected"),
    [
        ({"method": b"POST"}, "method", "POST"),
        ({"host": "metrics-a.wbx2.com", "port": 443, "scheme": b"https",
          "authority": b"metrics-a.wbx2.com"}, "host", "metrics-a.wbx2.com"),
        ({"path": b"/metrics/api/v1/clientmetrics?alias=true&uid=42"}, "query",
         [("alias", "true"), ("uid", "42")]),
        ({"content": b'{"a":1}'}, "body", b'{"a":1}'),
        ({"headers": ((b"content-type", b"application/json"),)}, "content_type",
         "application/json"),
        ({"headers": ((b"cookie", b"sid=abc; theme=dark"),)}, "cookies",
         [("sid", "abc"), ("theme", "dark")]),
        ({"headers": ((b"x-device", b"d1"), (b"x-device", b"d2"))}, "headers",
         [("x-device", "d1"), ("x-device", "d2")]),
        ({"headers": ((b"content-encoding", b"gzip"),)}, "content_encoding", "gzip"),
        ({"http_version": b"HTTP/2.0"}, "http_version", "HTTP/2.0"),
    ],
)
def test_observe_request_fields(request_kwargs, field, expected):
    observation = observe_request(_flow(**request_kwargs))
    assert getattr(observation, field) == expected


def test_observe_request_keeps_the_raw_compressed_body_and_response():
    flow = _flow(content=b"")
    flow.request.headers["content-encoding"] = "gzip"
    flow.request.content = b'{"hello":"world"}'  # mitmproxy encodes it
    observation = observe_request(flow)
    assert observation.body[:2] == b"\x1f\x8b"
    assert observation.status == 200
    assert observation.response_size == len(flow.response.raw_content)
    assert (observation.server_host, observation.authority) == (flow.request.host,
                                                               flow.request.authority)
    assert observation.timestamp == flow.request.timestamp_start


def test_markers_saved_in_flow_metadata_come_back():
    flow = _flow()
    flow.metadata["phonehome"] = {"markers": [{"label": "opt_out", "timestamp": 12.5},
                                              {"label": "broken"}]}
    assert observe_request(flow).markers == [("opt_out", 12.5)]


def test_each_client_websocket_message_is_one_observation():
    flow = tflow.twebsocketflow()
    flow.websocket.messages = [
        websocket.WebSocketMessage(1, True, b'{"event":"client.muted"}', 100.0),
        websocket.WebSocketMessage(1, False, b"server says hi", 101.0),
        websocket.WebSocketMessage(2, True, b"\x00\x01", 102.0),
    ]
    observations = list(observations_from_flow(flow, source="x.mitm"))
    assert [o.kind for o in observations] == ["http", "websocket", "websocket"]
    first, second = observations[1:]
    assert first.body == b'{"event":"client.muted"}' and first.timestamp == 100.0
    assert first.content_type == "text/plain" and first.id.endswith(":ws0")
    assert second.content_type == "application/octet-stream" and second.id.endswith(":ws2")
    assert {o.source for o in observations} == {"x.mitm"}
