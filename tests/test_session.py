"""AuditSession without a proxy: one `submit` per flow, markers, time scaled in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import muted_event_flow
from phonehome.audit.pipeline import Auditor, AuditSettings
from phonehome.audit.session import AuditSession, sensor_selection
from phonehome.audit.store_pg import StoreSelection


def _session(tmp_path: Path, **kw) -> AuditSession:
    return AuditSession(AuditSettings(), tmp_path / "audit.sqlite", **kw)


def _auditor_markers(report: dict) -> list[tuple[str, float, str | None]]:
    return [(m["label"], m["timestamp"], m["flow_id"]) for m in report["markers"]
            if m["source"] == "auditor"]


def test_submit_audits_stores_and_shows_each_flow(tmp_path):
    shown: list[dict] = []
    session = _session(tmp_path, on_record=shown.append)
    records = [session.submit(muted_event_flow(f"f{i}", 100.0 + i)) for i in range(3)]
    assert session.flows == 3
    assert shown == records
    assert [r["trigger"] for r in records] == ["in_meeting"] * 3
    report = session.finish().to_dict()
    assert [f["id"] for f in report["flows"]] == ["f0", "f1", "f2"]
    assert [f["trigger"] for f in report["flows"]] == ["in_meeting"] * 3


def test_a_record_audited_elsewhere_is_stored_as_given(tmp_path):
    session = _session(tmp_path)
    observation = muted_event_flow("f1", 100.0)
    record = Auditor(AuditSettings()).audit(observation)
    record["enforcement"] = {"action": "blocked", "dry_run": False, "changed": [],
                             "reason": "set by the caller"}
    assert session.submit(observation, record) is record
    [stored] = session.finish().to_dict()["flows"]
    assert stored["enforcement"]["reason"] == "set by the caller"


def test_markers_saved_on_a_flow_are_recorded_with_it(tmp_path):
    session = _session(tmp_path)
    session.submit(muted_event_flow("f1", 100.0, ("opt_out", 99.5), ("meeting_join", 99.8)))
    session.submit(muted_event_flow("f2", 101.0))
    session.mark("screen_share", 100.5)
    assert _auditor_markers(session.finish().to_dict()) == [
        ("opt_out", 99.5, "f1"), ("meeting_join", 99.8, "f1"), ("screen_share", 100.5, None)]


def test_time_is_scaled_from_the_first_moment_for_flows_and_markers_alike(tmp_path):
    session = _session(tmp_path, time_scale=10)
    # the marker comes first: 99 is t0
    session.submit(muted_event_flow("f1", 100.0, ("opt_out", 99.0)))
    session.submit(muted_event_flow("f2", 102.0))
    elsewhere = muted_event_flow("f3", 103.0)
    session.submit(elsewhere, Auditor(AuditSettings()).audit(elsewhere))
    session.mark("meeting_leave", 104.0)
    report = session.finish().to_dict()
    assert [(f["id"], f["timestamp"]) for f in report["flows"]] == [
        ("f1", 109.0), ("f2", 129.0), ("f3", 139.0)]
    assert _auditor_markers(report) == [("opt_out", 99.0, "f1"), ("meeting_leave", 149.0, None)]


def test_an_unscaled_session_keeps_every_time(tmp_path):
    session = _session(tmp_path)
    session.submit(muted_event_flow("f1", 1_700_000_000.25, ("opt_out", 1_700_000_000.0)))
    report = session.finish().to_dict()
    assert report["flows"][0]["timestamp"] == 1_700_000_000.25
    assert _auditor_markers(report) == [("opt_out", 1_700_000_000.0, "f1")]


def test_the_inputs_name_the_packs_and_what_was_asked(tmp_path):
    session = _session(tmp_path, inputs={"captures": ["live"]}, time_scale=2)
    session.note_inputs(capture_errors=["x.mitm: flow 3 skipped"])
    inputs = session.finish().to_dict()["inputs"]
    assert inputs["captures"] == ["live"] and inputs["time_scale"] == 2
    assert inputs["capture_errors"] == ["x.mitm: flow 3 skipped"]
    assert {p["pack"] for p in inputs["rule_packs"]} >= {"webex"}


def test_closing_twice_is_harmless_and_finish_still_reports(tmp_path):
    session = _session(tmp_path)
    session.submit(muted_event_flow("f1", 100.0))
    session.close()
    session.close()
    assert [f["id"] for f in session.finish().to_dict()["flows"]] == ["f1"]


@pytest.mark.parametrize(("target", "expected"), [
    (Path("reports/audit.sqlite"), None),
    ("postgresql://sensor@db.example/phonehome", StoreSelection(sensors=("lab-1",))),
])
def test_a_shared_store_reports_this_sensor_only(target, expected):
    assert sensor_selection(target, "lab-1") == expected
