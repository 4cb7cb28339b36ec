"""Persistent identifiers: ids recurring unchanged across flows and captures."""

from __future__ import annotations

import pytest

from builders import make_payload
from phonehome.analysis.persistent import persistent_ids
from phonehome.detect import identifier_candidates, is_identifier_key


def _flow(flow_id: str, source: str, tree: dict) -> dict:
    return {"id": flow_id, "source": source,
            "identifiers": identifier_candidates(make_payload(tree))}


def _event(n: int, device: str = "dev-5f1e5a1c", user: str = "user-0f1e5a1c") -> dict:
    return {"eventPayload": {"eventId": f"evt-{n:08d}", "identifiers": {
        "deviceId": device, "userId": user, "correlationId": f"corr-{n % 2:04d}",
        "trackingId": f"webex-js-sdk_{n:06d}", "machineId": "mach-7a1e5a1c",
    }}}


@pytest.mark.parametrize(
    ("key", "expected"),
    [("deviceId", True), ("device_id", True), ("machineId", True), ("installationId", True),
     ("userId", True), ("advertisingId", True), ("orgId", True), ("hardwareHash", True),
     ("hostUserId", True), ("idfa", True),
     ("eventId", False), ("trackingId", False), ("requestId", False), ("correlationId", False),
     ("sessionCorrelationId", False), ("sessionId", False), ("messageId", False),
     ("name", False), ("version", False), ("clientEventId", False)],
)
def test_identifier_keys(key, expected):
    assert is_identifier_key(key) is expected


def test_candidates_shape_and_no_raw_values():
    (flow,) = [_flow("f1", "a.mitm", _event(1))]
    keys = sorted(c["key"] for c in flow["identifiers"])
    assert keys == ["deviceId", "machineId", "userId"]
    for candidate in flow["identifiers"]:
        assert set(candidate) >= {"key", "location", "fingerprint"}
        assert candidate["fingerprint"].startswith("hmac:")
        assert "5f1e5a1c" not in repr(candidate)


@pytest.mark.parametrize(
    "value", ["", "0", "null", "unknown", "00000000-0000-0000-0000-000000000000", None, True, "ab"]
)
def test_placeholders_are_not_candidates(value):
    assert identifier_candidates(make_payload({"deviceId": value})) == []


def test_recurring_device_id_across_flows_and_captures():
    flows = [_flow(f"a{i}", "monday.mitm", {"metrics": [_event(i)]}) for i in range(3)]
    flows += [_flow(f"b{i}", "tuesday.har", {"metrics": [_event(10 + i)]}) for i in range(2)]
    result = persistent_ids(flows)
    by_key = {entry["key"]: entry for entry in result}
    assert set(by_key) == {"deviceId", "userId", "machineId"}
    device = by_key["deviceId"]
    assert device["flows"] == ["a0", "a1", "a2", "b0", "b1"]
    assert device["flow_count"] == 5
    assert device["captures"] == ["monday.mitm", "tuesday.har"]
    assert device["capture_count"] == 2
    assert device["severity"] == "high"
    assert "5f1e5a1c" not in device["evidence"]
    # per-event ids never show up, even when a correlationId repeats
    assert not {"eventId", "trackingId", "correlationId"} & {e["key"] for e in result}


def test_single_flow_or_changing_ids_are_not_persistent():
    flows = [_flow("a", "x", _event(1, device="d-1111", user="u-1111")),
             _flow("b", "x", _event(2, device="d-2222", user="u-2222"))]
    keys = {e["key"] for e in persistent_ids(flows)}
    assert "deviceId" not in keys and "userId" not in keys
    # the same id twice in one flow links nothing
    twice = _flow("c", "x", {"metrics": [_event(1), _event(2)]})
    assert persistent_ids([twice]) == []


def test_one_capture_is_medium():
    flows = [_flow(str(i), "only.mitm", {"deviceId": "dev-abcdef"}) for i in range(2)]
    (entry,) = persistent_ids(flows)
    assert entry["capture_count"] == 1 and entry["severity"] == "medium"


def test_streams_many_flows():
    def flows():
        for i in range(20000):
            yield {"id": str(i), "source": f"c{i % 3}",
                   "identifiers": [
                       {"key": "deviceId", "location": "$.d", "fingerprint": "sha256:1"},
                       {"key": "userId", "location": "$.u", "fingerprint": f"sha256:{i}"},
                   ]}
    (entry,) = persistent_ids(flows())
    assert entry["flow_count"] == 20000 and entry["capture_count"] == 3


_CANDIDATE_TREES = [
    {"metrics": [_event(1), _event(2)]},
    {"deviceId": ["dev-5f1e5a1c", "dev-5f1e5a1d"], "user": {"userId": 12345678}},
    {"ids": {"orgId": "  org-1eb65fdf  ", "DeviceId": "DEV-5F1E", "device_id": "dev-5f1e5a1c"}},
    {"deviceId": {"nested": "not-an-id-key"}, "machineId": 1.5, "installId": True},
    [{"userId": "u-1"}, {"userId": "user-000001"}, "loose-value"],
]


@pytest.mark.parametrize("tree", _CANDIDATE_TREES)
def test_engine_identifiers_match_the_module_function(tree):
    from phonehome.detect import DetectionEngine

    engine = DetectionEngine()
    payload = make_payload(tree, query=[("uid", "q-5f1e5a1c")], headers=[("X-Device-Id", "h-1")])
    first = identifier_candidates(payload)
    # the memos answer the second time round; nothing may change
    assert engine.identifiers(payload) == first
    assert engine.identifiers(payload) == first
    assert identifier_candidates(payload) == first


def test_list_items_take_the_nearest_key():
    tree = {"deviceId": ["dev-5f1e5a1c"], "eventId": ["e-1234"]}
    found = identifier_candidates(make_payload(tree))
    assert [(c["key"], c["location"]) for c in found] == [("deviceId", "$.deviceId[0]")]
