"""No single flow can stop the report: arbitrary hosts, paths, header names and
values and JSON keys, through the real `phonehome audit` and `phonehome report`."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from mitmproxy.test import tflow, tutils

from builders import write_flows
from conftest import assert_valid_report
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e

HOSTILE_HOSTS = ["[", "]", "1]", "\x1b[2J", "[::1", "a]b[", "[]", "x:99999", "\u202egoogle.com",
                 "%", "", " ", "a b", "\x00", "host:-1", "[1:2::3]:8080"]
REPEATS = 4
"""Each generated request is sent this many times, 30 s apart, so cadence runs on it."""


def _phonehome(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


_text = st.text(max_size=40)
_bytes = st.binary(max_size=40)
_hosts = st.one_of(st.sampled_from(HOSTILE_HOSTS), _text)
_json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_request = st.fixed_dictionaries({
    "host": _hosts,
    "host_header": st.one_of(st.none(), st.sampled_from(HOSTILE_HOSTS).map(str.encode), _bytes),
    "authority": st.one_of(st.just(b""), _bytes),
    "scheme": st.sampled_from([b"http", b"https", b"ws", b""]),
    "port": st.integers(0, 65535),
    "method": st.sampled_from([b"GET", b"POST", b"PUT", b"x[y"]),
    "path": st.one_of(st.binary(max_size=60), st.sampled_from(
        [b"/a?b=[&c=]", b"/%ff%fe?%zz=1#x", b"?", b"*", b"//[evil]/x?q", b"/\x1b[2J?x=\xff"])),
    "headers": st.lists(st.tuples(_bytes.filter(bool), _bytes), max_size=4),
    "body": st.dictionaries(_text, _json_value, max_size=4),
})


def _flow(spec: dict, when: float) -> object:
    headers = [(b"content-type", b"application/json"), *spec["headers"]]
    if spec["host_header"] is not None:
        headers.append((b"host", spec["host_header"]))
    request = tutils.treq(
        host=spec["host"], port=spec["port"], scheme=spec["scheme"], method=spec["method"],
        authority=spec["authority"], path=spec["path"], headers=tuple(headers),
        content=json.dumps(spec["body"]).encode("utf-8", "surrogatepass"),
        timestamp_start=when, timestamp_end=when + 0.1,
    )
    flow = tflow.tflow(req=request, resp=True)
    flow.timestamp_created = when
    return flow


def _audit_and_report(capture: Path, out: Path) -> dict:
    """Run both commands; both must exit 0 and write a schema-valid report."""
    audited = _phonehome("audit", capture, "-o", out / "audit", "-q")
    assert audited.returncode == 0, audited.stderr[-3000:]
    assert "Traceback" not in audited.stderr, audited.stderr[-3000:]
    report = json.loads((out / "audit" / "audit.json").read_text())
    assert_valid_report(report)
    rebuilt = _phonehome("report", out / "audit" / "audit.sqlite", "-o", out / "again", "-q")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    again = json.loads((out / "again" / "audit.json").read_text())
    assert_valid_report(again)
    assert len(again["flows"]) == len(report["flows"])
    return report


# No shrinking: every example runs two subprocesses, so shrinking a failure takes many
# minutes; the failing example is printed whole instead.
@settings(max_examples=25, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(specs=st.lists(_request, min_size=1, max_size=6))
def test_arbitrary_requests_never_stop_the_report(tmp_path_factory, specs):
    work = tmp_path_factory.mktemp("untrusted")
    flows = [_flow(spec, 1_700_000_000.0 + 30.0 * repeat + index / 10)
             for index, spec in enumerate(specs) for repeat in range(REPEATS)]
    capture = write_flows(work / "capture.mitm", flows)
    report = _audit_and_report(capture, work)
    assert len(report["flows"]) == len(flows)


def test_each_hostile_host_is_kept_as_it_came(tmp_path):
    """The named cases, each in the Host header and as the request's host: every flow
    is in the report, with its host as the app wrote it."""
    flows = []
    for index, host in enumerate(HOSTILE_HOSTS):
        for repeat in range(REPEATS):
            when = 1_700_000_000.0 + 30.0 * repeat + index / 10
            flows.append(_flow({"host": "127.0.0.1", "host_header": host.encode(),
                                "authority": b"", "scheme": b"http", "port": 80,
                                "method": b"POST", "path": b"/v1/metrics?a=1", "headers": [],
                                "body": {"k": 1}}, when))
            flows.append(_flow({"host": host, "host_header": None, "authority": b"",
                                "scheme": b"https", "port": 443, "method": b"POST",
                                "path": b"/v1/metrics?a=1", "headers": [], "body": {"k": 1}},
                               when + 0.01))
    report = _audit_and_report(write_flows(tmp_path / "hostile.mitm", flows), tmp_path)
    assert len(report["flows"]) == len(flows)
    hosts = {flow["host"] for flow in report["flows"]}
    for host in HOSTILE_HOSTS:
        if host and host.strip() and "\x00" not in host:
            assert host in hosts, host
    assert "?a=1" in report["flows"][0]["url"]


def _regular_flows(count: int) -> list:
    return [_flow({"host": "metrics.example.com", "host_header": None, "authority": b"",
                   "scheme": b"https", "port": 443, "method": b"POST",
                   "path": b"/v1/metrics", "headers": [],
                   "body": {"k": i, "email": "jane.roe@example.org"}},
                  1_700_000_000.0 + 30.0 * i) for i in range(count)]


def test_a_damaged_store_record_does_not_stop_the_report(tmp_path):
    """A store record with a field of the wrong type (a damaged store, or one from
    another version): `phonehome report` writes a valid report, and that flow says why."""
    audited = _phonehome("audit", write_flows(tmp_path / "c.mitm", _regular_flows(8)), "-o",
                         tmp_path / "audit", "-q")
    assert audited.returncode == 0, audited.stderr
    store = tmp_path / "audit" / "audit.sqlite"
    db = sqlite3.connect(store)
    rows = db.execute("SELECT seq, record FROM flows ORDER BY seq LIMIT 2").fetchall()
    damaged = []
    for (seq, text), damage in zip(rows, ({"timestamp": "soon"}, {"events": 5, "host": None}),
                                   strict=True):
        record = {**json.loads(text), **damage}
        damaged.append(record["id"])
        db.execute("UPDATE flows SET record = ? WHERE seq = ?", (json.dumps(record), seq))
    db.commit()
    db.close()

    rebuilt = _phonehome("report", store, "-o", tmp_path / "again", "-q")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    report = json.loads((tmp_path / "again" / "audit.json").read_text())
    assert_valid_report(report)
    errors = {f["id"]: f["audit_error"] for f in report["flows"]}
    assert len(errors) == 8
    assert errors[damaged[0]] == {"stage": "store",
                                  "reason": "unusable timestamp in the store"}
    assert errors[damaged[1]] == {"stage": "store",
                                  "reason": "unusable host, events in the store"}
    assert sum(1 for e in errors.values() if e) == report["summary"]["audit_errors"] == 2
    for flow in report["flows"]:  # what was sound in a record is kept
        assert [f["type"] for f in flow["findings"]] == ["email"], flow["id"]
    # an unusable time becomes the one the store filed the flow under
    assert next(f for f in report["flows"] if f["id"] == damaged[0])["timestamp"] == 1.7e9
    times = [flow["timestamp"] for flow in report["flows"]]
    assert times == sorted(times)


def _records() -> list[dict]:
    device = {"key": "deviceId", "location": "$.deviceId", "fingerprint": "5e1f",
              "evidence": "d***"}
    return [
        {"id": f"f{i}", "timestamp": 1_700_000_000.0 + 30.0 * i, "method": "POST",
         "url": "https://metrics.example.com/v1/metrics", "host": "metrics.example.com",
         "purpose": "telemetry", "party": "first", "organization": None, "bytes_out": 10,
         "rule_ids": [], "events": [], "trigger": "unknown", "trigger_source": "none",
         "categories": [], "findings": [], "audit_error": None, "identifiers": [device]}
        for i in range(8)
    ]


def test_a_field_of_the_wrong_type_is_caught_where_the_record_is_read():
    """A record whose data a session stage could not use (a fingerprint that is not
    text) is repaired where it is read: that flow says why, and every stage runs on
    all the flows with what was sound."""
    from phonehome.analysis.session import build_report

    records = _records()
    records[3]["identifiers"] = [{**records[3]["identifiers"][0], "fingerprint": ["not", "text"]}]
    report = build_report(records)
    broken = next(f for f in report["flows"] if f["id"] == "f3")
    assert broken["audit_error"] == {"stage": "store",
                                     "reason": "unusable identifiers in the store"}
    others = [f for f in report["flows"] if f["id"] != "f3"]
    assert not any(f["audit_error"] for f in others)
    assert [entry["flows"] for entry in report["persistent_ids"]] == [
        ["f0", "f1", "f2", "f4", "f5", "f6", "f7"]]
    assert [c["count"] for c in report["cadence"]] == [8]  # the timeline took every flow
    assert report["summary"]["audit_errors"] == 1


def test_a_flow_that_breaks_a_session_stage_is_left_out_of_it():
    """When one flow's data makes a whole-session stage raise (here: a time no clock
    gives, which the store's reader would have reset), that flow alone is left out of
    the stage and says why; the stage runs on the others."""
    import contextlib

    import msgspec

    from phonehome.analysis.session import MemoryFlows, SessionReport, analyze

    class Unrepaired(MemoryFlows):
        def flows(self, kind):
            for record in self._records:
                yield msgspec.convert(record, kind)

    records = _records()
    records[5]["timestamp"] = float("inf")
    source = Unrepaired(records)
    analysis = analyze(source)
    report = SessionReport(analysis, lambda: contextlib.nullcontext(source))
    flows = {f["id"]: f for f in report.to_dict(decoded=False)["flows"]}
    assert flows["f5"]["audit_error"]["stage"] == "timeline"
    assert not any(f["audit_error"] for i, f in flows.items() if i != "f5")
    assert all(f["phase"] == "idle" for i, f in flows.items() if i != "f5")
    assert [entry["flows"] for entry in analysis.tail["persistent_ids"]] == [
        ["f0", "f1", "f2", "f3", "f4", "f6", "f7", "f5"]]  # the other stages took it
    assert [c["count"] for c in analysis.tail["cadence"]] == [7]
    assert analysis.head["summary"]["audit_errors"] == 1


def test_a_flow_the_timeline_cannot_keep_leaves_the_others_in_step():
    """A record whose events the timeline cannot file (a name verdict holding a map)
    is left out of it alone; the flows after it keep their own times and sizes."""
    from phonehome.analysis.session import build_report

    records = _records()
    records[7]["bytes_out"] = 777
    records[3]["events"] = [{"name": "x", "rule_id": "r",
                             "name_trigger": {"marks": [{"not": "hashable"}]}}]
    report = build_report(records)
    flows = {f["id"]: f for f in report["flows"]}
    assert flows["f3"]["audit_error"]["stage"] == "timeline"
    assert not any(f["audit_error"] for i, f in flows.items() if i != "f3")
    (cadence,) = report["cadence"]
    assert cadence["count"] == 7
    (phase,) = report["phases"]  # the last flow's own time and size, not its neighbour's
    assert (phase["end"], phase["flows"], phase["bytes"]) == (
        records[7]["timestamp"], 7, 6 * 10 + 777)


def _raw_request(proxy_port: int, target: str, host: bytes, body: bytes) -> bytes:
    """One request in absolute form through the proxy, with this Host header as-is."""
    request = (f"POST {target} HTTP/1.1\r\n".encode() + b"Host: " + host + b"\r\n"
               b"content-type: application/json\r\n"
               + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode() + body)
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=30) as sock:
        sock.sendall(request)
        answer = b""
        while len(answer) < 1 << 20:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


LIVE_HOSTS = [b"[", b"]", b"\x1b[2J", b"1]"]


@pytest.mark.parametrize("audit_process", ["true", "false"])
def test_hostile_host_headers_live_still_write_the_report(tmp_path, http_server, audit_process):
    reports = tmp_path / "reports"
    port = http_server.server_address[1]
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                         options={"phonehome_report_dir": str(reports),
                                  "phonehome_formats": "all",
                                  "phonehome_audit_process": audit_process}) as proxy:
        for repeat in range(REPEATS):  # repeated, so the cadence stage sees each host
            for index, host in enumerate(LIVE_HOSTS):
                answer = _raw_request(proxy.port, f"http://127.0.0.1:{port}/v1/metrics?n={index}",
                                      host, json.dumps({"n": index, "r": repeat}).encode())
                assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    assert proxy.process.returncode == 0, proxy.output()[-3000:]
    assert "could not write the report" not in proxy.output(), proxy.output()[-3000:]
    written = {path.name for path in reports.iterdir()}
    assert {"audit.json", "audit.md", "audit.html", "audit-flows.csv",
            "audit-findings.csv"} <= written, proxy.output()[-3000:]
    report = json.loads((reports / "audit.json").read_text())
    assert_valid_report(report)
    assert len(report["flows"]) == REPEATS * len(LIVE_HOSTS)
    assert {flow["host"] for flow in report["flows"]} == {h.decode() for h in LIVE_HOSTS}
    assert report["summary"]["audit_errors"] == 0

    again = _phonehome("report", reports / "audit.sqlite", "-o", tmp_path / "again", "-q")
    assert again.returncode == 0, again.stderr[-3000:]
    rebuilt = json.loads((tmp_path / "again" / "audit.json").read_text())
    assert_valid_report(rebuilt)
    assert len(rebuilt["flows"]) == len(report["flows"])
