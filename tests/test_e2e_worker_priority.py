"""The audit worker yields the CPU to the proxy: a real mitmdump, its audit child."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from conftest import wait_for_stored_flows
from phonehome.audit.worker import WORKER_NICENESS
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:  # field 4: the parent's pid
                children.append(int(entry.name))
    return children


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_audit_worker_runs_at_a_lower_priority_than_the_proxy(tmp_path, http_server):
    options = {"phonehome_report_dir": str(tmp_path / "reports"), "phonehome_quiet": "true",
               "phonehome_formats": "json"}
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT], options=options) as proxy:
        url = f"http://127.0.0.1:{http_server.server_address[1]}/metrics"
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=20) as client:
            client.post(url, json={"name": "client.startup.end"}).raise_for_status()
        assert wait_for_stored_flows(tmp_path / "reports" / "audit.sqlite", 1) == 1  # at work
        mitmdump = proxy.process.pid
        workers = [pid for pid in _children(mitmdump)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 1
        proxy_nice = os.getpriority(os.PRIO_PROCESS, mitmdump)
        assert os.getpriority(os.PRIO_PROCESS, workers[0]) == min(19, proxy_nice + WORKER_NICENESS)
    report = (tmp_path / "reports" / "audit.json").read_text()
    assert '"client.startup.end"' in report  # the niced worker still audited the flow
