"""Name verdicts weighed against the timing: flows built by the real pipeline, then the report."""

from __future__ import annotations

from typing import Any

import pytest

from builders import audited_at
from phonehome.analysis.session import build_report
from phonehome.audit.pipeline import Auditor, AuditSettings

METRICS = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
LOCUS = "https://locus-a.wbx2.com/locus/api/v1/loci"
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def auditor() -> Auditor:
    return Auditor(AuditSettings())


def _ca(*names: str) -> dict[str, Any]:
    return {"metrics": [{"eventPayload": {"event": {"name": n}}, "type": ["diagnostic-event"]}
                        for n in names]}


def _report(auditor: Auditor, steps: list[tuple[float, str, str, Any]]) -> dict[str, dict]:
    records = [audited_at(auditor, f"f{i}", T0 + at, method, url, body)
               for i, (at, method, url, body) in enumerate(steps)]
    report = build_report(records, claims_paths=[])
    return {flow["id"]: flow for flow in report["flows"]}


def _session(*extra: tuple[float, str, str, Any]) -> list[tuple[float, str, str, Any]]:
    """Device registration at 0 (setup), a locus join at 300 and a leave at 1200."""
    return [
        (0.0, "POST", "https://wdm-a.wbx2.com/wdm/api/v1/devices", {"name": "d"}),
        (300.0, "POST", f"{LOCUS}/call", {"correlationId": "c1"}),
        (1200.0, "PUT", f"{LOCUS}/l1/participant/p1/leave", {}),
        *extra,
    ]


def test_a_strong_name_gives_the_trigger_and_a_rule_keeps_its_own(auditor):
    flows = _report(auditor, _session(
        (1300.0, "POST", METRICS, _ca("ClientExitApp")),
        (1310.0, "POST", METRICS, _ca("client.exit.app")),
    ))
    named, ruled = flows["f3"], flows["f4"]
    assert (named["trigger"], named["trigger_source"], named["trigger_confidence"]) == (
        "shutdown", "name", "high")
    assert named["trigger_reason"] == "the name says app exit"
    assert named["events"][0]["trigger_source"] == "name"
    assert named["events"][0]["name_trigger"]["trigger"] == "shutdown"
    assert (ruled["trigger"], ruled["trigger_source"], ruled["trigger_confidence"]) == (
        "shutdown", "rule", "high")
    assert "name_trigger" not in ruled["events"][0]


def test_media_right_after_the_join_is_the_join_and_later_in_meeting(auditor):
    flows = _report(auditor, _session(
        (305.0, "POST", METRICS, _ca("clientMediaTxStart")),
        (600.0, "POST", METRICS, _ca("clientMediaTxStart")),
        (1500.0, "POST", METRICS, _ca("clientMediaTxStart")),
    ))
    assert (flows["f3"]["trigger"], flows["f3"]["trigger_source"]) == ("meeting_join", "name")
    assert "as the meeting joins" in flows["f3"]["trigger_reason"]
    assert (flows["f4"]["trigger"], flows["f4"]["trigger_confidence"]) == ("in_meeting", "medium")
    # no meeting open: a media hint alone is not enough
    assert (flows["f5"]["trigger"], flows["f5"]["trigger_source"]) == ("unknown", "none")
    assert "no meeting is open" in flows["f5"]["trigger_reason"]


def test_a_launch_during_setup_is_the_first_launch(auditor):
    flows = _report(auditor, _session(
        (0.5, "POST", METRICS, _ca("desktop.webexapp.launched", "client_startup_start")),
        (900.0, "POST", "https://api2.amplitude.com/2/httpapi",
         {"api_key": "k", "events": [{"event_type": "app_launched"}]}),
    ))
    assert (flows["f3"]["trigger"], flows["f3"]["trigger_source"]) == ("setup", "name")
    assert "first launch" in flows["f3"]["trigger_reason"]
    # the generic pack names the Amplitude events; outside setup a launch is an app start
    assert (flows["f4"]["trigger"], flows["f4"]["trigger_source"]) == ("app_start", "name")


def test_an_ambiguous_name_stays_unknown_with_its_reason(auditor):
    flows = _report(auditor, _session((1500.0, "POST", METRICS, _ca("meetingJoinLeave"))))
    flow = flows["f3"]
    assert (flow["trigger"], flow["trigger_source"], flow["trigger_confidence"]) == (
        "unknown", "none", None)
    assert flow["trigger_reason"].startswith("the name points to meeting_join and meeting_leave")


def test_an_ambiguous_name_is_settled_by_the_phase(auditor):
    flows = _report(auditor, _session((600.0, "POST", METRICS, _ca("lobbyToggleMuted"))))
    flow = flows["f3"]
    assert (flow["trigger"], flow["trigger_source"]) == ("in_meeting", "name")
    assert "the timing says in_meeting" in flow["trigger_reason"]


def test_flows_that_follow_a_leave_belong_to_it(auditor):
    flows = _report(auditor, _session(
        (1210.0, "POST", METRICS, _ca("jsSdkUploadLogsSuccess")),
        (1235.0, "POST", METRICS, _ca("jsSdkUploadLogsSuccess")),
        (1400.0, "POST", METRICS, _ca("jsSdkUploadLogsSuccess")),
    ))
    assert [flows[i]["trigger"] for i in ("f3", "f4", "f5")] == [
        "meeting_leave", "meeting_leave", "unknown"]
    assert flows["f3"]["trigger_source"] == "context"
    assert flows["f3"]["trigger_confidence"] == "low"
