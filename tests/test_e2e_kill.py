"""The kill test: a real mitmdump, 200 flows, SIGKILL, then `phonehome report` on the store."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from conftest import assert_valid_report
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e

FLOWS = 200
COMMIT_EVERY = 100  # the store's default batch size


def test_sigkill_loses_at_most_the_last_batch(tmp_path, http_server):
    store = tmp_path / "reports" / "audit.sqlite"
    proxy = MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                            options={"phonehome_report_dir": str(tmp_path / "reports"),
                                     "phonehome_quiet": "true"})
    with proxy:
        port = http_server.server_address[1]
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=20) as client:
            for i in range(FLOWS):
                event = {"name": "client.mediaquality.event"}
                body = {"metrics": [{"eventPayload": {"event": event, "seq": i}}]}
                client.post(f"http://127.0.0.1:{port}/metrics/api/v1/clientmetrics",
                            json=body).raise_for_status()
        proxy.kill()
        assert proxy.process.returncode == -9
    assert not (tmp_path / "reports" / "audit.json").exists()  # done() never ran

    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "report", str(store), "-o", str(tmp_path / "out"),
         "--format", "json", "-q"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert_valid_report(report)
    sequence = [f["decoded"]["metrics"][0]["eventPayload"]["seq"] for f in report["flows"]]
    assert len(sequence) >= FLOWS - COMMIT_EVERY
    assert sequence == list(range(len(sequence)))  # a prefix, nothing missing in between
