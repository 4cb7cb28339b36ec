"""The simulator's parts without a proxy: leaks, identity, payloads, vendor routes,
the resolver addon, the vendor server on loopback and the CLI's input checks."""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import json
import ssl
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import yaml
from mitmproxy import exceptions
from mitmproxy.proxy import server_hooks

from builders import ROOT, addon_context
from phonehome.commands import simulate as simulate_command
from phonehome.simulate import (
    ALL_LEAKS,
    RESOLVER_ADDON_PATH,
    diagnostics,
    media,
    parse_leaks,
    resolver_addon,
)
from phonehome.simulate import payloads as p
from phonehome.simulate.identity import make_identity, write_identity
from phonehome.simulate.leaks import jsonpath
from phonehome.simulate.timeline import (
    MUTE_END,
    MUTE_START,
    SESSION_SECONDS,
    TIMELINE,
    Step,
    play_timeline,
)
from phonehome.simulate.vendor_replies import route
from phonehome.simulate.vendor_server import VendorServer, read_record

# --- leaks ------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("all", set(ALL_LEAKS)),
    ("ALL", set(ALL_LEAKS)),
    ("*", set(ALL_LEAKS)),
    ("none", set()),
    ("", set()),
    ("public_ip", {"public_ip"}),
    ("public_ip,mac_address", {"public_ip", "mac_address"}),
    (" public_ip , muted_audio ,", {"public_ip", "muted_audio"}),
    (("identity_plain", "identity_url"), {"identity_plain", "identity_url"}),
    ((), set()),
    (ALL_LEAKS, set(ALL_LEAKS)),
])
def test_parse_leaks(spec: object, expected: set[str]) -> None:
    assert parse_leaks(spec) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("spec", ["email", "public_ip,bogus", ("mac",), "identity"])
def test_parse_leaks_rejects_unknown_names(spec: object) -> None:
    with pytest.raises(ValueError, match="unknown leak"):
        parse_leaks(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(("parts", "expected"), [
    ((), "$"),
    (("metrics", 0, "eventPayload"), "$.metrics[0].eventPayload"),
    ((2, "server_name"), "$[2].server_name"),
    (("content-type",), "$['content-type']"),
    (("it's",), "$['it\\'s']"),
    (("1", 3), "$.1[3]"),
])
def test_jsonpath(parts: tuple, expected: str) -> None:
    assert jsonpath(*parts) == expected


# --- identity -------------------------------------------------------------------

_IDENTITY_KEYS = ["email", "name", "phone", "username", "device_name", "hostname", "ip", "mac",
                  "meeting_ids", "meeting_titles"]


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 42, 1234, 99999])
def test_identity_is_deterministic_and_distinct(seed: int) -> None:
    identity = make_identity(seed)
    assert identity == make_identity(seed)
    values = [v.lower() for v in (identity.email, identity.name, identity.username,
                                  identity.device_name, identity.hostname, identity.ip,
                                  identity.mac, identity.meeting_id, identity.meeting_title)]
    for a in values:
        for b in values:
            assert a == b or a not in b
    assert ipaddress.ip_address(identity.ip).is_global
    assert p.mask_prefix(identity.ip) != identity.ip
    assert int(identity.mac.split(":")[0], 16) & 0x03 == 0


def test_identities_differ_by_seed() -> None:
    assert len({make_identity(seed).email for seed in range(20)}) == 20


def test_identity_file(tmp_path: Path) -> None:
    path = write_identity(make_identity(3), tmp_path / "identity.yaml")
    data = yaml.safe_load(path.read_text())
    assert list(data) == _IDENTITY_KEYS
    assert isinstance(data["meeting_ids"], list) and isinstance(data["meeting_titles"], list)
    assert path.stat().st_mode & 0o077 == 0


# --- payloads -------------------------------------------------------------------


@pytest.mark.parametrize(("address", "masked"), [
    ("194.104.174.60", "194.104.174.48"),
    ("1.3.4.5", "1.3.4.0"),
    ("192.168.1.87", "192.168.1.80"),
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4::"),
])
def test_mask_prefix(address: str, masked: str) -> None:
    assert p.mask_prefix(address) == masked


def _env(leaks: set[str], seed: int = 5) -> p.Env:
    return p.make_env(seed, make_identity(seed), frozenset(leaks))


