"""Enforce mode through the real pipeline stages: decode → rules → detectors → plan → apply,
with the detectors re-run on the redacted request (no mitmdump process here)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from urllib.parse import quote

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from builders import identity_of
from phonehome.capture.observe import observe_request
from phonehome.decode import decode
from phonehome.detect import DetectionEngine
from phonehome.enforce import EnforcePolicy, apply_enforcement, plan_enforcement
from phonehome.rules import load_rules

IDENTITY = {
    "email": "jane.roe@example.org",
    "name": "Jane Roe",
    "username": "janeroe",
    "ip": "203.0.113.42",
    "mac": "a4:83:e7:12:34:56",
    "meeting_titles": ["Quarterly budget review"],
}
EMAIL = IDENTITY["email"]


@pytest.fixture(scope="module")
def engine() -> DetectionEngine:
    return DetectionEngine(identity_of(IDENTITY))


@pytest.fixture(scope="module")
def rules():  # type: ignore[no-untyped-def]
    return load_rules()


def _leaky_body() -> dict:
    lowered = EMAIL.lower().encode()
    return {"metrics": [{
        "eventPayload": {
            "event": {"name": "client.call.initiated"},
            "userEmail": EMAIL,
            "emailUrl": quote(EMAIL, safe=""),
            "emailB64": base64.b64encode(EMAIL.encode()).decode(),
            "emailHash": hashlib.sha256(lowered).hexdigest(),
            "emailHashB64": base64.b64encode(hashlib.sha256(lowered).digest()).decode(),
            "origin": {"macAddress": IDENTITY["mac"], "publicIp": IDENTITY["ip"],
                       "clientVersion": "43.8.0.26"},
            "stack": "at /Users/janeroe/Library/Application Support/app.js:12",
            "meetingTitle": IDENTITY["meeting_titles"][0],
            "audioLevels": [0.1, 0.4, 0.9],
            "count": 3,
        }
    }]}


def _values() -> list[str]:
    lowered = EMAIL.lower().encode()
    return [EMAIL, quote(EMAIL, safe=""), base64.b64encode(EMAIL.encode()).decode(),
            hashlib.sha256(lowered).hexdigest(),
            base64.b64encode(hashlib.sha256(lowered).digest()).decode(),
            IDENTITY["mac"], IDENTITY["ip"], "janeroe", IDENTITY["meeting_titles"][0]]


def _flow(coding: str | None) -> http.HTTPFlow:
    body = json.dumps(_leaky_body()).encode()
    request = http.Request.make(
        "POST", f"https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics?u={quote(EMAIL)}",
        b"", {"content-type": "application/json", "x-prelogin-userid": EMAIL,
              "cookie": f"sid=abc; who={base64.b64encode(EMAIL.encode()).decode()}"})
    if coding:
        request.headers["content-encoding"] = coding
    request.content = body
    return tflow.tflow(req=request)


def _stages(flow: http.HTTPFlow, engine: DetectionEngine, rules):  # type: ignore[no-untyped-def]
    observation = observe_request(flow)
    payload = decode(observation)
    classification = rules.classify(observation, payload)
    return observation, payload, classification, engine.detect(payload)


@pytest.mark.parametrize("coding", [None, "gzip", "br", "zstd"])
def test_redact_mode_leaves_no_planted_value(engine: DetectionEngine, rules,  # type: ignore[no-untyped-def]
                                             coding: str | None) -> None:
    flow = _flow(coding)
    observation, payload, classification, findings = _stages(flow, engine, rules)
    assert classification.purpose == "telemetry"
    assert {"identity_match", "audio_level"} <= {f.type for f in findings}
    policy = EnforcePolicy(mode="redact")
    plan = plan_enforcement(policy, observation, payload, classification, findings)
    assert plan.action == "redact"
    result = apply_enforcement(flow, plan, payload, findings, recheck=engine.detect)
    assert result["action"] == "redacted", result["reason"]
    # what would reach the server
    sent = flow.request.get_content(strict=True) or b""
    wire = sent + flow.request.path.encode() + b"".join(v for _, v in flow.request.headers.fields)
    for value in _values():
        assert value.encode() not in wire, value
    after = decode(observe_request(flow))
    assert not [f for f in engine.detect(after) if f.type == "identity_match"]
    tree = json.loads(sent)
    event = tree["metrics"][0]["eventPayload"]
    assert event["event"]["name"] == "client.call.initiated"
    assert event["origin"]["clientVersion"] == "43.8.0.26"
    assert event["audioLevels"] == [0.0, 0.0, 0.0] and event["count"] == 3
    assert len(event["emailHash"]) == 64
    if coding:
        assert flow.request.headers["content-encoding"] == coding
    assert int(flow.request.headers["content-length"]) == len(flow.request.raw_content or b"")


def test_block_mode_blocks_telemetry_and_passes_service(engine: DetectionEngine,  # type: ignore[no-untyped-def]
                                                        rules) -> None:
    policy = EnforcePolicy(mode="block")
    flow = _flow("gzip")
    observation, payload, classification, findings = _stages(flow, engine, rules)
    plan = plan_enforcement(policy, observation, payload, classification, findings)
    result = apply_enforcement(flow, plan, payload, findings, recheck=engine.detect)
    assert result["action"] == "blocked"
    assert flow.response is not None and flow.response.status_code == 204

    body = json.dumps({"email": EMAIL, "password": "x"}).encode()
    service = tflow.tflow(req=http.Request.make(
        "POST", "https://idbroker.webex.com/idb/token", body,
        {"content-type": "application/json"}))
    before = service.get_state()
    observation, payload, classification, findings = _stages(service, engine, rules)
    assert classification.purpose in ("auth", "service")
    assert findings
    plan = plan_enforcement(policy, observation, payload, classification, findings)
    result = apply_enforcement(service, plan, payload, findings, recheck=engine.detect)
    assert result["action"] == "passed"
    assert service.get_state() == before


def test_dry_run_through_the_real_stages_changes_nothing(engine: DetectionEngine,  # type: ignore[no-untyped-def]
                                                         rules) -> None:
    flow = _flow("gzip")
    before = flow.get_state()
    observation, payload, classification, findings = _stages(flow, engine, rules)
    plan = plan_enforcement(EnforcePolicy(mode="redact", dry_run=True), observation, payload,
                            classification, findings)
    result = apply_enforcement(flow, plan, payload, findings, recheck=engine.detect)
    assert result["action"] == "would_redact" and result["dry_run"] is True
    assert "$.metrics[0].eventPayload.userEmail" in result["changed"]
    assert flow.get_state() == before
    assert gzip.decompress(flow.request.raw_content or b"") == json.dumps(_leaky_body()).encode()
