"""The engine as a whole: the issue's "done when" capture, hostile input, finding shape,
and agreement between the batched engine and each detector's pure API."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import identity_of, make_payload, tree_leaves
from phonehome.detect import DETECTORS, Context, DetectionEngine, redact_tree
from phonehome.detect.base import MIN_CONFIDENCE
from phonehome.model import FINDING_TYPES, SEVERITIES, Leaf, Payload

EMAIL = "jane.roe@example.org"
ENGINE = DetectionEngine(identity_of({"email": EMAIL, "name": "Jane Roe"}))


def capture() -> Payload:
    """The issue's scenario next to every decoy it lists."""
    tree = {"metrics": [
        {"eventPayload": {
            "eventId": "2f1e5a1c-8a7b-4b8e-9c1d-1234567890ab", "version": 1,
            "originTime": {"triggered": "2024-05-09T10:00:00.000Z"},
            "origin": {"clientInfo": {
                "clientVersion": "43.8.0.26", "osVersion": "10.0.22631", "os_version": "14.4.1",
                "model": "MacBookPro18,3", "macAddress": "a4:83:e7:12:34:56"}},
            "event": {"name": "client.meeting.title-changed",
                      "meetingTitle": "Q3 budget review",
                      "intervalMetadata": {"peerReflexiveIP": "203.0.113.42"},
                      "buildHash": "9b2f3c1d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
                      "ts": 1715250000000, "count": 17,
                      "identifiers": {"userId": hashlib.sha256(EMAIL.encode()).hexdigest()}}}},
        {"crashReport": {"crashStack": "TypeError: x\n  at f (/Users/jroe/app/main.js:1:2)"}},
        {"chat": {"text": "I'll send the slides after lunch"}},
        {"user": {"email": EMAIL, "emailB64": base64.b64encode(EMAIL.encode()).decode()}},
    ]}
    return make_payload(tree, query=[("u", EMAIL)],
                        url="https://t.example.net/c?u=" + quote(EMAIL, safe=""))


def test_done_when_scenario():
    findings = ENGINE.detect(capture())
    got = {(f.type, f.location, f.encoding) for f in findings}
    expected = {
        ("identity_match", "$.metrics[3].user.email", "plain"),
        ("identity_match", "query:u", "plain"),
        ("identity_match", "url", "url"),
        ("identity_match", "$.metrics[3].user.emailB64", "base64"),
        ("identity_match", "$.metrics[0].eventPayload.event.identifiers.userId", "sha256"),
        ("email", "$.metrics[3].user.email", None),
        ("email", "query:u", None),
        ("ip_address", "$.metrics[0].eventPayload.event.intervalMetadata.peerReflexiveIP", None),
        ("mac_address", "$.metrics[0].eventPayload.origin.clientInfo.macAddress", None),
        ("username", "$.metrics[1].crashReport.crashStack", None),
        ("meeting_title", "$.metrics[0].eventPayload.event.meetingTitle", None),
        ("chat_message", "$.metrics[2].chat.text", None),
    }
    assert got == expected
    evidence = " ".join(f.evidence + " " + f.reason for f in findings)
    for raw in (EMAIL, "203.0.113.42", "a4:83:e7:12:34:56", "jroe", "Q3 budget", "slides"):
        assert raw not in evidence


def test_findings_are_well_formed():
    findings = ENGINE.detect(capture())
    assert findings
    for f in findings:
        assert f.type in FINDING_TYPES and f.severity in SEVERITIES
        assert f.category in ("personal_data", "meeting_content")
        assert f.severity in ("medium", "high")
        assert MIN_CONFIDENCE <= f.confidence <= 1
        assert f.fingerprint and f.fingerprint.startswith("hmac:") and len(f.fingerprint) == 21
        assert f.reason and "\n" not in f.reason
        assert (f.encoding is None) is (f.type != "identity_match")
        json.dumps({k: getattr(f, k) for k in ("type", "evidence", "reason", "location")})


def test_detect_is_deterministic_and_reusable():
    first = ENGINE.detect(capture())
    assert ENGINE.detect(capture()) == first
    assert [f.value for f in ENGINE.detect(capture())] == [f.value for f in first]


def test_empty_and_scalar_only_payloads():
    assert ENGINE.detect(make_payload()) == []
    assert ENGINE.detect(make_payload({"a": None, "b": True, "c": 1.5, "d": ""})) == []


