"""`phonehome audit` through the real CLI: bad input exits 2 with one line; no traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mitmproxy import io
from mitmproxy.test import tflow, tutils

from conftest import assert_valid_report

pytestmark = pytest.mark.e2e


def _phonehome(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


def _capture(path, bodies):
    with path.open("wb") as fo:
        writer = io.FlowWriter(fo)
        for i, body in enumerate(bodies):
            request = tutils.treq(method=b"POST", path=f"/api/{i}".encode(), content=body,
                                  headers=((b"content-type", b"application/json"),))
            writer.add(tflow.tflow(req=request, resp=True))
    return path


@pytest.mark.parametrize(("make", "reason"), [
    (lambda d: d / "missing.mitm", "no such file"),
    (lambda d: (d / "folder").mkdir() or d / "folder", "is a directory"),
    (lambda d: (d / "notes.txt").write_text("just text\n") and d / "notes.txt",
     "not a mitmproxy flow file or HAR file"),
    (lambda d: (d / "empty.har").write_bytes(b"") or d / "empty.har", "empty file"),
])
def test_bad_capture_exits_2_with_one_line(tmp_path, make, reason):
    path = make(tmp_path)
    result = _phonehome("audit", path, "-o", tmp_path / "out")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] and reason in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_output_folder_that_is_a_file_exits_2(tmp_path):
    capture = _capture(tmp_path / "a.mitm", [b'{"a":1}'])
    blocker = tmp_path / "out"
    blocker.write_text("I am a file")
    result = _phonehome("audit", capture, "-o", blocker)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and str(blocker) in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "reason"), [
    (["--format", "pdf"], "unknown report format pdf"),
    (["--time-scale", "0"], "--time-scale must be greater than 0"),
    (["--fail-on", "catastrophic"], "invalid choice"),
])
def test_bad_options_exit_2(tmp_path, args, reason):
    capture = _capture(tmp_path / "a.mitm", [b"{}"])
    result = _phonehome("audit", capture, "-o", tmp_path / "out", *args)
    assert result.returncode == 2 and reason in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_writes_every_format_and_a_schema_valid_report(tmp_path):
    capture = _capture(tmp_path / "a.mitm", [b'{"os":"macOS","osVersion":"14.4.1"}',
                                             b'{"email":"someone@example.com"}'])
    result = _phonehome("audit", capture, "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert {"audit.json", "audit.md", "audit.html", "audit-flows.csv",
            "audit-findings.csv", "audit.sqlite"} <= set(names)
    report = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert_valid_report(report)
    assert report["summary"]["flows"] == 2
    assert report["inputs"]["captures"] == [str(capture)]
    assert "Reports in " in result.stdout and "audit.json" in result.stdout


@pytest.mark.parametrize(("body", "fail_on", "code"), [
    (b'{"email":"someone@example.com"}', "medium", 3),  # personal data is never below medium
    (b'{"counter":1}', "info", 0),                        # no finding at all
])
def test_fail_on(tmp_path, body, fail_on, code):
    capture = _capture(tmp_path / "a.mitm", [body])
    result = _phonehome("audit", capture, "-o", tmp_path / "out", "--fail-on", fail_on, "-q")
    assert result.returncode == code, result.stderr


def test_report_rebuilds_from_the_store(tmp_path):
    capture = _capture(tmp_path / "a.mitm", [b'{"a":1}', b'{"b":2}', b'{"c":3}'])
    assert _phonehome("audit", capture, "-o", tmp_path / "out", "-q").returncode == 0
    result = _phonehome("report", tmp_path / "out" / "audit.sqlite", "-o", tmp_path / "again",
                        "--format", "json", "-q")
    assert result.returncode == 0, result.stderr
    first = json.loads((tmp_path / "out" / "audit.json").read_text())
    again = json.loads((tmp_path / "again" / "audit.json").read_text())
    assert [f["id"] for f in again["flows"]] == [f["id"] for f in first["flows"]]
    assert again["summary"] == first["summary"]


def test_parallel_audit_gives_the_serial_report(tmp_path):
    bodies = [json.dumps({"metrics": [{"eventPayload": {"event": {"name": f"client.e{i % 5}"},
                                                         "userEmail": f"u{i}@example.com"}}]}
                         ).encode() for i in range(120)]
    capture = _capture(tmp_path / "a.mitm", bodies)
    reports = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        # one store folder, so one fingerprint key (it sits beside the store)
        result = _phonehome("audit", capture, "-o", out, "--store", tmp_path / "audit.sqlite",
                            "--format", "json", "-q", "--jobs", jobs)
        assert result.returncode == 0, result.stderr
        reports[jobs] = json.loads((out / "audit.json").read_text())
    assert reports["2"]["flows"] == reports["1"]["flows"]
    assert reports["2"]["summary"] == reports["1"]["summary"]


@pytest.mark.parametrize("reveal", [False, True])
def test_evidence_is_redacted_unless_reveal_is_asked_for(tmp_path, reveal):
    capture = _capture(tmp_path / "a.mitm", [b'{"email":"jane.roe@example.org"}'])
    args = ["audit", capture, "-o", tmp_path / "out", "--format", "json,csv", "-q"]
    result = _phonehome(*args, *(["--reveal"] if reveal else []))
    assert result.returncode == 0, result.stderr
    written = "".join(p.read_text() for p in (tmp_path / "out").glob("audit*.*")
                      if p.suffix in (".json", ".csv"))
    assert ("jane.roe@example.org" in written) is reveal
    report = json.loads((tmp_path / "out" / "audit.json").read_text())
    (finding,) = [f for f in report["flows"][0]["findings"] if f["type"] == "email"]
    assert finding["evidence"] != "jane.roe@example.org"
    assert finding.get("value") == ("jane.roe@example.org" if reveal else None)
