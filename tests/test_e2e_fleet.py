"""Fleet audit end to end: real mitmdump sensors writing to one real PostgreSQL server,
then `phonehome report postgresql://…` across them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from builders import SAMPLE
from conftest import ROOT, assert_valid_report
from phonehome.audit.store import store_key
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess, mitmdump_executable

pytestmark = pytest.mark.e2e

REQUESTS = 300
IDENTITY = ROOT / "examples" / "identity.yaml"


def _phonehome(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phonehome", *args], capture_output=True,
                          text=True, timeout=timeout)


def _sensor(tmp_path: Path, name: str, dsn: str) -> MitmdumpProcess:
    return MitmdumpProcess(tmp_path / name / "conf", scripts=[ADDON_SCRIPT], options={
        "phonehome_report_dir": str(tmp_path / name / "reports"),
        "phonehome_store": dsn,
        "phonehome_sensor": name,
        "phonehome_quiet": "true",
    })


def _send(proxy: MitmdumpProcess, port: int, sensor: str, count: int,
          answered: list[int], start: int = 0) -> None:
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=20) as client:
        for seq in range(start, start + count):
            body = {"metrics": [{"eventPayload": {
                "event": {"name": "client.mediaquality.event"}, "sensor": sensor, "seq": seq}}]}
            client.post(f"http://127.0.0.1:{port}/metrics/api/v1/clientmetrics",
                        json=body).raise_for_status()
            answered.append(seq)


def _report(dsn: str, out: Path, *extra: str) -> dict[str, Any]:
    result = _phonehome("report", dsn, "-o", str(out), "--format", "json", "-q", *extra)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "audit.json").read_text())
    assert_valid_report(report)
    return report


def _seqs(report: dict[str, Any], sensor: str) -> list[int]:
    return sorted(f["decoded"]["metrics"][0]["eventPayload"]["seq"]
                  for f in report["flows"] if f["sensor"] == sensor)


def _wait_for_count(dsn: str, sensor: str, at_least: int, timeout: float = 60) -> int:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(dsn) as connection:
            count = connection.execute(
                "SELECT count(*) FROM phonehome_flows WHERE sensor = %s", (sensor,)
            ).fetchone()[0]
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.25)


def test_three_sensors_one_store_and_one_killed(tmp_path, http_server, postgres):
    dsn = postgres.database()
    port = http_server.server_address[1]
    sensors = {name: _sensor(tmp_path, name, dsn) for name in ("s1", "s2", "s3")}
    answered: dict[str, list[int]] = {name: [] for name in sensors}
    for proxy in sensors.values():
        proxy.start()
    try:
        s2 = sensors["s2"]

        def run_s2() -> None:
            _send(s2, port, "s2", REQUESTS // 2, answered["s2"])
            # The proxy hands each answered flow to its audit worker through a queue
            # whose feeder thread writes a moment later; a kill inside that moment
            # loses the flow (README, Fleet). Kill it just after, mid-run for s1/s3.
            time.sleep(0.5)
            os.kill(s2.process.pid, signal.SIGKILL)
            s2.process.wait(timeout=10)

        threads = [threading.Thread(target=_send, args=(sensors[n], port, n, REQUESTS,
                                                        answered[n])) for n in ("s1", "s3")]
        threads.append(threading.Thread(target=run_s2))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)
        assert not any(thread.is_alive() for thread in threads)
        assert s2.process.returncode == -signal.SIGKILL
        # Its audit worker outlives it and writes what it was handed.
        _wait_for_count(dsn, "s2", len(answered["s2"]))
    finally:
        for proxy in sensors.values():
            proxy.stop()

    report = _report(dsn, tmp_path / "fleet")
    assert _seqs(report, "s1") == list(range(REQUESTS))
    assert _seqs(report, "s3") == list(range(REQUESTS))
    assert set(answered["s2"]) <= set(_seqs(report, "s2"))
    assert len(answered["s2"]) == REQUESTS // 2
    ids = [flow["id"] for flow in report["flows"]]
    assert len(ids) == len(set(ids))
    fleet = {entry["sensor"]: entry for entry in report["fleet"]["sensors"]}
    assert sorted(fleet) == ["s1", "s2", "s3"]
    assert fleet["s1"]["flows"] == REQUESTS and fleet["s1"]["hosts"] == ["127.0.0.1"]

    only_s1 = _report(dsn, tmp_path / "s1-only", "--sensor", "s1")
    assert {flow["sensor"] for flow in only_s1["flows"]} == {"s1"}
    assert len(only_s1["flows"]) == REQUESTS


def test_the_database_goes_away_and_comes_back(tmp_path, http_server, postgres):
    dsn = postgres.database()
    port = http_server.server_address[1]
    answered: list[int] = []
    proxy = _sensor(tmp_path, "roaming", dsn)
    with proxy:
        _send(proxy, port, "roaming", 50, answered)
        postgres.stop("fast")
        try:
            _send(proxy, port, "roaming", 100, answered, start=50)  # traffic goes on
        finally:
            postgres.start()
        postgres.wait_ready()
        _send(proxy, port, "roaming", 50, answered, start=150)
        assert _wait_for_count(dsn, "roaming", 200) == 200  # the spool is drained live
    assert proxy.process.returncode == 0
    assert answered == list(range(200))
    assert "unreachable" in proxy.output() and "queueing flows" in proxy.output()
    assert "is back" in proxy.output()
    report = _report(dsn, tmp_path / "after")
    assert _seqs(report, "roaming") == list(range(200))
    spools = list((tmp_path / "roaming" / "reports").glob(".phonehome-spool-*"))
    assert spools == []  # drained and removed


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    report = json.loads(json.dumps(report))
    report.pop("generated_at")
    report.pop("fleet", None)
    for flow in report["flows"]:
        flow.pop("sensor", None)
    return report


def test_sqlite_and_postgresql_give_the_same_report(tmp_path, postgres):
    dsn = postgres.database()
    reports = {}
    # One key for both: the shared store's, copied beside the SQLite store.
    (tmp_path / "sqlite").mkdir(mode=0o700)
    key_file = tmp_path / "sqlite" / ".phonehome-key"
    key_file.write_text(store_key(dsn).hex() + "\n")
    key_file.chmod(0o600)
    for name, store in (("sqlite", str(tmp_path / "sqlite" / "audit.sqlite")), ("pg", dsn)):
        out = tmp_path / name
        result = _phonehome("audit", str(SAMPLE), "--identity", str(IDENTITY), "--store", store,
                            "--sensor", "laptop", "-o", str(out), "--format", "json", "-q")
        assert result.returncode == 0, result.stderr
        reports[name] = json.loads((out / "audit.json").read_text())
    assert reports["pg"]["flows"] and all(f["sensor"] == "laptop" for f in reports["pg"]["flows"])
    assert _comparable(reports["sqlite"]) == _comparable(reports["pg"])
    again = _report(dsn, tmp_path / "again")
    assert _comparable(again) == _comparable(reports["pg"])


def test_diff_of_two_sensors_and_two_windows(tmp_path, postgres):
    dsn = postgres.database()
    for sensor, scale in (("old", "1"), ("new", "2")):
        result = _phonehome("audit", str(SAMPLE), "--store", dsn, "--sensor", sensor,
                            "--time-scale", scale, "-o", str(tmp_path / sensor), "-q")
        assert result.returncode == 0, result.stderr
    result = _phonehome("diff", dsn, "--old-sensor", "old", "--new-sensor", "new")
    assert result.returncode == 0, result.stderr
    assert "old" in result.stdout and "new" in result.stdout
    report = _report(dsn, tmp_path / "both")
    times = sorted(flow["timestamp"] for flow in report["flows"])
    middle = times[len(times) // 2]
    result = _phonehome("diff", dsn, "--old-until", str(middle), "--new-since", str(middle))
    assert result.returncode == 0, result.stderr


def test_a_dsn_password_is_never_printed(tmp_path, postgres):
    secret = "s3cret-pw"
    bad = f"postgresql://postgres:{secret}@127.0.0.1:{postgres.port}/no_such_database"
    result = _phonehome("report", bad, "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no_such_database" in result.stderr
    assert secret not in result.stdout + result.stderr
    mitmdump = subprocess.run(
        [mitmdump_executable(), "--listen-host", "127.0.0.1", "--listen-port", "0",
         "--set", f"confdir={tmp_path / 'conf'}", "-s", str(ADDON_SCRIPT),
         "--set", f"phonehome_store={bad}",
         "--set", f"phonehome_report_dir={tmp_path / 'reports'}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=90)
    assert mitmdump.returncode != 0
    assert "phonehome_store:" in mitmdump.stdout and "no_such_database" in mitmdump.stdout
    assert secret not in mitmdump.stdout
    assert "Traceback" not in mitmdump.stdout
