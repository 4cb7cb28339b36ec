"""`phonehome demo` end to end through the real CLI: the report against the
simulator's own ground truth, both ways, and a clean stop on Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import assert_valid_report
from ground_truth import findings_at, matches
from phonehome.audit.store import fingerprint_key

pytestmark = pytest.mark.e2e

# 100× keeps the timeline's shape to within scheduling jitter (cadence is checked there).
FULL_SPEED = "100"
FAST_SPEED = "300"
SOME_LEAKS = "identity_plain,identity_hashed,muted_audio,mac_address"


def _demo(out: Path, leaks: str, speed: str, install_key: Path | None = None) -> dict:
    if install_key is not None:  # the same install: its fingerprint key beside the store
        out.mkdir(mode=0o700, parents=True)
        shutil.copy2(install_key, out / install_key.name)
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "demo", "-o", str(out), "--speed", speed,
         "--leaks", leaks],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Reports in {out}/" in result.stdout
    report = json.loads((out / "audit.json").read_text())
    truth = json.loads((out / "ground_truth.json").read_text())
    return {"report": report, "truth": truth, "stdout": result.stdout, "out": out}


@pytest.fixture(scope="module")
def install_key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("install")
    fingerprint_key(folder)
    return folder / ".phonehome-key"


@pytest.fixture(scope="module")
def all_leaks(tmp_path_factory, install_key):
    return _demo(tmp_path_factory.mktemp("all") / "reports", "all", FULL_SPEED, install_key)


@pytest.fixture(scope="module")
def some_leaks(tmp_path_factory, install_key):
    return _demo(tmp_path_factory.mktemp("some") / "reports", SOME_LEAKS, FAST_SPEED,
                 install_key)


def test_demo_writes_every_format_and_a_valid_report(all_leaks, tmp_path):
    report = all_leaks["report"]
    assert_valid_report(report)
    assert report["summary"]["flows"] == all_leaks["truth"]["requests"]
    written = {p.name for p in all_leaks["out"].iterdir()}
    assert {"audit.json", "audit.md", "audit.html", "audit-flows.csv", "audit-findings.csv",
            "identity.yaml", "ground_truth.json"} <= written
    assert all(p.stat().st_mode & 0o077 == 0 for p in all_leaks["out"].iterdir())
    assert "Vendor claims" in all_leaks["stdout"]


def test_every_planted_leak_is_reported_with_its_encoding(all_leaks):
    report, truth = all_leaks["report"], all_leaks["truth"]
    assert set(truth["leaks_planted"]) == {
        "identity_plain", "identity_url", "identity_base64", "identity_hashed",
        "stack_username", "meeting_title", "muted_audio", "public_ip", "mac_address"}
    missing = []
    for entry in truth["planted"]:
        found = findings_at(report, entry["host"], entry["path"], entry["location"])
        if not any(matches(entry, f) for f in found):
            missing.append((entry["leak"], entry["host"], entry["path"], entry["location"],
                            [(f["type"], f["encoding"]) for f in found]))
    assert missing == []
    # The planted evidence is redacted: no identity value appears in the report.
    identity_values = [v for v in _identity_values(all_leaks) if len(v) >= 6]
    text = json.dumps(report)
    assert [v for v in identity_values if v in text] == []


def _identity_values(run: dict) -> list[str]:
    identity = yaml.safe_load((run["out"] / "identity.yaml").read_text())
    values = []
    for entry in identity.values():
        values.extend(entry if isinstance(entry, list) else [entry])
    return [str(v) for v in values]


def test_muted_audio_is_flagged_high_in_both_runs_that_plant_it(all_leaks, some_leaks):
    for run in (all_leaks, some_leaks):  # both plant muted_audio
        high = [f for flow in run["report"]["flows"] for f in flow["findings"]
                if f["type"] == "audio_level" and f["severity"] == "high"]
        assert high
        assert all("muted" in f["reason"] for f in high)


def test_leaks_not_planted_are_not_reported(all_leaks, some_leaks):
    report, truth = some_leaks["report"], some_leaks["truth"]
    assert set(truth["leaks_not_planted"]) == {
        "identity_url", "identity_base64", "stack_username", "meeting_title", "public_ip"}
    planted_somewhere = [e for e in all_leaks["truth"]["planted"]
                         if e["leak"] in truth["leaks_not_planted"]]
    assert planted_somewhere
    wrongly_reported = []
    for entry in planted_somewhere:
        found = findings_at(report, entry["host"], entry["path"], entry["location"])
        wrongly_reported.extend((entry["leak"], f["type"], f["encoding"]) for f in found
                                if matches(entry, f))
    assert wrongly_reported == []
    for entry in truth["planted"]:  # and the ones that were planted still are
        found = findings_at(report, entry["host"], entry["path"], entry["location"])
        assert any(matches(entry, f) for f in found), entry


def test_claims_verdicts_point_at_real_flows(all_leaks):
    report = all_leaks["report"]
    flow_ids = {f["id"] for f in report["flows"]}
    verdicts = {c["check"]: c["verdict"] for c in report["claims"]}
    assert verdicts["anonymized"] == "contradicted"
    assert verdicts["no_third_party_sharing"] == "contradicted"  # Sentry, Amplitude
    assert verdicts["no_personal_data"] == "contradicted"
    assert verdicts["opt_out_honored"] == "untested"  # nobody marked an opt-out
    for claim in report["claims"]:
        assert set(claim["evidence"]) <= flow_ids
        if claim["verdict"] == "contradicted":
            assert claim["evidence"]


def test_cadence_of_the_periodic_streams(all_leaks):
    cadence = {(c["event"]): c for c in all_leaks["report"]["cadence"]}
    mqe = cadence.get("client.mediaquality.event")
    assert mqe is not None, sorted(cadence)
    assert mqe["median_interval_s"] == pytest.approx(60, rel=0.10)
    webrtc = [c for c in all_leaks["report"]["cadence"]
              if "metric/v2" in c["endpoint"] and c["regular"]]
    assert webrtc and webrtc[0]["median_interval_s"] == pytest.approx(30, rel=0.10)
    telemetry = [f for f in all_leaks["report"]["flows"] if f["purpose"] == "telemetry"]
    assert [f["id"] for f in telemetry if f["trigger"] == "unknown"] == []


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            pids.append(int(entry.name))
    return pids


def test_ctrl_c_leaves_no_process_behind(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "phonehome", "demo", "-o", str(tmp_path / "r"), "--speed", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proxy_port = None
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "through http://127.0.0.1:" in line:
            proxy_port = int(line.rsplit(":", 1)[1].split()[0].rstrip("…. "))
            break
    assert proxy_port is not None
    time.sleep(2)  # mid-session
    assert _listening(proxy_port)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "Traceback" not in output
    deadline = time.monotonic() + 10
    while (_listening(proxy_port) or _processes_mentioning("phonehome-demo-")) \
            and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _listening(proxy_port)
    assert _processes_mentioning("phonehome-demo-") == []


@pytest.mark.parametrize(("event_prefix", "trigger", "purpose"), [
    ("client.webexapp.launched", "setup", "telemetry"),
    ("client.login.end", "sign_in", "telemetry"),
    ("client.locus.join", "meeting_join", "telemetry"),
    ("client.share.initiated", "screen_share", "telemetry"),
    ("client.mediaquality.event", "in_meeting", "telemetry"),
    ("client.crash", "error", "telemetry"),
    ("client.call.leave", "meeting_leave", "telemetry"),
    ("client.exit.app", "shutdown", "telemetry"),
])
def test_webex_events_get_their_trigger_through_a_real_mitmdump(all_leaks, event_prefix,
                                                                 trigger, purpose):
    flows = [f for f in all_leaks["report"]["flows"]
             if any(e["name"].startswith(event_prefix) for e in f["events"])]
    assert flows, event_prefix
    for flow in flows:
        event_triggers = {e["trigger"] for e in flow["events"]
                          if e["name"].startswith(event_prefix)}
        assert event_triggers == {trigger}, (event_prefix, event_triggers)
        assert flow["purpose"] == purpose and flow["party"] == "first"


def test_service_and_third_parties_are_told_apart(all_leaks):
    by_host = {}
    for flow in all_leaks["report"]["flows"]:
        by_host.setdefault(flow["host"], set()).add((flow["purpose"], flow["party"]))
    assert by_host["conv-a.wbx2.com"] == {("service", "first")}
    assert by_host["idbroker.webex.com"] == {("auth", "first")}
    assert {party for _, party in by_host["o12345.ingest.sentry.io"]} == {"third"}
    assert {party for _, party in by_host["api.amplitude.com"]} == {"third"}


def test_diff_of_two_sessions_by_the_same_install(all_leaks, some_leaks, tmp_path):
    """Both demo runs use seed 1: the same install and account. `phonehome diff` names the
    identifiers that persist, and the leaks only the second session planted."""
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "diff", str(some_leaks["out"] / "audit.json"),
         str(all_leaks["out"] / "audit.json"), "-o", str(tmp_path / "diff.md")],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Identifiers in both audits" in result.stdout
    markdown = (tmp_path / "diff.md").read_text()
    persistent = markdown.split("## Identifiers in both audits", 1)[1]
    assert "deviceId" in persistent and "userId" in persistent
    new_findings = {line.split("|")[2].strip(" `") for line in markdown.splitlines()
                    if line.startswith("| new |")}
    assert {"meeting_title", "username"} <= new_findings