HOSTILE = [
    "a" * 100_000,
    "1" * 100_000,
    "1.2.3.4 " * 12_000,
    "a@b.co " * 15_000,
    "\ud800\udc00\udfff" * 1000 + " jane.roe@example.org",
    "/Users/" * 10_000,
    "+1" * 50_000,
    "eyJ" * 30_000,
    "é" * 50_000 + " 203.0.113.42",
    "ab:" * 30_000,
    "\x00" * 10_000,
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("value", HOSTILE, ids=lambda v: repr(v[:12]))
def test_hostile_strings_are_bounded(value):
    findings = ENGINE.detect(make_payload({"message": value, "clientVersion": value}))
    per_location: dict[tuple[str, str], int] = {}
    for f in findings:
        per_location[(f.location, f.type)] = per_location.get((f.location, f.type), 0) + 1
        assert len(f.evidence) < 200
    assert all(n <= 16 for n in per_location.values())


def test_invalid_surrogates_still_find_what_follows():
    value = "\ud800 203.0.113.42 \udfff jane.roe@example.org"
    types = {f.type for f in ENGINE.detect(make_payload({"note": value}))}
    assert {"ip_address", "email", "identity_match"} <= types


def test_deep_and_wide_payloads():
    deep: dict = {"email": EMAIL}
    for _ in range(200):
        deep = {"x": deep}
    wide = {f"k{i}": f"value {i}" for i in range(5000)}
    wide["ip"] = "203.0.113.42"
    assert any(f.type == "email" for f in ENGINE.detect(make_payload(deep)))
    assert [f.type for f in ENGINE.detect(make_payload(wide))] == ["ip_address"]


def test_url_repeats_of_query_values_are_not_double_reported():
    payload = make_payload(query=[("ip", "203.0.113.42")],
                           url="https://t.example.net/c?ip=203.0.113.42")
    assert [f.location for f in DetectionEngine().detect(payload)] == ["query:ip"]


def test_vendor_host_header_and_url_host_are_not_personal():
    payload = make_payload(headers=[("Host", "203.0.113.5"), ("X-Forwarded-For", "198.51.100.7")],
                           url="https://203.0.113.5/metrics")
    assert [f.location for f in DetectionEngine().detect(payload)] == ["header:X-Forwarded-For"]


def test_authorization_header_is_an_auth_token():
    jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqYW5lIn0.c2lnbmF0dXJl"
    payload = make_payload(headers=[("Authorization", f"Bearer {jwt}")],
                           cookies=[("JSESSIONID", "9f8e7d6c5b4a39281706f5e4d3c2b1a0")])
    found = {(f.type, f.location) for f in DetectionEngine().detect(payload)}
    assert found == {("auth_token", "header:Authorization"), ("auth_token", "cookie:JSESSIONID")}


_SCALARS = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["jane.roe@example.org", "203.0.113.42", "192.168.0.7", "a4:83:e7:12:34:56",
                     "4111 1111 1111 1111", "536-22-1234", "+14155552671", "Jane Roe",
                     "/Users/jroe/x", "43.8.0.26", "Q3 review", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIi"
                     "OiIxMjM0NTY3ODkwIn0.x"]),
    st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
)
_KEYS = st.sampled_from(["email", "ip", "displayName", "title", "message", "clientVersion",
                         "macAddress", "lat", "audioLevel", "serialNumber", "x", "hostname",
                         "userName", "transcript", "fileName", "token"])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_KEYS, _SCALARS), min_size=1, max_size=8))
def test_engine_agrees_with_each_pure_detector(pairs):
    tree = {"items": [{key: value} for key, value in pairs]}
    engine = DetectionEngine()
    got = {(f.type, f.location) for f in engine.detect(make_payload(tree))}
    expected = set()
    for leaf in tree_leaves(tree):
        for cls in DETECTORS:
            if cls().detect(leaf.value, Context.of(leaf.path, leaf.source)):
                expected.add((cls.type, leaf.location))
    # no list keys here, so no hit is merged into a container finding
    assert got == expected


def test_leaf_via_is_ignored_but_location_kept():
    leaf = Leaf("$.data.user.email", ("data", "user", "email"), EMAIL, "body", ("base64", "json"))
    payload = Payload(kind="json", tree={"data": "x"}, leaves=[leaf], size=1, decoded_size=1,
                      sha256="")
    assert {f.location for f in ENGINE.detect(payload)} == {"$.data.user.email"}
    assert redact_tree({"data": "eyJ1c2VyIjp7fX0="}, ENGINE.detect(payload)) == {
        "data": "j***@e***.org"}


# --- the engine's memos and per-text search -------------------------------------------

def _may_match_newline(pattern: str) -> bool:
    """Whether some match of `pattern` could hold "\\n" or lean on ^/$ (sre parse tree)."""
    from re import _parser as sre  # the stdlib's own parser; tests only

    newline = ord("\n")

    def in_class(items: list) -> bool:
        negate = any(op is sre.NEGATE for op, _ in items)
        hit = False
        for op, arg in items:
            if op is sre.LITERAL:
                hit |= arg == newline
            elif op is sre.RANGE:
                hit |= arg[0] <= newline <= arg[1]
            elif op is sre.CATEGORY:
                hit |= arg in (sre.CATEGORY_SPACE, sre.CATEGORY_NOT_DIGIT,
                               sre.CATEGORY_NOT_WORD)
        return hit != negate

    def walk(tree: list) -> bool:
        for op, arg in tree:
            if op is sre.LITERAL and arg == newline:
                return True
            if op is sre.NOT_LITERAL and arg != newline:
                return True
            if op is sre.IN and in_class(arg):
                return True
            if op is sre.AT and arg in (sre.AT_BEGINNING, sre.AT_END, sre.AT_BEGINNING_STRING,
                                        sre.AT_END_STRING):
                return True
            if op is sre.BRANCH and any(walk(list(branch)) for branch in arg[1]):
                return True
            if op is sre.SUBPATTERN and walk(list(arg[-1])):
                return True
            if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and walk(
                    list(arg[2])):
                return True
        return False

    return walk(list(sre.parse(pattern)))


