"""`diff_reports` and `phonehome diff`: two sessions that share a device id."""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from builders import FIXTURES
from phonehome.commands import diff as diff_command
from phonehome.report.diff import diff_reports, format_diff_markdown, format_diff_table

OLD = FIXTURES / "report_webex_session1.json"
NEW = FIXTURES / "report_webex_session2.json"
DEVICE_FP = "d3e1f0a7c21b9e44"  # machineId in both sessions (reinstall, same device)
USER_FP = "71d9e0a4b3c2f518"  # userId: same account


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def diff() -> dict[str, Any]:
    return diff_reports(load(OLD), load(NEW))


def test_identifiers_in_both_sessions(diff: dict[str, Any]) -> None:
    shared = {item["fingerprint"]: item for item in diff["identifiers"]["shared"]}
    assert set(shared) == {DEVICE_FP, USER_FP}
    device = shared[DEVICE_FP]
    assert "machineId" in device["keys"]
    assert device["old_flows"] == 10 and device["new_flows"] == 3
    assert device["old_captures"] == ["webex-session1.mitm"]
    assert device["new_captures"] == ["webex-after-reinstall.har"]
    assert "$.metrics[0].eventPayload.event.identifiers.machineId" in device["locations"]
    assert shared[USER_FP]["keys"] == ["userId"]
    # session-scoped ids (correlationId, preLoginId, trackingId) are not shared
    assert diff["identifiers"]["old_only"] == 2  # correlationId, the tracker's anonymousId
    assert diff["identifiers"]["new_only"] == 2  # preLoginId, trackingId


def test_endpoints_events_categories(diff: dict[str, Any]) -> None:
    new_endpoints = [e["endpoint"] for e in diff["endpoints"]["new"]]
    assert new_endpoints == ["POST metrics-a.wbx2.com/metrics/api/v1/clientmetrics-prelogin"]
    gone = {e["endpoint"] for e in diff["endpoints"]["gone"]}
    assert "POST collector.example-analytics.net/v1/batch" in gone
    assert "GET ds.ciscospark.com/v1/region" in gone
    assert diff["endpoints"]["kept"] == 2
    assert {e["event"] for e in diff["events"]["new"]} == {
        "client.webexapp.launched", "clientmetrics alias (pre-login id -> user)"}
    assert "client.mediaquality.event" in {e["event"] for e in diff["events"]["gone"]}
    assert diff["categories"]["new"] == []
    assert {c["category"] for c in diff["categories"]["gone"]} == {
        "error_logs", "meeting_content", "meeting_metadata", "network_info",
        "performance_metrics"}


def test_findings_by_type_and_location(diff: dict[str, Any]) -> None:
    assert diff["findings"]["new"] == [{
        "type": "mac_address", "location": "$.metrics[0].eventPayload.origin.clientInfo.macAddress",
        "count": 1, "severity": "medium"}]
    gone = {(f["type"], f["location"]) for f in diff["findings"]["gone"]}
    assert ("identity_match", "$.metrics[1].eventPayload.event.identifiers.aliasHash") in gone
    assert ("hostname", "$.name") not in gone  # in both sessions: kept
    assert diff["findings"]["kept"] == 2


def test_claim_verdict_changes(diff: dict[str, Any]) -> None:
    changes = {c["id"]: (c["old"], c["new"]) for c in diff["claims"]}
    assert changes == {
        "webex-telemetry-no-meeting-content": ("contradicted", "holds"),
        "webex-telemetry-first-party-only": ("contradicted", "holds"),
        "webex-telemetry-opt-out": ("contradicted", "untested"),
    }


def test_a_report_against_itself_changes_nothing() -> None:
    report = load(OLD)
    diff = diff_reports(report, copy.deepcopy(report))
    for part in ("endpoints", "events", "categories", "findings"):
        assert diff[part]["new"] == [] and diff[part]["gone"] == []
    assert diff["claims"] == []
    fingerprints = {i["fingerprint"] for f in report["flows"] for i in f["identifiers"]}
    assert {s["fingerprint"] for s in diff["identifiers"]["shared"]} == fingerprints