def _live(muted: bool) -> p.Live:
    return p.Live(device_url="https://wdm-a.wbx2.com/wdm/api/v1/devices/x", token="t",
                  correlation_id="c", locus_url="https://l/loci/1", locus_id="1",
                  locus_start="2024-01-01T00:00:00.000Z", connection_id="k", muted=muted)


@pytest.mark.parametrize(("muted", "leak_on", "levels", "marked"), [
    (False, False, True, False),
    (False, True, True, False),
    (True, False, False, False),
    (True, True, True, True),
])
def test_mqe_audio_levels(muted: bool, leak_on: bool, levels: bool, marked: bool) -> None:
    env = _env({"muted_audio"} if leak_on else set())
    item = media.mqe_item(env, _live(muted), 3, 1_700_000_000.0)
    audio = item.data["eventPayload"]["event"]["intervals"][0]["audioTransmit"][0]
    assert ("levels" in audio) is levels
    assert ("audioAlgorithmModulesInfo" in audio["streams"][0]) is levels
    assert any(m.leak == "muted_audio" for m in item.marks) is marked
    if levels:
        assert audio["levels"]["audioMeanVolume"] > 0


@pytest.mark.parametrize("leak_on", [False, True])
def test_mqe_public_ip(leak_on: bool) -> None:
    env = _env({"public_ip"} if leak_on else set())
    item = media.mqe_item(env, _live(False), 1, 1_700_000_000.0)
    text = json.dumps(item.data)
    reflexive = item.data["eventPayload"]["event"]["intervals"][0]["intervalMetadata"][
        "peerReflexiveIP"]
    assert (f'"{env.identity.ip}"' in text) is leak_on
    assert reflexive == (env.identity.ip if leak_on else p.mask_prefix(env.identity.ip))


def test_metrics_body_locates_marks_by_batch_index() -> None:
    env, live = _env(set()), _live(False)
    mark = p.Mark(("eventPayload", "x"), "mac_address", "plain", "mac")
    items = [p.ca_item(env, live, "client.a", 1.0), p.ca_item(env, live, "client.b", 2.0,
                                                              marks=[mark])]
    body, plants = p.metrics_body(items)
    assert [m["eventPayload"]["event"]["name"] for m in body["metrics"]] == ["client.a",
                                                                             "client.b"]
    assert [(x.location, x.event, x.finding_type) for x in plants] == [
        ("$.metrics[1].eventPayload.x", "client.b", "mac_address")]


@pytest.mark.parametrize(("leak", "needle"), [
    ("stack_username", "/Users/{username}/"),
    ("identity_plain", "{hostname}"),
])
def test_sentry_envelope(leak: str, needle: str) -> None:
    for on in (False, True):
        env = _env({leak} if on else set())
        body, plants = diagnostics.sentry_envelope(env, _live(False), 1_700_000_000.0)
        lines = [json.loads(line) for line in body.decode().splitlines()]
        assert len(lines) == 3 and lines[1]["type"] == "event"
        assert lines[1]["length"] == len(json.dumps(lines[2], separators=(",", ":")))
        value = needle.format(username=env.identity.username, hostname=env.identity.hostname)
        assert (value in body.decode()) is on
        assert bool(plants) is on


@pytest.mark.parametrize("on", [False, True])
def test_amplitude_user_id(on: bool) -> None:
    env = _env({"identity_hashed"} if on else set())
    body, plants = p.amplitude_body(env, "app_launched", 1.0, {})
    digest = hashlib.sha256(env.identity.email.encode()).hexdigest()
    assert (body["events"][0]["user_id"] == digest) is on
    assert [x.location for x in plants] == (["$.events[0].user_id"] if on else [])


@pytest.mark.parametrize("on", [False, True])
def test_prelogin_header(on: bool) -> None:
    env = _env({"identity_base64"} if on else set())
    value, plants = p.prelogin_user_header(env)
    assert (value == base64.b64encode(env.identity.email.encode()).decode()) is on
    assert bool(plants) is on


@pytest.mark.parametrize("on", [False, True])
def test_web_ha_url(on: bool) -> None:
    env = _env({"identity_url"} if on else set())
    url, marks = p.failed_url_tag(env)
    assert ("%40" in url) is on
    assert env.identity.email not in url
    assert bool(marks) is on


