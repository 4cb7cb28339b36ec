"""Capture files and output folders through the real CLI and mitmdump: a HAR that is
not one exits 2, HAR entries missing optional fields are read, folders are owner-only."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import httpx
import pytest

from builders import http_flow, write_flows
from conftest import assert_valid_report
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e


def _phonehome(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("content", "reason"), [
    (b"{this is not json", "not a HAR file: not JSON at line 1, column 2"),
    (b"{\"log\": {\"entries\": [{\"request\": ", "not a HAR file: not JSON"),
    (b'{"log": 5}', "not a HAR file: JSON, but no log.entries list"),
    (b'{"log": {"entries": "many"}}', "not a HAR file: JSON, but no log.entries list"),
    (b"{\xff\xfe}", "not a HAR file: not JSON"),
])
def test_a_har_that_is_not_one_exits_2_naming_the_file(tmp_path, content, reason):
    path = tmp_path / "capture.har"
    path.write_bytes(content)
    result = _phonehome("audit", path, "-o", tmp_path / "out", "-q")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"phonehome audit: {path}: ") and reason in lines[0]
    assert not (tmp_path / "out" / "audit.json").exists()


def _entry(**fields):
    entry = {
        "startedDateTime": "2026-11-29T08:00:00.000Z", "time": 10,
        "request": {"method": "POST", "url": "https://metrics.example.com/v1/m",
                    "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "content-type", "value": "application/json"}],
                    "postData": {"mimeType": "application/json", "text": '{"a":1}'}},
        "response": {"status": 204, "httpVersion": "HTTP/1.1", "headers": [],
                     "content": {"size": 0, "text": ""}},
    }
    for name, value in fields.items():
        if value is None:
            entry.pop(name, None)
        else:
            entry[name] = value
    return entry


def test_har_entries_missing_optional_fields_are_read(tmp_path):
    bare_request = {"method": "GET", "url": "https://metrics.example.com/v1/ping?x=1"}
    form = {"method": "POST", "url": "https://metrics.example.com/v1/form",
            "headers": [{"name": "content-type",
                         "value": "application/x-www-form-urlencoded"}],
            "postData": {"params": [{"name": "email", "value": "jane.roe@example.org"}]}}
    entries = [
        _entry(time=None),
        _entry(response=None),
        _entry(startedDateTime=None, cache=None, timings=None),
        _entry(request=bare_request, time="slow"),
        _entry(request=form, response={"status": "ok"}),
        _entry(request={"method": "GET"}),  # no URL: nothing to audit
        "not an entry",
    ]
    path = tmp_path / "capture.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": entries}}))
    result = _phonehome("audit", path, "-o", tmp_path / "out", "-q")
    assert result.returncode == 0, result.stderr
    warnings = result.stderr.strip().splitlines()
    assert warnings == [f"phonehome audit: warning: {path}: entry 5 skipped: no request.url",
                        f"phonehome audit: warning: {path}: entry 6 skipped: not a JSON object"]
    assert "KeyError" not in result.stderr
    report = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert_valid_report(report)
    urls = [f["url"] for f in report["flows"]]
    assert len(urls) == 5
    assert "https://metrics.example.com/v1/ping?x=1" in urls
    form_flow = next(f for f in report["flows"] if f["url"].endswith("/v1/form"))
    assert form_flow["payload"]["kind"] == "form"  # the params, form-encoded
    assert list(form_flow["decoded"]) == ["email"]
    # an entry without its start takes the one before it
    assert len({f["timestamp"] for f in report["flows"][:3]}) == 1


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_audit_creates_the_output_folder_owner_only(tmp_path):
    capture = write_flows(tmp_path / "c.mitm", [http_flow(method=b"POST", content=b"{}")])
    out = tmp_path / "new" / "reports"
    result = _phonehome("audit", capture, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    assert _mode(out) == 0o700
    again = _phonehome("report", out / "audit.sqlite", "-o", tmp_path / "rebuilt", "-q")
    assert again.returncode == 0, again.stderr
    assert _mode(tmp_path / "rebuilt") == 0o700
    existing = tmp_path / "shared"
    existing.mkdir()
    existing.chmod(0o755)
    assert _phonehome("audit", capture, "-o", existing, "-q").returncode == 0
    assert _mode(existing) == 0o755  # an existing folder is the auditor's choice


def test_live_report_folder_is_owner_only(tmp_path, http_server):
    reports = tmp_path / "live" / "reports"
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                         options={"phonehome_report_dir": str(reports),
                                  "phonehome_formats": "json",
                                  # elsewhere: the socket's folder is made 0700 on its own
                                  "phonehome_marker_socket": str(tmp_path / "m.sock")}) as proxy:
        with httpx.Client(proxy=proxy.url, trust_env=False, timeout=30) as client:
            client.post(f"http://127.0.0.1:{http_server.server_address[1]}/v1/m",
                        json={"a": 1}).raise_for_status()
    assert (reports / "audit.json").is_file(), proxy.output()[-3000:]
    assert _mode(reports) == 0o700
