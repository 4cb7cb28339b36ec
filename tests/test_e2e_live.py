"""End to end: a real mitmdump with the addon, real HTTP and HTTPS through it,
then the same traffic saved with -w and audited offline with the CLI."""

from __future__ import annotations

import gzip
import json
import os
import ssl
import stat
import subprocess
import sys

import httpx
import pytest

from conftest import assert_valid_report
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess
from phonehome.simulate.vendor_server import VendorServer

pytestmark = pytest.mark.e2e

IDENTITY = "email: jane.roe@example.org\nname: Jane Roe\n"


def _send_traffic(proxy: MitmdumpProcess, http_port: int, https_port: int) -> None:
    trusted = ssl.create_default_context(cafile=str(proxy.ca_cert))
    with httpx.Client(proxy=proxy.url, verify=trusted, trust_env=False, timeout=20) as client:
        client.post(f"http://127.0.0.1:{http_port}/metrics/api/v1/clientmetrics?uid=42",
                    json={"metrics": [{"eventPayload": {"event": {"name": "client.muted"},
                                                        "origin": {"clientInfo": {
                                                            "os": "mac"}}}}]}).raise_for_status()
        client.post(f"https://localhost:{https_port}/upload",
                    content=gzip.compress(b'{"user":{"email":"jane.roe@example.org"}}'),
                    headers={"content-type": "application/json",
                             "content-encoding": "gzip"}).raise_for_status()
        client.get(f"https://localhost:{https_port}/v1/region",
                   headers={"x-device": "dev-1"}).raise_for_status()


def _essence(report):
    return sorted(
        (f["method"], f["url"], f["trigger"], f["purpose"], tuple(f["categories"]),
         tuple(sorted((x["type"], x["location"], x["encoding"]) for x in f["findings"])))
        for f in report["flows"]
    )


def test_live_and_offline_reports_agree(tmp_path, http_server):
    identity = tmp_path / "identity.yaml"
    identity.write_text(IDENTITY)
    live_dir, offline_dir = tmp_path / "live", tmp_path / "offline"
    capture = tmp_path / "capture.mitm"
    with VendorServer(tmp_path / "vendor.jsonl") as vendor:
        with MitmdumpProcess(
            tmp_path / "conf", scripts=[ADDON_SCRIPT], extra_args=["-w", str(capture)],
            options={"phonehome_report_dir": str(live_dir),
                     "phonehome_identity": str(identity), "ssl_insecure": "true"},
        ) as proxy:
            _send_traffic(proxy, http_server.server_address[1], vendor.port)
        assert proxy.process.returncode == 0, proxy.output()
    assert len(http_server.received) == 1

    assert (live_dir / "audit.json").is_file(), proxy.output()[-3000:]
    live = json.loads((live_dir / "audit.json").read_text())
    assert_valid_report(live)
    assert stat.S_IMODE(os.stat(live_dir / "audit.json").st_mode) == 0o600
    assert [f["method"] for f in live["flows"]] == ["POST", "POST", "GET"]
    first, upload, region = live["flows"]
    assert first["url"].endswith("/metrics/api/v1/clientmetrics?uid=42")
    assert first["host"] == "127.0.0.1" and first["status"] == 200
    assert upload["url"].startswith("https://localhost:")
    assert upload["payload"]["kind"] == "json"
    assert any(f["type"] == "identity_match" for f in upload["findings"])
    assert all("jane.roe@example.org" not in json.dumps(f) for f in live["flows"])
    assert live["summary"]["flows"] == 3
    # The live view printed one line per flow, then the summary and where the reports are.
    assert "Reports in " in proxy.output()

    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "audit", str(capture), "-o", str(offline_dir),
         "--format", "json", "--identity", str(identity), "-q"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    offline = json.loads((offline_dir / "audit.json").read_text())
    assert_valid_report(offline)
    assert _essence(offline) == _essence(live)
    assert [f["id"] for f in offline["flows"]] == [f["id"] for f in live["flows"]]
