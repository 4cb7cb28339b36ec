"""SIGTERM and SIGHUP to the whole process group stop phonehome the way Ctrl-C does:
the audit worker finishes on the proxy's request and the reports are written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from builders import long_capture
from conftest import assert_valid_report, wait_for_stored_flows
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e

FLOWS = 6


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("audit_process", ["true", "false"], ids=["worker", "inline"])
def test_group_signal_writes_the_report(tmp_path, http_server, signum, audit_process):
    reports = tmp_path / "reports"
    port = http_server.server_address[1]
    proxy = MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                            options={"phonehome_report_dir": str(reports),
                                     "phonehome_formats": "json,csv",
                                     "phonehome_audit_process": audit_process}).start()
    try:
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=30) as client:
            for index in range(FLOWS):
                client.post(f"http://127.0.0.1:{port}/v1/metrics/{index}",
                            json={"index": index}).raise_for_status()
        os.killpg(proxy.process.pid, signum)  # the group: mitmdump and its audit worker
        proxy.process.wait(timeout=120)
    finally:
        proxy.stop()
    assert proxy.process.returncode == 0, proxy.output()[-3000:]
    assert "could not write the report" not in proxy.output(), proxy.output()[-3000:]
    report = json.loads((reports / "audit.json").read_text())
    assert_valid_report(report)
    assert sorted(f["url"].rsplit("/", 1)[1] for f in report["flows"]) == [
        str(i) for i in range(FLOWS)]
    assert (reports / "audit-flows.csv").is_file()


@pytest.mark.parametrize("jobs", ["1", "2"], ids=["inline", "workers"])
def test_audit_stopped_by_sigterm_leaves_no_partial_report(tmp_path, jobs):
    capture = long_capture(tmp_path / "big.mitm")
    out = tmp_path / "out"
    with subprocess.Popen(
        [sys.executable, "-m", "phonehome", "audit", str(capture), "-o", str(out), "-q",
         "--jobs", jobs],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    ) as process:  # its pipes closed whatever happens
        try:
            assert wait_for_stored_flows(out / "audit.sqlite", 1, timeout=120) >= 1
            os.killpg(process.pid, signal.SIGTERM)  # the whole group: workers too
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    if process.returncode == 0:  # it finished before the signal came: a whole report
        assert_valid_report(json.loads((out / "audit.json").read_text()))
    else:
        assert process.returncode == 128 + signal.SIGTERM, stderr.decode()[-2000:]
        assert b"Traceback" not in stderr
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    for report in out.glob("audit*.json"):
        json.loads(report.read_text())  # whole, never cut off