@pytest.mark.parametrize("cls", [c for c in DETECTORS if c.pattern], ids=lambda c: c.name)
def test_single_line_claims_hold(cls):
    patterns = (cls.pattern,) if isinstance(cls.pattern, str) else cls.pattern
    spans = any(_may_match_newline(p) for p in patterns)
    assert cls.single_line is not spans


def test_the_newline_check_sees_spanning_patterns():
    assert _may_match_newline(r"Bearer\s+x")
    assert _may_match_newline(r"[^/]{3}")
    assert _may_match_newline(r"^abc")
    assert not _may_match_newline(r"[^/\s]{3}|a[ -]b")


_TEXTS = st.sampled_from([
    "jane.roe@example.org", "203.0.113.42", "192.168.0.7 and 10.0.0.1", "a4:83:e7:12:34:56",
    "4111 1111 1111 1111", "536-22-1234", "+14155552671", "Jane Roe", "/Users/jroe/x",
    "43.8.0.26", "x Bearer", "abcdefghijklmnopqrstuvwxyz012345", "Bearer abcdefghijklmnop1234",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.x", "amFuZS5yb2VAZXhhbXBsZS5vcmc=",
    "", "plain words here", "é 203.0.113.9", "\ud800 198.51.100.7",
])


@settings(max_examples=120, deadline=None)
@given(st.lists(st.lists(st.tuples(_KEYS, st.one_of(_TEXTS, _SCALARS)), min_size=1, max_size=6),
                min_size=2, max_size=5))
def test_a_long_lived_engine_agrees_with_a_new_one(flows):
    """Memos (places, texts, accepted matches, findings) never change an answer."""
    identity = identity_of({"email": EMAIL, "name": "Jane Roe"})
    long_lived = DetectionEngine(identity)
    for pairs in flows * 2:
        tree = {"items": [{key: value} for key, value in pairs], "list": [v for _, v in pairs]}
        payload = make_payload(tree, query=[(k, str(v)) for k, v in pairs[:2]],
                               headers=[("X-" + k, str(v)) for k, v in pairs[:1]])
        fresh = DetectionEngine(identity).detect(payload)
        got = long_lived.detect(payload)
        assert [repr(f) for f in got] == [repr(f) for f in fresh]
        assert [f.value for f in got] == [f.value for f in fresh]


def test_match_budget_is_the_same_from_memo_and_fresh():
    many = " ".join(f"203.0.113.{n % 200 + 1}" for n in range(300))
    tree = {"a": [many] * 20, "b": "198.51.100.7", "c": many[:400]}
    engine = DetectionEngine()
    first = engine.detect(make_payload(tree))
    again = engine.detect(make_payload(tree))
    assert [repr(f) for f in again] == [repr(f) for f in first]
    # 300 matches a leaf: MAX_MATCHES (4096) runs out inside $.a[13]
    assert {f.location for f in first} == {f"$.a[{n}]" for n in range(14)}


def test_a_newline_spanning_match_keeps_its_old_meaning():
    # "Bearer" ending one leaf and a token opening the next make one match across the
    # two leaves; it is dropped, as it always was, and hides nothing else.
    payload = make_payload({"a": "x Bearer", "b": "abcdefghijklmnopqrstuvwxyz012345"})
    assert [f.type for f in DetectionEngine().detect(payload)] == []
    payload = make_payload({"a": "x", "b": "Bearer abcdefghijklmnop1234"})
    assert [(f.type, f.location) for f in DetectionEngine().detect(payload)] == [
        ("auth_token", "$.b")]


def test_places_whose_location_repeats_with_other_paths():
    # "query:a.b" names a query parameter "a.b" and key "b" of JSON inside parameter "a".
    leaves = [Leaf("query:a.b", ("a.b",), "Jane Roe", "query"),
              Leaf("query:a.b", ("a", "b"), "Jane Roe", "query"),
              Leaf("query:a.displayName", ("a", "displayName"), "Jane Roe", "query")]
    payload = Payload(kind="form", tree=None, leaves=leaves, size=1, decoded_size=1, sha256="")
    for _ in range(2):
        found = [(f.type, f.location) for f in ENGINE.detect(payload)
                 if f.type == "person_name"]
        assert found == [("person_name", "query:a.displayName")]