def test_log_file_names_no_one() -> None:
    env = _env(set(ALL_LEAKS))
    text = diagnostics.log_file(env, _live(False), 0.0, 900.0).decode()
    for value in (env.identity.email, env.identity.username, env.identity.hostname,
                  env.identity.ip, env.identity.meeting_title):
        assert value not in text


# --- timeline ---------------------------------------------------------------------


def test_timeline_shape() -> None:
    times = [step.at for step in TIMELINE]
    assert times == sorted(times)
    assert times[0] == 0.0 and times[-1] == SESSION_SECONDS
    assert 20 * 60 <= SESSION_SECONDS <= 30 * 60
    phases = list(dict.fromkeys(step.phase for step in TIMELINE))
    assert phases[:6] == ["setup", "sign_in", "app_start", "periodic", "meeting_create",
                          "meeting_join"]
    assert phases[-1] == "shutdown"
    assert MUTE_START < MUTE_END


class _FakeClock:
    """A clock that only moves when slept on or when a step takes time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def _play(step_seconds: dict[float, float], ats: list[float], speed: float) -> list[float]:
    clock, started = _FakeClock(), []
    steps = [Step(at, "periodic", lambda run: None) for at in ats]

    def play(step: Step) -> None:
        started.append(clock.now)
        clock.now += step_seconds.get(step.at, 0.0)

    play_timeline(steps, speed, play, clock=clock, sleep=clock.sleep)
    return [t - started[0] for t in started]


def test_play_timeline_keeps_the_schedule_when_on_time() -> None:
    assert _play({}, [0.0, 60.0, 120.0, 180.0], speed=100) == pytest.approx([0, 0.6, 1.2, 1.8])


def test_a_late_step_shifts_the_rest_instead_of_bursting() -> None:
    # a cold first request takes 1.2 s: two heartbeats are overdue by then
    started = _play({0.0: 1.2}, [0.0, 60.0, 120.0, 180.0, 240.0], speed=100)
    intervals = [b - a for a, b in zip(started[1:], started[2:], strict=False)]
    assert intervals == pytest.approx([0.6, 0.6, 0.6])
    assert started[1] == pytest.approx(1.2)


def test_slow_steps_push_later_ones_by_their_own_lateness_only() -> None:
    started = _play({1.0: 0.05, 1.5: 0.05}, [0.0, 1.0, 1.5, 60.0, 120.0], speed=100)
    assert started == pytest.approx([0.0, 0.01, 0.06, 0.6 + 0.06 - 0.015, 1.2 + 0.06 - 0.015])

# --- vendor routes ---------------------------------------------------------------


@pytest.mark.parametrize(("method", "host", "path", "status", "key"), [
    ("POST", "wdm-a.wbx2.com", "/wdm/api/v1/devices", 200, "url"),
    ("GET", "ds.ciscospark.com", "/v1/region", 200, "clientAddress"),
    ("GET", "u2c.wbx2.com", "/u2c/api/v1/limited/catalog", 200, "serviceLinks"),
    ("GET", "u2c.wbx2.com", "/u2c/api/v1/catalog", 200, "serviceLinks"),
    ("GET", "u2c.wbx2.com", "/u2c/api/v1/user/catalog", 503, "message"),
    ("POST", "idbroker.webex.com", "/idb/oauth2/v1/access_token", 200, "access_token"),
    ("POST", "webexapis.com", "/v1/meetings", 200, "webLink"),
    ("POST", "locus-a.wbx2.com", "/locus/api/v1/loci/call", 200, "locus"),
    ("PUT", "locus-a.wbx2.com", "/locus/api/v1/loci/a/participant/b/leave", 200, "locus"),
    ("POST", "client-logs-a.wbx2.com", "/api/v1/logs/urls", 200, "tempURL"),
    ("POST", "o12345.ingest.sentry.io", "/api/4505123/envelope/", 200, "id"),
    ("POST", "api.amplitude.com", "/2/httpapi", 200, "events_ingested"),
    ("POST", "conv-a.wbx2.com", "/conversation/api/v1/activities", 200, "id"),
    ("POST", "metrics-a.wbx2.com", "/metrics/api/v1/clientmetrics", 204, None),
    ("PUT", "client-logs-a.wbx2.com", "/api/v1/logs/upload/x", 204, None),
    ("GET", "anything.example", "/whatever", 200, None),
])
def test_routes(method: str, host: str, path: str, status: int, key: str | None) -> None:
    reply = route(method, host, path, b'{"file": "a.txt"}')
    assert reply.status == status
    if key is None:
        assert reply.body in (None, {})
    else:
        assert key in reply.body
    assert reply == route(method, host, path, b'{"file": "a.txt"}')


def test_device_url_and_temp_url_use_the_requests_host() -> None:
    device = route("POST", "wdm-x.example", "/wdm/api/v1/devices", b"{}").body
    assert device["url"].startswith("https://wdm-x.example/wdm/api/v1/devices/")
    logs = route("POST", "logs.example", "/api/v1/logs/urls", b'{"file":"f.txt"}').body
    assert logs["tempURL"].startswith("https://logs.example/api/v1/logs/upload/")


# --- resolver addon ------------------------------------------------------------


@pytest.mark.parametrize(("spec", "expected"), [
    ("127.0.0.1:8443", ("127.0.0.1", 8443)),
    (" 127.0.0.1:1 ", ("127.0.0.1", 1)),
    ("[::1]:9000", ("::1", 9000)),
    ("localhost:65535", ("localhost", 65535)),
    ("", None),
])
def test_parse_upstream(spec: str, expected: tuple[str, int] | None) -> None:
    assert resolver_addon.parse_upstream(spec) == expected


@pytest.mark.parametrize("spec", ["nope", ":80", "host:", "host:x", "host:0", "host:70000"])
def test_parse_upstream_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        resolver_addon.parse_upstream(spec)


def test_resolver_addon_path() -> None:
    assert RESOLVER_ADDON_PATH.is_file()
    assert RESOLVER_ADDON_PATH.samefile(resolver_addon.__file__)
    assert "import phonehome" not in RESOLVER_ADDON_PATH.read_text()


def _tflow() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy.test import tflow
    return tflow


@pytest.mark.parametrize(("upstream", "expected"), [
    ("127.0.0.1:8443", ("127.0.0.1", 8443)),
    ("", ("metrics-a.wbx2.com", 443)),
])
def test_resolver_rewrites_server_address(upstream: str, expected: tuple[str, int]) -> None:
    tflow = _tflow()
    addon = resolver_addon.ResolveAll()
    with addon_context(addon) as tctx:
        tctx.configure(addon, phonehome_sim_upstream=upstream)
        server = tflow.tserver_conn()
        server.address = ("metrics-a.wbx2.com", 443)
        server.sni = None
        addon.server_connect(server_hooks.ServerConnectionHookData(
            server=server, client=tflow.tclient_conn()))
        assert server.address == expected
        assert server.sni is None  # left to the client's SNI


def test_resolver_rejects_bad_option() -> None:
    addon = resolver_addon.ResolveAll()
    with addon_context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(addon, phonehome_sim_upstream="127.0.0.1:notaport")


# --- vendor server on loopback ---------------------------------------------------


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def test_vendor_server_records_and_joins(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    before = set(threading.enumerate())
    with VendorServer(record) as server:
        base = f"https://127.0.0.1:{server.port}"
        with httpx.Client(verify=_insecure(), trust_env=False) as client:
            first = client.post(f"{base}/wdm/api/v1/devices?x=1", json={"name": "n"},
                                headers={"Host": "wdm-a.wbx2.com"})
            second = client.put(f"{base}/api/v1/logs/upload/1", content=b"\x00\x01",
                                headers={"Host": "client-logs-a.wbx2.com"})
        assert server.requests_recorded == 2
    assert set(threading.enumerate()) <= before
    assert first.status_code == 200 and second.status_code == 204
    entries = read_record(record)
    assert [(e["seq"], e["method"], e["host"], e["path"], e["query"]) for e in entries] == [
        (1, "POST", "wdm-a.wbx2.com", "/wdm/api/v1/devices", "x=1"),
        (2, "PUT", "client-logs-a.wbx2.com", "/api/v1/logs/upload/1", ""),
    ]
    assert entries[1]["body"] == b"\x00\x01"
    assert entries[1]["body_sha256"] == hashlib.sha256(b"\x00\x01").hexdigest()
    assert ["Host", "wdm-a.wbx2.com"] in entries[0]["headers"]


def test_vendor_server_speaks_http2(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    with VendorServer(record) as server:
        port = server.port
        with httpx.Client(verify=_insecure(), trust_env=False, http2=True) as client:
            replies = [client.post(f"https://127.0.0.1:{port}/2/httpapi",
                                   json={"events": [{}] * n}) for n in (1, 2)]
    assert [(r.http_version, r.json()["events_ingested"]) for r in replies] == [
        ("HTTP/2", 1), ("HTTP/2", 2)]
    entries = read_record(record)
    assert [(e["http_version"], e["method"], e["path"]) for e in entries] == [
        ("HTTP/2.0", "POST", "/2/httpapi")] * 2
    assert entries[0]["host"] == f"127.0.0.1:{port}"
    assert json.loads(entries[1]["body"]) == {"events": [{}, {}]}


def test_vendor_server_stop_closes_idle_keepalive(tmp_path: Path) -> None:
    server = VendorServer(tmp_path / "r.jsonl")
    port = server.start()
    client = httpx.Client(verify=_insecure(), trust_env=False)
    try:
        assert client.get(f"https://127.0.0.1:{port}/v1/region").status_code == 200
        server.stop()  # the idle keep-alive connection must not block this
        assert not [t for t in threading.enumerate() if "process_request" in t.name]
    finally:
        client.close()
        server.stop()


def test_vendor_server_runs_as_module(tmp_path: Path) -> None:
    record = tmp_path / "r.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-m", "phonehome.simulate.vendor_server", "--port", "0",
         "--record", str(record)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"PYTHONPATH": str(ROOT / "addons"), "PATH": ""})
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert "listening on 127.0.0.1:" in line, process.stderr.read() if process.stderr else ""
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        with httpx.Client(verify=_insecure(), trust_env=False) as client:
            assert client.get(f"https://127.0.0.1:{port}/x").status_code == 200
    finally:
        process.terminate()
        try:
            code = process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait(timeout=15)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()
    assert code == 0
    assert [e["path"] for e in read_record(record)] == ["/x"]


# --- CLI --------------------------------------------------------------------------


def _args(tmp_path: Path, **overrides: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    simulate_command.register(subparsers)
    ca = tmp_path / "ca.pem"
    ca.write_text("not a certificate")
    argv = ["simulate", "--proxy", "http://127.0.0.1:9", "--ca", str(ca),
            "-o", str(tmp_path / "out")]
    args = parser.parse_args(argv)
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


@pytest.mark.parametrize(("overrides", "message"), [
    ({"proxy": "127.0.0.1:8080"}, "bad --proxy"),
    ({"proxy": "socks5://127.0.0.1:1080"}, "bad --proxy"),
    ({"proxy": "http://127.0.0.1"}, "bad --proxy"),
    ({"proxy": "http://127.0.0.1:99999"}, "bad --proxy"),
    ({"ca": Path("/nonexistent/ca.pem")}, "no such file"),
    ({"speed": 0.0}, "--speed"),
    ({"speed": -5.0}, "--speed"),
    ({"speed": float("nan")}, "--speed"),
    ({"speed": float("inf")}, "--speed"),
    ({"leaks": "public_ip,nope"}, "unknown leak"),
    ({}, "cannot load CA certificate"),
])
def test_cli_bad_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               overrides: dict[str, object], message: str) -> None:
    assert simulate_command.handler(_args(tmp_path, **overrides)) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_cli_defaults(tmp_path: Path) -> None:
    args = _args(tmp_path)
    assert (args.seed, args.speed, args.leaks) == (1, 100.0, "all")
    assert args.func is simulate_command.handler


def test_unreachable_proxy_is_a_usage_error(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from phonehome.simulate.vendor_server import make_certificate

    cert, _key = make_certificate(tmp_path)
    args = _args(tmp_path, ca=cert, proxy=f"http://127.0.0.1:{_closed_port()}", speed=1e6)
    assert simulate_command.handler(args) == 2
    assert "failed" in capsys.readouterr().err


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
