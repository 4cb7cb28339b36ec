"""The detection engine's fast path (plans per shape, memos per text, one re2.Set
prefilter, joined-text scans) against its plain reference evaluator, on generated
requests decoded the real way. One engine serves every example, so its memos
carry from document to document as they do across flows."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import identity_of
from phonehome.decode import decode
from phonehome.detect import DetectionEngine
from phonehome.detect.reference import reference_detect
from phonehome.model import Observation

EMAIL = "jane.roe@example.org"
IDENTITY = identity_of({"email": EMAIL, "name": "Jane Roe", "ip": "198.51.100.23",
                                  "mac": "3c:22:fb:12:34:56", "username": "jroe"})
ENGINE = DetectionEngine(IDENTITY, key=b"k" * 32)

KEYS = ["email", "userEmail", "ip", "clientIp", "name", "displayName", "deviceName",
        "hostname", "mac", "macAddress", "phone", "lat", "lon", "latitude", "title",
        "meetingTitle", "message", "text", "participants", "audioLevel", "token",
        "authorization", "serial", "ssid", "org", "userId", "id", "count", "path", "file",
        "event", "name", "value", "data", "x", "a b"]
VALUES = [
    EMAIL, "JANE.ROE@EXAMPLE.ORG", "Jane Roe", "jroe", "198.51.100.23", "10.0.0.7",
    "203.0.113.42", "3c:22:fb:12:34:56", "a4-83-e7-12-34-56", "+1 415 555 0134",
    "4111 1111 1111 1111", "janes-mbp.local", "C02XK0ABJGH5", "Q3 budget review",
    "I'll send the slides after lunch", "report-final.docx", "/Users/jroe/app/main.js",
    hashlib.sha256(EMAIL.encode()).hexdigest(), hashlib.md5(EMAIL.encode()).hexdigest(),
    base64.b64encode(EMAIL.encode()).decode(), quote(EMAIL, safe=""), EMAIL[::-1],
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJqcm9lIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
    "Bearer abcdef0123456789abcdef0123456789", "sk_live_0123456789abcdefghijklmn",
    "client.meeting.joined", "2f1e5a1c-8a7b-4b8e-9c1d-1234567890ab", "", "ok", "é€ ü",
    "line one\nline two jane.roe@example.org", "37.7749", "-122.4194",
]

texts = st.one_of(
    st.sampled_from(VALUES),
    st.builds(lambda a, b, sep: a + sep + b, st.sampled_from(VALUES), st.sampled_from(VALUES),
              st.sampled_from([" ", "\n", ",", "=", "/", ""])),
    st.text(max_size=30),
)
scalars = st.one_of(texts, st.integers(-10**6, 10**6), st.floats(-1e3, 1e3, allow_nan=False),
                    st.booleans(), st.none(), st.sampled_from([37.7749, -122.4194, 0.42]))
keys = st.one_of(st.sampled_from(KEYS), st.text(min_size=1, max_size=8))
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
pairs = st.lists(st.tuples(st.sampled_from(KEYS), st.sampled_from(VALUES)), max_size=3)


@st.composite
def requests(draw: st.DrawFn) -> Observation:
    body = draw(st.dictionaries(keys, trees, max_size=5))
    query = draw(pairs)
    headers = [("content-type", "application/json"), *draw(pairs)]
    host = draw(st.sampled_from(["metrics.example.com", "janes-mbp.local", "198.51.100.23"]))
    path = "/v1/m" + ("?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query)
                      if query else "")
    return Observation(id="f", timestamp=0.0, method="POST", url=f"https://{host}{path}",
                       scheme="https", host=host, port=443, path=path, headers=headers,
                       query=query, body=json.dumps(body).encode(),
                       content_type="application/json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=3))
def test_the_fast_path_finds_what_the_reference_finds(observations):
    for observation in observations:
        payload = decode(observation)
        expected = reference_detect(ENGINE, payload)
        assert ENGINE.detect(payload) == expected
        assert ENGINE.detect(payload) == expected  # again, from the memos


def test_the_reference_finds_something_on_a_known_document():
    observation = Observation(
        id="f", timestamp=0.0, method="POST", url="https://m.example.com/v1?u=jroe",
        scheme="https", host="m.example.com", port=443, path="/v1?u=jroe",
        query=[("u", "jroe")], content_type="application/json",
        body=json.dumps({"user": {"email": EMAIL, "ip": "203.0.113.42"}}).encode())
    payload = decode(observation)
    found = {(f.type, f.location) for f in reference_detect(ENGINE, payload)}
    assert ("identity_match", "$.user.email") in found
    assert ("email", "$.user.email") in found
    assert ("ip_address", "$.user.ip") in found
    assert ENGINE.detect(payload) == reference_detect(ENGINE, payload)
