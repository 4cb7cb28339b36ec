"""The per-flow pipeline without a proxy: Auditor.audit, flow_record and json_text."""

from __future__ import annotations

import json

import pytest

from builders import ca_batch, make_obs, make_observation
from phonehome.audit.pipeline import (
    MAX_DECODED_IN_RECORD,
    Auditor,
    AuditSettings,
    flow_record,
    json_text,
)
from phonehome.model import Classification

EMAIL = "jane.roe@example.org"
METRICS = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
AUDITOR = Auditor(AuditSettings())


def _leaky(**event: object) -> object:
    return make_obs(f"{METRICS}?u={EMAIL}",
                    ca_batch({"name": "client.muted", "userEmail": EMAIL, **event}))


def test_a_record_is_the_reports_flow_item_with_every_stage_in_it():
    record = AUDITOR.audit(_leaky())
    assert (record["method"], record["host"], record["kind"]) == (
        "POST", "metrics-a.wbx2.com", "http")
    assert (record["purpose"], record["party"], record["trigger"]) == (
        "telemetry", "first", "in_meeting")
    assert [e["name"] for e in record["events"]] == ["client.muted"]
    assert {f["type"] for f in record["findings"]} == {"email"}
    assert record["payload"]["kind"] == "json"
    assert record["bytes_out"] == len(_leaky().body)
    assert record["audit_error"] is None and record["enforcement"] is None
    json.dumps(record)  # JSON-safe as it is


def test_flagged_values_are_redacted_everywhere_unless_revealed():
    record = AUDITOR.audit(_leaky())
    assert EMAIL not in json.dumps(record)
    assert record["url"].endswith("?u=j***@e***.org")
    assert record["decoded"]["metrics"][0]["eventPayload"]["event"]["userEmail"] == \
        "j***@e***.org"
    revealed = Auditor(AuditSettings(reveal=True)).audit(_leaky())
    assert revealed["url"].endswith(f"?u={EMAIL}")
    assert {f["value"] for f in revealed["findings"]} == {EMAIL}


def test_a_failed_stage_is_named_and_the_later_stages_still_run(monkeypatch):
    auditor = Auditor(AuditSettings())

    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(auditor.detection, "detect", explode)
    record = auditor.audit(_leaky())
    assert record["audit_error"] == {"stage": "detect", "reason": "RuntimeError: boom"}
    assert record["findings"] == []
    assert (record["purpose"], record["trigger"]) == ("telemetry", "in_meeting")


def test_an_undecodable_body_is_still_classified():
    observation = make_observation(b"\x1f\x8b broken gzip", "application/json",
                                   content_encoding="gzip", url=METRICS,
                                   host="metrics-a.wbx2.com",
                                   path="/metrics/api/v1/clientmetrics")
    result = AUDITOR.audit_result(observation)
    assert result.record["purpose"] == "telemetry"
    assert result.record["payload"]["kind"] != "json"
    assert result.observation is observation


@pytest.mark.parametrize(("size", "kept"), [(100, True), (MAX_DECODED_IN_RECORD + 1, False)])
def test_the_decoded_body_is_kept_up_to_its_bound(size, kept):
    body = json.dumps({"notes": "x" * size}).encode()
    observation = make_observation(body, "application/json", url="https://h/")
    assert (AUDITOR.audit(observation)["decoded"] is not None) is kept
    unkept = Auditor(AuditSettings(keep_decoded=False)).audit(observation)
    assert unkept["decoded"] is None and unkept["payload"]["size"] == len(body)


def test_flow_record_without_a_payload_is_still_whole():
    record = flow_record(make_observation(url="https://h/"), None, Classification(), [], [],
                         audit_error={"stage": "decode", "reason": "x"})
    assert record["payload"] is None and record["decoded"] is None
    assert (record["purpose"], record["trigger"], record["findings"]) == (
        "unknown", "unknown", [])


@pytest.mark.parametrize(("value", "expected"), [
    ("plain", "plain"),
    ("caf\udce9", "caf\\xe9"),  # a byte that was not UTF-8, kept as surrogateescape
    ("lone \ud800", "lone \\ud800"),
    ({"k\udc80": ["v\udcff", 1, None]}, {"k\\x80": ["v\\xff", 1, None]}),
    (("a", "b\udc81"), ["a", "b\\x81"]),
])
def test_json_text_makes_every_string_utf8(value, expected):
    assert json_text(value) == expected
    json.dumps(json_text(value)).encode("utf-8")
