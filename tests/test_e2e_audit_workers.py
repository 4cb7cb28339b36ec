"""`phonehome audit` on worker processes that read the capture themselves: every
kind of flow, broken files, flows mitmproxy cannot rebuild and older flow formats
give the serial audit's report and warnings, in the same order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy.io import tnetstring

from builders import FLOWS, http_flow, long_capture, write_flows
from phonehome.capture.observe import observe_request
from phonehome.commands.audit import PARALLEL_MIN_BYTES, default_jobs

pytestmark = pytest.mark.e2e


def _audit(capture: Path, out: Path, store: Path, jobs: str) -> tuple[dict, list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "audit", str(capture), "-o", str(out),
         "--store", str(store), "--format", "json", "-q", "--jobs", jobs],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "audit.json").read_text())
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    return report, warnings


def _serial_and_parallel(capture: Path, tmp_path: Path) -> tuple[tuple, tuple]:
    # one store folder, so one fingerprint key
    serial = _audit(capture, tmp_path / "serial", tmp_path / "store" / "a.sqlite", "1")
    parallel = _audit(capture, tmp_path / "parallel", tmp_path / "store" / "a.sqlite", "2")
    return serial, parallel


def _flows(count: int) -> list:
    kinds = list(FLOWS.values())
    return [kinds[i % len(kinds)]() for i in range(count)]


def _frames(path: Path) -> list[bytes]:
    """Each flow of a capture as it is written: its length prefix, value and tag."""
    data = path.read_bytes()
    out, position = [], 0
    while position < len(data):
        colon = data.index(b":", position)
        end = colon + 1 + int(data[position:colon]) + 1
        out.append(data[position:end])
        position = end
    return out


def test_every_kind_of_flow_gives_the_serial_report(tmp_path):
    capture = write_flows(tmp_path / "all.mitm", _flows(150))
    (serial, serial_warnings), (parallel, parallel_warnings) = \
        _serial_and_parallel(capture, tmp_path)
    assert len(serial["flows"]) > 120  # tcp, udp and dns flows hold none
    assert parallel["flows"] == serial["flows"]
    assert parallel["summary"] == serial["summary"]
    assert parallel_warnings == serial_warnings == []


def test_a_capture_cut_off_mid_flow_breaks_where_the_serial_reader_says(tmp_path):
    whole = write_flows(tmp_path / "whole.mitm", _flows(90))
    capture = tmp_path / "cut.mitm"
    capture.write_bytes(whole.read_bytes()[:-700])
    (serial, serial_warnings), (parallel, parallel_warnings) = \
        _serial_and_parallel(capture, tmp_path)
    assert len(serial_warnings) == 1 and "broken after 89 flow(s)" in serial_warnings[0]
    assert parallel_warnings == serial_warnings
    assert parallel["flows"] == serial["flows"]


def test_a_flow_mitmproxy_cannot_rebuild_stops_the_file_there(tmp_path):
    flows = _flows(80)
    flows[40].request.port = 443
    capture = write_flows(tmp_path / "bad.mitm", flows)
    frames = _frames(capture)
    broken = frames[40].replace(b"4:port;3:443#", b"4:port;3:443,", 1)  # bytes, not an int
    assert broken != frames[40]
    capture.write_bytes(b"".join([*frames[:40], broken, *frames[41:]]))
    (serial, serial_warnings), (parallel, parallel_warnings) = \
        _serial_and_parallel(capture, tmp_path)
    assert len(serial_warnings) == 1 and "broken after 40 flow(s)" in serial_warnings[0]
    assert parallel_warnings == serial_warnings
    assert parallel["flows"] == serial["flows"]


def test_an_older_flow_format_is_migrated_in_order(tmp_path):
    capture = write_flows(tmp_path / "new.mitm", _flows(60))
    older = []
    for frame in _frames(capture):
        state = tnetstring.loads(frame)
        if state["type"] == "http" and not state["websocket"]:
            state["version"] = 20  # mitmproxy 11/12 migrate 20 → 21
        older.append(tnetstring.dumps(state))
    capture.write_bytes(b"".join(older))
    (serial, serial_warnings), (parallel, parallel_warnings) = \
        _serial_and_parallel(capture, tmp_path)
    assert len(serial["flows"]) > 50
    assert parallel["flows"] == serial["flows"]
    assert parallel_warnings == serial_warnings == []


def test_workers_start_by_default_only_for_large_captures(tmp_path):
    small = tmp_path / "small.mitm"
    small.write_bytes(b"0:}")
    large = tmp_path / "large.mitm"
    with large.open("wb") as fo:
        fo.truncate(PARALLEL_MIN_BYTES)  # sparse: only its size counts
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert default_jobs([small]) == 1
    assert default_jobs([large]) == min(cores or 1, 64)
    assert default_jobs([small, large]) == default_jobs([large])


_names = st.sampled_from([b"Content-Type", b"content-type", b"CONTENT-TYPE", b"Content-Encoding",
                          b"content-encoding", b"Host", b"Cookie", b"X-A", "Zoë".encode(),
                          b"\xff\xfe", b"content-type "])
_values = st.one_of(st.sampled_from([b"application/json", b"gzip", b"", b"a, b", b"\xff"]),
                    st.binary(max_size=8))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_names, _values), max_size=6))
def test_observed_headers_are_what_mitmproxy_reads(fields):
    flow = http_flow(method=b"POST", headers=tuple(fields))
    observation = observe_request(flow)
    headers = flow.request.headers
    assert observation.headers == list(headers.items(multi=True))
    assert observation.content_type == headers.get("content-type", "")
    assert observation.content_encoding == headers.get("content-encoding", "")


def test_the_pool_closes_after_a_signal_killed_its_idle_workers():
    """A signal sent to the whole process group (SIGTERM, a closed terminal) kills the
    workers too. An idle worker then dies inside its wait for work; closing the pool
    must still return (multiprocessing.Pool's terminate() waited forever on the queue
    lock that worker held)."""
    import multiprocessing
    import signal
    import threading

    from builders import make_obs
    from phonehome.audit.parallel import Job, WorkerPool
    from phonehome.audit.pipeline import AuditSettings

    pool = WorkerPool(AuditSettings(), 2)
    closer = threading.Thread(target=pool.close, daemon=True)
    try:
        job = Job("t", 1, observations=(make_obs("https://h.example/m", {"a": 1}),))
        (((_, done),),) = list(pool.run([job]))
        assert len(done.records) == 1  # the workers are up, and now idle
        workers = multiprocessing.active_children()
        assert workers  # started when there is work: one or two
        for worker in workers:
            os.kill(worker.pid, signal.SIGTERM)
            worker.join(timeout=30)
        closer.start()
        closer.join(timeout=60)
        assert not closer.is_alive(), "WorkerPool.close() hangs"
    finally:
        for worker in multiprocessing.active_children():
            worker.kill()


def _spawned_workers(pid: int) -> list[int]:
    """The audit's worker processes: its children that multiprocessing spawned."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in command:
                found.append(int(child))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_a_worker_killed_alone_ends_the_audit_with_a_message(tmp_path):
    """A worker the kernel kills (out of memory) stops the audit with one line saying
    where the flows audited so far are, not a traceback; they stay in the store."""
    import signal
    import time

    from conftest import wait_for_stored_flows

    capture = long_capture(tmp_path / "big.mitm")
    out = tmp_path / "out"
    with subprocess.Popen(
        [sys.executable, "-m", "phonehome", "audit", str(capture), "-o", str(out), "-q",
         "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,  # so a failure below can stop its workers too
    ) as process:
        try:
            assert wait_for_stored_flows(out / "audit.sqlite", 1, timeout=120) >= 1
            deadline = time.monotonic() + 30
            while not (workers := _spawned_workers(process.pid)):
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
            os.kill(workers[0], signal.SIGKILL)
            _, stderr = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    text = stderr.decode()
    assert process.returncode == 1, text[-2000:]
    assert "an audit worker process stopped" in text and "Traceback" not in text
    assert wait_for_stored_flows(out / "audit.sqlite", 1, timeout=10) >= 1
