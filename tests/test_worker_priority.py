"""The audit worker yields the CPU to the proxy: a real mitmdump, its audit child."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess
from phonehome.worker import WORKER_NICENESS

pytestmark = pytest.mark.e2e


def _stored_flows(store: Path) -> int:
    if not store.exists():
        return 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT count(*) FROM flows").fetchone()[0])
    except sqlite3.OperationalError:  # the worker is still creating the tables
        return 0
    finally:
        db.close()


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
        store = tmp_path / "reports" / "audit.sqlite"
        deadline = time.monotonic() + 60
        while _stored_flows(store) < 1 and time.monotonic() < deadline:  # the worker is at work
            time.sleep(0.1)
        mitmdump = proxy.process.pid
        workers = [pid for pid in _children(mitmdump)
                   if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(workers) == 1
        proxy_nice = os.getpriority(os.PRIO_PROCESS, mitmdump)
        assert os.getpriority(os.PRIO_PROCESS, workers[0]) == min(19, proxy_nice + WORKER_NICENESS)
    report = (tmp_path / "reports" / "audit.json").read_text()
    assert '"client.startup.end"' in report  # the niced worker still audited the flow
