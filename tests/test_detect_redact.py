"""Redacted evidence formats and redact_tree."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from builders import identity_of, make_payload
from phonehome.detect import DetectionEngine, fingerprint, redact, redact_tree
from phonehome.detect.redact import parse_location
from phonehome.model import Finding

SHA = hashlib.sha256(b"jane.roe@example.org").hexdigest()


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("email", "jane.roe@example.org", "j***@e***.org"),
        ("email", "sip:jane@acme.webex.com", "j***@a***.com"),
        ("ip_address", "203.0.113.42", "203.0.113.x"),
        ("ip_address", "2001:db8:85a3::8a2e:370:7334", "2001:db8:85a3:0:x"),
        ("mac_address", "a4:83:e7:12:34:56", "a4:83:e7:xx:xx:xx"),
        ("mac_address", "A4-83-E7-12-34-56", "A4-83-E7-xx-xx-xx"),
        ("phone", "+1 415 555 2671", "+1********71"),
        ("phone", "(415) 555-2671", "********71"),
        ("person_name", "Jane Roe", "J*** R***"),
        ("username", "jroe", "j***"),
        ("hostname", "janes-mbp.local", "j***.local"),
        ("credit_card", "4111 1111 1111 1111", "************1111"),
        ("national_id", "536-22-1234", "*****1234"),
        ("auth_token", "Bearer NWU3ZGQ5ZjMtYjI0Ny00ODQz", "Bearer NWU3… (24 chars)"),
        ("meeting_title", "Q3 budget review", "Q*** (3 words, 16 chars)"),
        ("file_name", "Q3 Budget.xlsx", "Q***.xlsx"),
        ("file_name", "C:\\Users\\jroe\\secret plan.docx", "s***.docx"),
        ("geo_location", "48.8566", "48.9~"),
        ("identity_match", SHA, "sha256:…"),
        ("identity_match", hashlib.md5(b"x").hexdigest(), "md5:…"),
        ("persistent_id", "5f1e5a1c-8a7b-4b8e-9c1d-1234567890ab", "5f1e… (36 chars)"),
        ("device_serial", "C02XL0GHJGH5", "C0********H5"),
    ],
)
def test_redact_formats(kind, value, expected):
    assert redact(kind, value) == expected


@pytest.mark.parametrize("kind", ["email", "phone", "person_name", "auth_token", "chat_message",
                                  "identity_match", "unknown_type"])
@pytest.mark.parametrize("value", ["", "a", "@", "ab@", "\ud800\udfff" * 3, "x" * 100_000])
def test_redact_never_fails_and_never_echoes_long_values(kind, value):
    out = redact(kind, value)
    assert isinstance(out, str) and len(out) < 100
    if len(value) >= 8:
        assert value not in out


def test_fingerprint_is_short_stable_and_keyed():
    key = bytes(range(32))
    assert fingerprint("abc", key) == fingerprint("abc", key) == "hmac:" + hmac.digest(
        key, b"abc", "sha256")[:8].hex()
    assert fingerprint("abc", key) != fingerprint("abc", bytes(32))
    assert "ba7816bf8f01cfea" not in fingerprint("abc")  # not sha256("abc")
    assert fingerprint("\ud800").startswith("hmac:")


@pytest.mark.parametrize(
    ("location", "path"),
    [("$", ()), ("$.a[0].b", ("a", 0, "b")), ("$['content-type']", ("content-type",)),
     ("$.1.3[0]", ("1", "3", 0)), ("$['it\\'s']", ("it's",)), ("query:uid", None),
     ("$.a[", None)],
)
def test_parse_location(location, path):
    assert parse_location(location) == path


def _finding(location: str, evidence: str, severity: str = "high") -> Finding:
    return Finding(type="email", category="personal_data", severity=severity, location=location,
                   detector="email", evidence=evidence)


def test_redact_tree_replaces_flagged_locations_only():
    tree = {"a": [{"email": "jane@example.org", "n": 1}], "odd key": "x", "b": "keep"}
    out = redact_tree(tree, [_finding("$.a[0].email", "j***@e***.org"),
                             _finding("$['odd key']", "***"), _finding("header:X", "zzz"),
                             _finding("$.missing[3]", "nope")])
    assert out == {"a": [{"email": "j***@e***.org", "n": 1}], "odd key": "***", "b": "keep"}
    assert tree["a"][0]["email"] == "jane@example.org"


def test_redact_tree_nested_json_string_is_replaced_whole():
    tree = {"data": '{"user":{"email":"jane@example.org"}}'}
    out = redact_tree(tree, [_finding("$.data.user.email", "j***@e***.org")])
    assert out == {"data": "j***@e***.org"}


def test_redact_tree_container_finding_wins_over_children():
    tree = {"participants": ["Jane Roe", "Ana Lima"]}
    out = redact_tree(tree, [_finding("$.participants[0]", "J*** R***"),
                             _finding("$.participants", "2 entries")])
    assert out == {"participants": "2 entries"}


def test_redact_tree_end_to_end_hides_identity():
    engine = DetectionEngine(identity_of({"email": "jane.roe@example.org"}))
    tree = {"u": {"mail": "jane.roe@example.org"}, "h": SHA, "ok": "fine"}
    out = redact_tree(tree, engine.detect(make_payload(tree)))
    assert "jane.roe" not in repr(out) and SHA not in repr(out)
    assert out["ok"] == "fine"
