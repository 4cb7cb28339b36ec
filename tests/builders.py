"""Shared test builders: repository paths, observations, payloads and mitmproxy flows.

Locations follow decode's syntax (`$.a[0].b`, `$['x-y']`, `query:uid`, `header:Name`,
`cookie:sid`, `url`), so findings read as they would in a report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from mitmproxy import io, websocket
from mitmproxy.test import tflow, tutils

from phonehome.detect.identity import Identity
from phonehome.model import Leaf, Observation, Payload

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root folder."""
FIXTURES = ROOT / "tests" / "fixtures"
EXAMPLES = ROOT / "examples"
SAMPLE = EXAMPLES / "webex-session.mitm"
"""The bundled sample capture."""
SAMPLE_IDENTITY = EXAMPLES / "identity.yaml"
"""The sample's synthetic identity."""


# --- the CLI and the addon harness ----------------------------------------------

def phonehome(*args: object, timeout: float = 600,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`phonehome ARGS…` in a subprocess, its output captured."""
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def audit_sample(out: Path, *args: object) -> subprocess.CompletedProcess[str]:
    """`phonehome audit` of the sample with its identity file into `out`, quietly."""
    return phonehome("audit", SAMPLE, "--identity", SAMPLE_IDENTITY, "-o", out, "-q", *args,
                     timeout=300)


@contextlib.contextmanager
def addon_context(*addons: object) -> Iterator[Any]:
    """taddons.context that also closes the event loop mitmproxy 11 leaves open.

    taddons pulls in ldap3, whose use of pyasn1 warns (DeprecationWarning) on import."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy.test import taddons
    tctx = taddons.context(*addons)
    try:
        with tctx:
            yield tctx
    finally:
        if not tctx.master.event_loop.is_closed():
            tctx.master.event_loop.close()


# --- observations -------------------------------------------------------------


def identity_of(fields: Mapping[str, str | list[str]]) -> Identity:
    """The Identity an identity file of these fields (a value or a list each) declares."""
    return Identity.from_entries([(field, value) for field, values in fields.items()
                                  for value in (values if isinstance(values, list) else [values])])


def make_observation(body: bytes = b"", content_type: str = "", **fields: Any) -> Observation:
    """A POST to https://h/ with this body; any other Observation field by name."""
    values: dict[str, Any] = dict(
        id="t", timestamp=0.0, method="POST", url="", scheme="https", host="h", port=443,
        path="/", body=body, content_type=content_type,
    )
    values.update(fields)
    return Observation(**values)


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


METRICS_URL = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
"""Webex's client-metrics endpoint: a telemetry flow under the bundled rules."""


def muted_event_flow(ident: str, at: float = 100.0,
                     *markers: tuple[str, float]) -> Observation:
    """A telemetry flow carrying one `client.muted` event at `at`, with these markers."""
    observation = make_obs(METRICS_URL, ca_batch({"name": "client.muted"}), ident=ident)
    observation.timestamp = at
    observation.markers = list(markers)
    return observation


def ca_batch(*events: dict[str, Any]) -> dict[str, Any]:
    """A Call Analyzer batch: one metrics[] item per event dict."""
    return {"metrics": [{"type": ["diagnostic-event"], "eventPayload": {"event": e}}
                        for e in events]}


# --- payloads -----------------------------------------------------------------


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


def walk(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every scalar of a JSON document with its path tuple, in document order."""
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in walk(value, path + (key,))]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in walk(value, path + (i,))]
    return [(path, node)]


def payload_of(obs: Observation) -> Payload:
    """The payload the decoder makes of a JSON observation (body, query, headers, cookies)."""
    return make_payload(json.loads(obs.body) if obs.body else None, query=obs.query,
                        headers=obs.headers, cookies=obs.cookies)


# --- mitmproxy flows -----------------------------------------------------------


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


def long_capture(path: Path, count: int = 20_000) -> Path:
    """A capture of `count` small JSON posts, each with an e-mail: long enough for a
    test to stop `phonehome audit` part-way."""
    return write_flows(path, [
        http_flow(method=b"POST", path=f"/v1/m/{i}".encode(),
                  content=json.dumps({"i": i, "email": "a@example.org"}).encode(),
                  headers=((b"content-type", b"application/json"),))
        for i in range(count)])


def full_flows(path: Path) -> list[Any]:
    with path.open("rb") as fo:
        return list(io.FlowReader(fo).stream())


def node_client(folder: Path, installed: str, timeout: float = 900) -> str:
    """The node executable, with `folder`'s packages installed (npm ci) when `installed`
    (a path under node_modules) is missing. Skips, with the reason, where Node can't run."""
    import shutil
    import subprocess

    import pytest

    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed (.ci/run installs it: apt-get install nodejs npm)")
    if not (folder / "node_modules" / installed).is_dir():
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed (.ci/run installs it: apt-get install npm)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                              cwd=folder, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            pytest.skip(f"npm ci cannot install the client's packages: {done.stderr[-300:]}")
    return node


def audited_at(auditor: Any, flow_id: str, timestamp: float, method: str, url: str,
               body: Any) -> dict[str, Any]:
    """The record `auditor` makes of a JSON request sent at `timestamp`."""
    from mitmproxy import http

    from phonehome.capture.observe import observe_request

    request = http.Request.make(method, url, json.dumps(body).encode(),
                                {"content-type": "application/json"})
    flow = tflow.tflow(req=request)
    flow.request.timestamp_start = timestamp
    observation = observe_request(flow, source="test")
    observation.id = flow_id
    observation.timestamp = timestamp
    return auditor.audit(observation)