@pytest.mark.parametrize(
    ("change", "part", "side", "expected"),
    [
        (lambda r: r["flows"].append(dict(r["flows"][0], id="n1",
                                          url="https://wdm-a.wbx2.com/wdm/api/v1/devices/42")),
         "endpoints", "new", {"endpoint": "POST wdm-a.wbx2.com/wdm/api/v1/devices/{id}",
                              "flows": 1}),
        (lambda r: r["flows"].pop(1), "endpoints", "gone",
         {"endpoint": "GET ds.ciscospark.com/v1/region", "flows": 1}),
        (lambda r: r["flows"][12]["categories"].clear(), "categories", "gone",
         {"category": "error_logs", "flows": 1}),
        (lambda r: r["flows"][0]["events"].append(
            {"name": "client.crash", "rule_id": "x", "trigger": "error", "categories": []}),
         "events", "new", {"event": "client.crash", "count": 1}),
        (lambda r: r["flows"][0]["findings"][0].update(location="$.hostName"), "findings", "new",
         {"type": "hostname", "location": "$.hostName", "count": 1, "severity": "medium"}),
    ],
)
def test_single_changes(change, part: str, side: str, expected: dict[str, Any]) -> None:
    old = load(OLD)
    new = copy.deepcopy(old)
    change(new)
    diff = diff_reports(old, new)
    assert diff[part][side] == [expected]
    other = "gone" if side == "new" else "new"
    if part != "findings":
        assert diff[part][other] == []


def test_identifier_only_in_persistent_ids_counts() -> None:
    old, new = load(OLD), load(NEW)
    for report in (old, new):
        for flow in report["flows"]:
            flow["identifiers"] = []
    shared = diff_reports(old, new)["identifiers"]["shared"]
    assert [s["fingerprint"] for s in shared] == [DEVICE_FP]
    assert shared[0]["old_flows"] == 10 and shared[0]["new_flows"] == 3


def test_terminal_table_and_markdown_name_the_shared_ids(diff: dict[str, Any]) -> None:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(format_diff_table(diff))
    text = out.getvalue()
    assert DEVICE_FP in text and USER_FP in text
    assert "clientmetrics-prelogin" in text
    assert "Identifiers in both audits: 2" in text
    markdown = format_diff_markdown(diff)
    assert markdown.startswith("# phonehome diff\n")
    assert f"`{DEVICE_FP}`" in markdown
    assert "## Identifiers in both audits (2)" in markdown
    assert "| new | `mac_address` |" in markdown


# --- the command --------------------------------------------------------------------------


def run(argv: list[str]) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="phonehome")
    diff_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["diff", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = args.func(args, Console(file=out, width=200, color_system=None),
                     Console(file=err, width=400, color_system=None))
    return int(code), out.getvalue(), err.getvalue()


def test_command_prints_table_and_writes_markdown(tmp_path: Path) -> None:
    target = tmp_path / "out" / "diff.md"
    code, out, err = run([str(OLD), str(NEW), "-o", str(target)])
    assert code == 0, err
    assert DEVICE_FP in out
    assert DEVICE_FP in target.read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600


def test_command_without_output_writes_nothing(tmp_path: Path) -> None:
    code, out, _ = run([str(OLD), str(NEW)])
    assert code == 0 and "phonehome diff" in out
    assert not list(tmp_path.iterdir())


BAD_INPUTS = [
    ("missing", None, "cannot read"),
    ("not-json", "{oops", "not JSON"),
    ("a-list", "[1, 2]", "not a phonehome report"),
    ("wrong-schema", json.dumps({"schema": "other/1"}), "not a phonehome report"),
    ("invalid", json.dumps({"schema": "phonehome.report/1", "flows": []}), "invalid report"),
    ("bad-flow", "BADFLOW", "invalid report at flows/0"),
    ("binary", b"\xff\xfe\x00", "not UTF-8"),
]


@pytest.mark.parametrize(("name", "content", "words"), BAD_INPUTS)
@pytest.mark.parametrize("position", ["old", "new"])
def test_command_rejects_bad_input(
    tmp_path: Path, name: str, content: Any, words: str, position: str
) -> None:
    bad = tmp_path / f"{name}.json"
    if content == "BADFLOW":
        report = load(OLD)
        report["flows"][0]["purpose"] = "marketing"
        bad.write_text(json.dumps(report), encoding="utf-8")
    elif isinstance(content, bytes):
        bad.write_bytes(content)
    elif content is not None:
        bad.write_text(content, encoding="utf-8")
    argv = [str(bad), str(NEW)] if position == "old" else [str(OLD), str(bad)]
    code, out, err = run(argv)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("phonehome diff: ") and str(bad) in lines[0] and words in lines[0]
