"""End to end: what a person sees in an 80-column terminal, from the CLI and from a real
mitmdump (the one-screen summary, `--details`, the live running total)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import httpx
import pytest
from rich.cells import cell_len

from builders import SAMPLE, SAMPLE_IDENTITY, phonehome
from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess

pytestmark = pytest.mark.e2e

COLUMNS_80 = {**os.environ, "COLUMNS": "80", "LINES": "60"}


def _phonehome(*args: object) -> subprocess.CompletedProcess[str]:
    return phonehome(*args, timeout=300, env=COLUMNS_80)


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    out = tmp_path_factory.mktemp("terminal") / "reports"
    result = _phonehome("audit", SAMPLE, "--identity", SAMPLE_IDENTITY, "-o", out)
    assert result.returncode == 0, result.stderr
    return result, out, json.loads((out / "audit.json").read_text())


def test_audit_summary_fits_80_by_60(audited):
    result, out, report = audited
    lines = result.stdout.splitlines()
    assert len(lines) <= 60, result.stdout
    assert max(cell_len(line) for line in lines) <= 80
    assert lines[0].startswith("phonehome · Cisco Webex: 90 flows to 12 hosts")
    text = result.stdout
    assert "Vendor claims" in text and "What of yours went where" in text
    assert sum(line.startswith((" ✗ contradicted", " ✓ holds", " ? untested"))
               for line in lines) == len(report["claims"])
    assert report["digest"], "the sample sends personal data"
    for entry in report["digest"][:5]:
        assert f"{entry['label']} {entry['evidence']} →" in text
    assert "Amplitude" in text and "Sentry" in text  # the third parties
    assert f"Reports in {out}/" in text.replace("\n", "")
    assert "By host" not in text  # the tables wait for --details


def test_the_summary_points_to_the_report_files_it_wrote(audited, tmp_path):
    """The digest entries cut from the screen are in the files written: the HTML and
    Markdown by default, audit.json alone with `--format json`."""
    result, _out, _report = audited
    assert "more in the report files (audit.html, audit.md)" in result.stdout
    store = _out / "audit.sqlite"
    only_json = _phonehome("report", store, "-o", tmp_path, "--format", "json")
    assert only_json.returncode == 0, only_json.stderr
    assert re.search(r"… \d+ more in audit\.json", only_json.stdout), only_json.stdout
    assert "audit.html" not in only_json.stdout


def test_report_details_prints_every_table_without_cutting_key_columns(audited):
    _, out, report = audited
    result = _phonehome("report", out / "audit.sqlite", "-o", out.parent / "again", "--details")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(cell_len(line) for line in lines) <= 80
    for title in ("Vendor claims", "What of yours went where", "By host",
                  "When it phones home", "First party vs third party", "Findings"):
        assert title in result.stdout
    words = set(re.split(r"[\s│┃]+", result.stdout))
    for claim in report["claims"]:  # whole statements and reasons, wrapped
        assert set(claim["statement"].split()) <= words, claim["statement"]
        assert set(claim["reason"].split()) <= words, claim["reason"]
    assert set(report["summary"]["by_trigger"]) <= words  # trigger names whole
    shown_types = {g["type"] for g in report["finding_groups"][:20]}
    assert shown_types <= words  # finding types whole


def _send(proxy: MitmdumpProcess, port: int) -> None:
    with httpx.Client(proxy=proxy.url, trust_env=False, timeout=20) as client:
        client.post(f"http://127.0.0.1:{port}/metrics/api/v1/clientmetrics",
                    json={"metrics": [{"email": "jane.roe@example.org"}]}).raise_for_status()
        client.post(f"http://localhost:{port}/v1/events",
                    json={"events": [{"user_id": "jane.roe@example.org"}]}).raise_for_status()


def _wait_for(proxy: MitmdumpProcess, pattern: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = proxy.output()
        if re.search(pattern, output):
            return output
        time.sleep(0.1)
    raise AssertionError(f"no {pattern!r} in:\n{proxy.output()[-3000:]}")


@pytest.mark.parametrize("audit_process", ["true", "false"])
def test_live_running_total_and_one_screen_summary(tmp_path, http_server, audit_process):
    port = http_server.server_address[1]
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                         options={"phonehome_report_dir": str(tmp_path / "reports"),
                                  "phonehome_formats": "json",
                                  "phonehome_total_interval": "0.05",
                                  "phonehome_audit_process": audit_process},
                         env={"COLUMNS": "80"}) as proxy:
        _send(proxy, port)
        _wait_for(proxy, r"── total: 2 flows")
    output = proxy.output()
    assert proxy.process.returncode == 0, output
    totals = [line for line in output.splitlines() if line.startswith("── total: ")]
    # each destination is new once, in the total that first saw it
    news = re.findall(r"new: ([^)]*)\)", "\n".join(totals))
    assert sorted(h for n in news for h in n.split(", ")) == ["127.0.0.1", "localhost"]
    assert re.search(r"── total: 2 flows \(\+\d\), \d+ findings", totals[-1])
    summary = output[output.index("phonehome: 2 flows to 2 hosts"):]
    assert "Reports in " in summary and "By host" not in summary
    assert len(summary.splitlines()) <= 60


def test_live_details_prints_the_tables(tmp_path, http_server):
    port = http_server.server_address[1]
    with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT],
                         options={"phonehome_report_dir": str(tmp_path / "reports"),
                                  "phonehome_formats": "json", "phonehome_details": "true",
                                  "phonehome_total_interval": "0"},
                         env={"COLUMNS": "80"}) as proxy:
        _send(proxy, port)
        _wait_for(proxy, r"POST .*localhost")
    output = proxy.output()
    assert "── total:" not in output  # 0 turns the running total off
    summary = output[output.index("phonehome: 2 flows to 2 hosts"):]
    assert "By host" in summary and "Findings" in summary and "Reports in " in summary
