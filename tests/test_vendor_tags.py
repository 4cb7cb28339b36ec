"""The app's own PII tags (1DS ext.metadata.f.<field>.t) as findings."""

from __future__ import annotations

import json

import pytest

from phonehome.decode import decode
from phonehome.detect import DetectionEngine
from phonehome.detect.vendor_tags import (
    DETECTOR,
    decode_tag,
    merge_tag_findings,
    tag_findings,
    tagged_fields,
)
from phonehome.model import Finding, Observation


@pytest.mark.parametrize(("code", "kind", "finding_type"), [
    ((9 << 5) | 1, "Pii_SmtpAddress", "email"),          # 289: a string tagged as e-mail
    ((3 << 5) | 1, "Pii_IPV4Address", "ip_address"),
    ((12 << 5) | 1, "Pii_Fqdn", "hostname"),
    ((11 << 5) | 1, "Pii_Uri", "hostname"),
    ((6 << 5) | 1, "Pii_PhoneNumber", "phone"),
    ((10 << 5) | 1, "Pii_Identity", "username"),
    (8192 | 1, "CustomerContent_GenericContent", "chat_message"),
    (8192, "CustomerContent_GenericContent", "chat_message"),
    (1, None, None),                                      # a plain string: no kind
    (6, None, None),                                      # a plain number
    ((15 << 5) | 1, None, None),                          # DropValue is never sent tagged
    ("289", None, None),
    (True, None, None),
    (-1, None, None),
])
def test_decode_tag(code, kind, finding_type) -> None:
    got = decode_tag(code)
    assert (got.name if got else None, got.type if got else None) == (kind, finding_type)


def _record(name: str, data: dict, f: dict) -> dict:
    return {"name": name, "ver": "4.0", "ext": {"metadata": {"f": f}}, "data": data}


def test_tagged_fields_nested_arrays_and_part_b() -> None:
    tree = [
        _record("a", {"mail": "x", "ctx": {"ip": "1.2.3.4"}, "list": ["u1", "u2"],
                      "baseData": {"uri": "https://x"}},
                {"mail": {"t": 289}, "ctx": {"f": {"ip": {"t": 97}}}, "list": {"a": {"t": 321}},
                 "baseData": {"f": {"uri": {"t": 353}}}, "plain": {"t": 1}}),
        {"name": "b", "data": {"mail": "y"}},  # no metadata: nothing tagged
    ]
    found = {(f.path, f.kind.name) for f in tagged_fields(tree)}
    assert found == {
        ((0, "data", "mail"), "Pii_SmtpAddress"),
        ((0, "data", "ctx", "ip"), "Pii_IPV4Address"),
        ((0, "data", "list"), "Pii_Identity"),
        ((0, "data", "baseData", "uri"), "Pii_Uri"),
    }


def _payload(body: bytes, content_type: str = "application/x-json-stream"):
    obs = Observation(id="1", timestamp=0.0, method="POST",
                      url="https://browser.events.data.microsoft.com/OneCollector/1.0/",
                      scheme="https", host="browser.events.data.microsoft.com", port=443,
                      path="/OneCollector/1.0/", body=body, content_type=content_type)
    return decode(obs)


def test_each_value_of_a_tagged_field_is_a_finding_that_says_so() -> None:
    line = _record("joinMeeting", {"Device": "jane-laptop.corp.example", "ids": ["a", "b"]},
                   {"Device": {"t": 385}, "ids": {"a": {"t": 321}}})
    findings = tag_findings(_payload(json.dumps(line).encode()))
    assert [(f.location, f.type, f.detector) for f in findings] == [
        ("$[0].data.Device", "hostname", DETECTOR),
        ("$[0].data.ids[0]", "username", DETECTOR),
        ("$[0].data.ids[1]", "username", DETECTOR),
    ]
    assert "the app itself tagged this field as Pii_Fqdn" in findings[0].reason
    assert findings[0].value == "jane-laptop.corp.example"
    assert "jane-laptop" not in findings[0].evidence  # redacted


def test_a_single_event_unload_body_is_an_ndjson_batch_too() -> None:
    line = _record("appKilled", {"note": "Can we talk"}, {"note": {"t": 8193}})
    payload = _payload(json.dumps(line).encode(), "text/plain;charset=UTF-8")
    assert payload.kind == "json"  # no query naming the type: one JSON document
    [finding] = tag_findings(payload)
    assert (finding.location, finding.category) == ("$.data.note", "meeting_content")


def test_the_engine_merges_a_tag_into_the_same_finding() -> None:
    line = _record("TfWSignInSuccessful", {"UserInfo_Email": "jane.doe@contoso.example"},
                   {"UserInfo_Email": {"t": 289}})
    findings = DetectionEngine().detect(_payload(json.dumps(line).encode()))
    email = [f for f in findings if f.location == "$[0].data.UserInfo_Email"]
    assert len(email) == 1 and email[0].detector == "email"
    assert "the app itself tagged this field as Pii_SmtpAddress" in email[0].reason


def test_merge_keeps_other_types_apart_and_never_repeats_a_reason() -> None:
    base = Finding("email", "personal_data", "medium", "$.a", "email", "e", reason="shape")
    other = Finding("identity_match", "personal_data", "high", "$.a", "identity", "e")
    tag = Finding("email", "personal_data", "medium", "$.a", DETECTOR, "e",
                  reason="the app itself tagged this field as Pii_SmtpAddress (t = 289)")
    merged = merge_tag_findings([other, base], [tag])
    assert [f.detector for f in merged] == ["identity", "email"]
    assert merged[1].reason.startswith("shape; the app itself tagged")
    assert merge_tag_findings(merged, [tag]) == merged
    lone = Finding("hostname", "personal_data", "medium", "$.b", DETECTOR, "h")
    assert merge_tag_findings([base], [lone]) == [base, lone]


@pytest.mark.parametrize(("content_type", "query", "kind"), [
    ("text/plain;charset=UTF-8", [("content-type", "application/x-json-stream")], "ndjson"),
    ("", [("content-type", "application/x-json-stream")], "ndjson"),
    ("application/x-json-stream", [], "ndjson"),
    ("text/plain;charset=UTF-8", [], "json"),
    ("text/plain", [("content-type", "image/png")], "json"),   # a type that is no body format
    ("application/json", [("content-type", "application/x-json-stream")], "json"),
])
def test_the_declared_type_of_a_request_that_moved_its_headers(content_type, query,
                                                                kind) -> None:
    """1DS on unload: headers in the query string, body text/plain, one event per line."""
    obs = Observation(id="1", timestamp=0.0, method="POST", url="https://h/OneCollector/1.0/",
                      scheme="https", host="h", port=443, path="/OneCollector/1.0/",
                      body=b'{"name":"appKilled","data":{}}', content_type=content_type,
                      query=query)
    payload = decode(obs)
    assert payload.kind == kind
    assert payload.tree == ([{"name": "appKilled", "data": {}}] if kind == "ndjson"
                            else {"name": "appKilled", "data": {}})
