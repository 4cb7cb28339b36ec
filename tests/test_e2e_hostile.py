"""Hostile input through a real mitmdump: every case is audited or refused cleanly,
the proxy keeps serving, and each audit stays bounded (checked on the report)."""

from __future__ import annotations

import gzip
import io
import json
import os
import zlib

import httpx
import pytest

from conftest import assert_valid_report
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


def _gzip_bomb(size: int) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz:
        chunk = b"\0" * MIB
        for _ in range(size // MIB):
            gz.write(chunk)
    return out.getvalue()


def _deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _million_keys() -> bytes:
    return ("{" + ",".join(f'"k{i}":{i}' for i in range(1_000_000)) + "}").encode()


CASES = {
    "gzip_bomb": (_gzip_bomb(1024 * MIB), {"content-type": "application/json",
                                          "content-encoding": "gzip"}),
    "deflate_bomb": (zlib.compress(b"\0" * (256 * MIB), 9),
                     {"content-type": "application/json", "content-encoding": "deflate"}),
    "body_100mb": (os.urandom(1024) * (100 * 1024), {"content-type": "application/json"}),
    "deep_json": (_deep_json(100_000), {"content-type": "application/json"}),
    "million_keys": (_million_keys(), {"content-type": "application/json"}),
    "invalid_utf8": (b'{"text": "\xff\xfe\xfa caf\xc3"}', {"content-type": "application/json"}),
    "garbage_json": (os.urandom(4096), {"content-type": "application/json"}),
    "garbage_protobuf": (os.urandom(4096), {"content-type": "application/x-protobuf"}),
    "truncated_gzip": (gzip.compress(b'{"a": 1, "email": "x@example.com"}')[:-12],
                       {"content-type": "application/json", "content-encoding": "gzip"}),
}


def test_hostile_bodies_are_audited_and_the_proxy_keeps_serving(tmp_path, http_server):
    reports = tmp_path / "reports"
    port = http_server.server_address[1]
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                         options={"phonehome_report_dir": str(reports),
                                  "phonehome_quiet": "true", "phonehome_formats": "json",
                                  "body_size_limit": "200m"}) as proxy:
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=120) as client:
            for name, (body, headers) in CASES.items():
                response = client.post(f"http://127.0.0.1:{port}/hostile/{name}",
                                       content=body, headers=headers)
                assert response.status_code == 200, name
                # and an ordinary request right after still goes through
                ok = client.post(f"http://127.0.0.1:{port}/ok/{name}", json={"after": name})
                assert ok.status_code == 200, name
    received = {r["path"] for r in http_server.received}
    assert {f"/hostile/{name}" for name in CASES} <= received  # observe mode never blocks
    report = json.loads((reports / "audit.json").read_text())
    assert_valid_report(report)
    flows = {f["url"].rsplit("/", 2)[-2] + "/" + f["url"].rsplit("/", 1)[-1]: f
             for f in report["flows"]}
    assert len(flows) == 2 * len(CASES)
    for name in CASES:
        flow = flows[f"hostile/{name}"]
        assert flow["audit_error"] is None, (name, flow["audit_error"])
        payload = flow["payload"]
        assert payload["decoded_size"] <= 16 * MIB, name  # the decompression cap held
        if name in ("gzip_bomb", "deflate_bomb", "body_100mb", "deep_json", "million_keys"):
            assert payload["truncated"], name
        if name in ("invalid_utf8", "garbage_json", "truncated_gzip"):
            assert payload["notes"] or payload["truncated"], name
        assert flows[f"ok/{name}"]["payload"]["kind"] == "json"
    assert report["summary"]["audit_errors"] == 0


def test_a_flood_of_made_up_hosts_methods_and_content_types_stays_bounded(tmp_path):
    """Hosts, methods and content types are the traffic's own words: the report keeps
    MAX_ROWS of each and counts the rest as "(other)", through the CLI."""
    from builders import http_flow, phonehome, write_flows
    from phonehome.analysis.tally import MAX_ROWS, OTHER

    count = MAX_ROWS + 150
    flows = [http_flow(method=f"M{i}".encode(), host=f"h{i}.example",
                       headers=((b"content-type", f"application/x-{i}".encode()),),
                       content=b'{"n": 1}')
             for i in range(count)]
    capture = write_flows(tmp_path / "flood.mitm", flows)
    out = tmp_path / "reports"
    done = phonehome("audit", capture, "-o", out, timeout=600,
                     env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0, done.stderr
    assert f"{count} flows to {MAX_ROWS}+ hosts" in done.stdout
    report = json.loads((out / "audit.json").read_text())
    assert_valid_report(report)
    summary = report["summary"]
    assert summary["flows"] == count
    for table in ("by_host", "by_method", "by_content_type"):
        counts = summary[table]
        assert len(counts) == MAX_ROWS + 1 and counts[OTHER] == count - MAX_ROWS, table
        assert sum(counts.values()) == count, table
    markdown = (out / "audit.md").read_text()
    assert OTHER in markdown and len(markdown) < 400_000
