"""apply_enforcement on real mitmproxy flows: redaction by body kind and by place,
content encodings, hashed and encoded identities, unsafe bodies, dry run, block.

Findings come from a small exact-value scanner over the real decoder's leaves,
standing in for the detectors (test_enforce_integration.py runs the real ones).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import zlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import brotli
import pytest
from mitmproxy import http
from mitmproxy.net import encoding as mitm_encoding
from mitmproxy.net.http.http1 import assemble
from mitmproxy.test import tflow

from phonehome.capture.observe import observe_request
from phonehome.decode import DecodeLimits, decode
from phonehome.enforce import (
    BLOCK_HEADER,
    EnforcementPlan,
    apply_enforcement,
)
from phonehome.model import Finding, Payload

EMAIL = "jane.roe@example.org"
NAME = "Jane Roe"
USER = "janeroe7"
IP = "203.0.113.42"
MAC = "a4:83:e7:12:34:56"
SHA256 = hashlib.sha256(EMAIL.encode()).hexdigest()
SHA1_UPPER = hashlib.sha1(EMAIL.encode()).hexdigest().upper()
B64 = base64.b64encode(EMAIL.encode()).decode()
B64_SHA256 = base64.b64encode(hashlib.sha256(EMAIL.lower().encode()).digest()).decode()
URLENC = quote(EMAIL, safe="")
SHORT = "jo@ex.io"  # its placeholder cannot keep the length (x.invalid)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.invalid$")

# value → (finding type, encoding)
KNOWN: dict[str, tuple[str, str]] = {
    EMAIL: ("email", "plain"),
    NAME: ("person_name", "plain"),
    USER: ("username", "plain"),
    IP: ("ip_address", "plain"),
    MAC: ("mac_address", "plain"),
    SHA256: ("identity_match", "sha256"),
    SHA1_UPPER: ("identity_match", "sha1"),
    B64: ("identity_match", "base64"),
    B64_SHA256: ("identity_match", "sha256-base64"),
    URLENC: ("identity_match", "url"),
    SHORT: ("email", "plain"),
}
ALL_FORMS = tuple(KNOWN)


def scan(payload: Payload, values: Sequence[str] = ALL_FORMS) -> list[Finding]:
    """Exact-value detector: every leaf holding a known value."""
    found = []
    for leaf in payload.leaves:
        if not isinstance(leaf.value, str):
            continue
        for value in values:
            if value in leaf.value:
                type_, enc = KNOWN.get(value, ("identity_match", "plain"))
                found.append(Finding(type=type_, category="personal_data", severity="high",
                                     location=leaf.location, detector="test", evidence="***",
                                     encoding=enc, value=value))
    return found


def numeric(location: str, value: str = "series", type_: str = "audio_level") -> Finding:
    return Finding(type=type_, category="meeting_content", severity="medium",
                   location=location, detector="test", evidence="~", value=value)


def make_flow(url: str, body: bytes = b"", headers: dict[str, str] | None = None,
              method: str = "POST", coding: str | None = None) -> http.HTTPFlow:
    request = http.Request.make(method, url, b"", headers or {})
    if coding:
        request.headers["content-encoding"] = coding
    request.content = body
    return tflow.tflow(req=request)


def run(flow: http.HTTPFlow, *, values: Sequence[str] = ALL_FORMS, extra: Sequence[Finding] = (),
        dry_run: bool = False, limits: DecodeLimits | None = None,
        recheck: bool = True) -> tuple[dict[str, Any], Payload, list[Finding]]:
    payload = decode(observe_request(flow), limits or DecodeLimits())
    findings = scan(payload, values) + list(extra)
    plan = EnforcementPlan("redact", "test", dry_run, 204,
                           tuple(dict.fromkeys((f.type, f.location) for f in findings)))
    checker = (lambda p: scan(p, values)) if recheck else None
    result = apply_enforcement(flow, plan, payload, findings, recheck=checker, limits=limits)
    return result, payload, findings


def sent_body(flow: http.HTTPFlow) -> bytes:
    """The body as the server will decode it (every Content-Encoding layer undone)."""
    data = flow.request.raw_content or b""
    for layer in reversed(flow.request.headers.get("content-encoding", "").split(",")):
        if layer.strip() and layer.strip() != "identity":
            data = mitm_encoding.decode(data, layer.strip())
    return data


def wire(flow: http.HTTPFlow) -> bytes:
    return assemble.assemble_request(flow.request)


def assert_clean(flow: http.HTTPFlow, values: Sequence[str] = ALL_FORMS) -> None:
    """No value in any place, and the wire framing is consistent."""
    everything = wire(flow) + sent_body(flow)
    for value in values:
        assert value.encode() not in everything, value
        assert quote(value, safe="").encode() not in everything, value
    raw = flow.request.raw_content or b""
    if "content-length" in flow.request.headers:
        assert int(flow.request.headers["content-length"]) == len(raw)


# --- JSON ------------------------------------------------------------------------------


def test_json_nested_arrays_numbers_keep_structure_and_types() -> None:
    body = {
        "user": {"email": EMAIL, "displayName": NAME, "age": 41, "active": True},
        "items": [{"e": EMAIL, "n": 1.5}, 3, None, [USER, "keep"]],
        "note": f"sent by {EMAIL} from {IP}",
        "count": 7,
    }
    flow = make_flow("https://m.example.com/metrics", json.dumps(body).encode(),
                     {"content-type": "application/json"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted"
    assert result["dry_run"] is False
    out = json.loads(sent_body(flow))
    assert_clean(flow)
    assert out["user"]["age"] == 41 and out["user"]["active"] is True
    assert out["items"][0]["n"] == 1.5 and out["items"][1:3] == [3, None]
    assert out["items"][3][1] == "keep" and out["count"] == 7
    assert EMAIL_RE.match(out["user"]["email"]) and EMAIL_RE.match(out["items"][0]["e"])
    assert len(out["user"]["email"]) == len(EMAIL)
    assert len(out["user"]["displayName"]) == len(NAME)
    assert len(out["items"][3][0]) == len(USER)
    assert out["note"].startswith("sent by ") and " from " in out["note"]
    ip = out["note"].rsplit(" ", 1)[1]
    assert ip.count(".") == 3 and ip != IP
    assert set(result["changed"]) >= {"$.user.email", "$.user.displayName", "$.items[0].e",
                                       "$.items[3][0]", "$.note"}


@pytest.mark.parametrize(
    ("value", "check"),
    [
        (SHA256, lambda new: re.fullmatch(r"[0-9a-f]{64}", new)
         and new == hashlib.sha256(b"phonehome-redacted").hexdigest()),
        (SHA1_UPPER, lambda new: re.fullmatch(r"[0-9A-F]{40}", new)),
        (B64, lambda new: EMAIL_RE.match(base64.b64decode(new).decode())),
        (B64_SHA256, lambda new: len(base64.b64decode(new)) == 32 and new.endswith("=")),
        (URLENC, lambda new: "%40" in new and new.endswith(".invalid")),
        (MAC, lambda new: re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", new)),
    ],
    ids=["sha256-hex", "sha1-hex-upper", "base64", "sha256-base64", "url", "mac"],
)
def test_identity_forms_get_same_format_placeholders(value: str, check: Any) -> None:
    flow = make_flow("https://m.example.com/x", json.dumps({"v": value}).encode(),
                     {"content-type": "application/json"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    new = json.loads(sent_body(flow))["v"]
    assert new != value and len(new) == len(value)
    assert check(new), new


def test_numbers_and_series_become_zero() -> None:
    body = {"audio": {"levels": [0.5, -42, 3, 0]}, "mic": 17, "ratio": 0.25, "other": 99,
            "participants": [{"name": NAME, "joined": 1700000000}], "flag": True}
    flow = make_flow("https://m.example.com/x", json.dumps(body).encode(),
                     {"content-type": "application/json"})
    extra = [numeric("$.audio.levels"), numeric("$.mic", "17"), numeric("$.ratio", "0.25"),
             numeric("$.participants", "1 entry", "participant_list"), numeric("$.flag", "x")]
    result, _, _ = run(flow, values=(), extra=extra)
    assert result["action"] == "redacted", result
    out = json.loads(sent_body(flow))
    assert out["audio"]["levels"] == [0.0, 0, 0, 0]
    assert [type(v) for v in out["audio"]["levels"]] == [float, int, int, int]
    assert out["mic"] == 0 and type(out["mic"]) is int
    assert out["ratio"] == 0.0 and type(out["ratio"]) is float
    assert out["other"] == 99 and out["flag"] is True
    assert out["participants"][0]["joined"] == 0
    assert out["participants"][0]["name"] != NAME
    assert len(out["participants"][0]["name"]) == len(NAME)
    assert set(result["changed"]) == {"$.audio.levels", "$.mic", "$.ratio", "$.participants"}


def test_short_numbers_are_replaced_at_their_location_only() -> None:
    body = {"audioLevel": "0.5", "clientVersion": "10.5.1", "note": "gain 0.5", "n": "17",
            "count": "17 items"}
    flow = make_flow("https://m.example.com/x", json.dumps(body).encode(),
                     {"content-type": "application/json"})
    extra = [numeric("$.audioLevel", "0.5"), numeric("$.n", "17")]
    result, _, _ = run(flow, values=(), extra=extra)
    assert result["action"] == "redacted", result
    out = json.loads(sent_body(flow))
    assert out == {"audioLevel": "0.0", "clientVersion": "10.5.1", "note": "gain 0.5",
                   "n": "00", "count": "17 items"}


def test_long_numbers_are_replaced_everywhere() -> None:
    meeting = "2345678901"
    KNOWN[meeting] = ("identity_match", "plain")
    flow = make_flow(f"https://m.example.com/meetings/{meeting}/join?m={meeting}",
                     json.dumps({"meetingNumber": meeting, "title": f"call {meeting}"}).encode(),
                     {"content-type": "application/json"})
    result, _, _ = run(flow, values=(meeting,))
    assert result["action"] == "redacted", result
    assert_clean(flow, (meeting,))
    assert flow.request.path.startswith("/meetings/0000000000/join?m=0000000000")


def test_nested_json_and_base64_json_inside_strings() -> None:
    inner = json.dumps({"user": {"email": EMAIL}, "n": 1})
    body = {"payload": inner, "packed": base64.b64encode(inner.encode()).decode(),
            "packed_url": base64.urlsafe_b64encode(inner.encode()).decode().rstrip("=")}
    flow = make_flow("https://m.example.com/x", json.dumps(body).encode(),
                     {"content-type": "application/json"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    out = json.loads(sent_body(flow))
    assert json.loads(out["payload"])["user"]["email"] != EMAIL
    assert json.loads(out["payload"])["n"] == 1
    unpacked = json.loads(base64.b64decode(out["packed"]))
    assert EMAIL_RE.match(unpacked["user"]["email"])
    padded = out["packed_url"] + "=" * (-len(out["packed_url"]) % 4)
    assert EMAIL_RE.match(json.loads(base64.urlsafe_b64decode(padded))["user"]["email"])
    assert_clean(flow)


def test_json_keys_holding_a_value_are_replaced() -> None:
    body = {"byUser": {EMAIL: {"n": 1}}, "email": EMAIL}
    flow = make_flow("https://m.example.com/x", json.dumps(body).encode(),
                     {"content-type": "application/json"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted"
    assert_clean(flow)
    assert list(json.loads(sent_body(flow))["byUser"].values()) == [{"n": 1}]


def test_ndjson_lines() -> None:
    lines = [json.dumps({"e": EMAIL, "i": 1}), "", json.dumps({"i": 2}), f"plain {USER} line"]
    body = ("\n".join(lines) + "\n").encode()
    flow = make_flow("https://m.example.com/x", body, {"content-type": "application/x-ndjson"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    out = sent_body(flow).decode().split("\n")
    assert len(out) == 5 and out[1] == "" and out[4] == ""
    assert json.loads(out[0])["i"] == 1 and out[2] == lines[2]
    assert out[3].startswith("plain ") and USER not in out[3]
    assert_clean(flow)


# --- content encodings ---------------------------------------------------------------------

CODINGS = ["gzip", "deflate", "br", "zstd", "gzip, br", "identity"]


@pytest.mark.parametrize("coding", CODINGS)
def test_compressed_bodies_stay_valid(coding: str) -> None:
    body = json.dumps({"email": EMAIL, "pad": "x" * 500, "h": SHA256}).encode()
    flow = make_flow("https://m.example.com/x", b"", {"content-type": "application/json"})
    raw = body
    for layer in [c.strip() for c in coding.split(",")]:
        raw = mitm_encoding.encode(raw, layer)
    flow.request.headers["content-encoding"] = coding
    flow.request.raw_content = raw
    flow.request.headers["content-length"] = str(len(raw))
    original_raw = flow.request.raw_content
    if coding != "identity":
        assert original_raw != body
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    assert flow.request.headers["content-encoding"] == coding
    raw = flow.request.raw_content
    assert raw != original_raw
    # independent decoders, not mitmproxy's own
    data = raw
    for layer in reversed([c.strip() for c in coding.split(",")]):
        if layer == "gzip":
            data = gzip.decompress(data)
        elif layer == "deflate":
            data = zlib.decompress(data)
        elif layer == "br":
            data = brotli.decompress(data)
        elif layer == "zstd":
            data = mitm_encoding.decode(data, "zstd")
    out = json.loads(data)
    assert EMAIL_RE.match(out["email"]) and out["pad"] == "x" * 500
    assert re.fullmatch(r"[0-9a-f]{64}", out["h"]) and out["h"] != SHA256
    assert int(flow.request.headers["content-length"]) == len(raw)
    assert_clean(flow)


def test_chunked_request_gets_no_content_length() -> None:
    body = json.dumps({"email": EMAIL}).encode()
    flow = make_flow("https://m.example.com/x", body, {"content-type": "application/json",
                                                       "transfer-encoding": "chunked"})
    flow.request.headers.pop("content-length", None)
    result, _, _ = run(flow)
    assert result["action"] == "redacted"
    assert "content-length" not in flow.request.headers
    assert EMAIL.encode() not in sent_body(flow)


# --- forms, text, multipart -------------------------------------------------------------------


def test_form_body() -> None:
    body = f"email={quote(EMAIL, safe='')}&name=Jane+Roe&keep=a%20b&n=1&tag=x&tag={USER}"
    flow = make_flow("https://m.example.com/x", body.encode(),
                     {"content-type": "application/x-www-form-urlencoded"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    sent = sent_body(flow).decode()
    pairs = parse_qsl(sent, keep_blank_values=True)
    assert [k for k, _ in pairs] == ["email", "name", "keep", "n", "tag", "tag"]
    values = dict(pairs[:4])
    assert EMAIL_RE.match(values["email"]) and values["name"] != NAME
    assert len(values["name"]) == len(NAME)
    assert "keep=a%20b&n=1&tag=x&" in sent  # untouched pairs keep their exact bytes
    assert pairs[5][1] != USER
    assert {"$.email", "$.name", "$.tag[1]"} <= set(result["changed"])
    assert_clean(flow)


def test_text_body() -> None:
    body = f"Traceback: /Users/{USER}/Library/app.log\nuser={EMAIL}\n".encode()
    flow = make_flow("https://m.example.com/x", body, {"content-type": "text/plain"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    sent = sent_body(flow).decode()
    assert sent.startswith("Traceback: /Users/") and sent.endswith("\n")
    assert_clean(flow)


def test_multipart_body() -> None:
    boundary = "XyZzy"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\n{EMAIL}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"log\"; filename=\"a.log\"\r\n"
            f"Content-Type: text/plain\r\n\r\nuser {USER} logged in\r\n--{boundary}--\r\n")
    flow = make_flow("https://m.example.com/x", body.encode(),
                     {"content-type": f"multipart/form-data; boundary={boundary}"})
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    sent = sent_body(flow).decode()
    assert sent.count(f"--{boundary}") == 3 and sent.endswith(f"--{boundary}--\r\n")
    assert_clean(flow)
    again = decode(observe_request(flow))
    assert again.kind == "multipart" and set(again.tree) == {"email", "log"}


def test_protobuf_same_length_replacement() -> None:
    def field(number: int, data: bytes) -> bytes:
        return bytes([number << 3 | 2, len(data)]) + data

    body = field(1, EMAIL.encode()) + field(2, b"keep") + field(3, SHA256.encode())
    flow = make_flow("https://m.example.com/x", body, {"content-type": "application/x-protobuf"})
    result, payload, _ = run(flow)
    assert payload.kind == "protobuf"
    assert result["action"] == "redacted", result
    sent = sent_body(flow)
    assert len(sent) == len(body) and b"keep" in sent
    assert_clean(flow)
    assert decode(observe_request(flow)).kind == "protobuf"


# --- headers, query, cookies, URL ---------------------------------------------------------------


def test_headers_query_cookies_url() -> None:
    url = (f"https://m.example.com/users/{quote(EMAIL, safe='')}/profile"
           f"?uid={quote(EMAIL, safe='')}&h={SHA256}&keep=1&name=Jane+Roe")
    flow = make_flow(url, b"", {"x-user": EMAIL, "x-device": f"mac={MAC}", "accept": "*/*",
                                "cookie": f"a=1; sid={B64}; q=\"{USER}\""}, method="GET")
    result, _, _ = run(flow)
    assert result["action"] == "redacted", result
    assert_clean(flow)
    request = flow.request
    assert request.headers["accept"] == "*/*"
    assert EMAIL_RE.match(request.headers["x-user"])
    assert request.headers["x-device"].startswith("mac=")
    cookies = dict(request.cookies.items(multi=True))
    assert cookies["a"] == "1"
    assert EMAIL_RE.match(base64.b64decode(cookies["sid"]).decode())
    assert request.headers["cookie"].endswith('"') and USER not in request.headers["cookie"]
    query = dict(request.query.items(multi=True))
    assert EMAIL_RE.match(query["uid"]) and query["keep"] == "1"
    assert re.fullmatch(r"[0-9a-f]{64}", query["h"]) and query["h"] != SHA256
    assert query["name"] != NAME and len(query["name"]) == len(NAME)
    path = urlsplit(request.url).path
    assert path.startswith("/users/") and path.endswith("/profile")
    assert request.host == "m.example.com"
    assert {"header:x-user", "header:x-device", "cookie:sid", "cookie:q", "query:uid",
            "query:h", "url"} <= set(result["changed"])


def test_value_in_host_cannot_be_redacted() -> None:
    host = "janeroe7.example.org"
    flow = make_flow(f"https://{host}/x", json.dumps({"u": USER}).encode(),
                     {"content-type": "application/json"})
    result, _, _ = run(flow, values=(USER,))
    assert result["action"] == "blocked_unsafe_redaction", result
    assert "still present" in result["reason"]
    assert flow.response is not None and flow.response.status_code == 204


# --- unsafe bodies are blocked -----------------------------------------------------------------

UNSAFE = [
    # id, content-type, body, coding, limits, extra findings, reason fragment
    ("truncated", "application/json",
     json.dumps({"email": EMAIL, "a": [1] * 50}).encode(), None, DecodeLimits(max_leaves=10), (),
     "partly decoded"),
    ("bad gzip", "application/json", json.dumps({"email": EMAIL}).encode(), "gzip-broken", None,
     (), "cannot decode content-encoding"),
    ("broken json", "application/json", b'{"email": "' + EMAIL.encode() + b'", "a": [1, 2',
     None, None, (), "does not parse"),
    ("invalid utf-8 text", "text/plain", b"\xff\xfe user " + EMAIL.encode(), None, None, (),
     "not valid UTF-8"),
    ("protobuf with a length change", "application/x-protobuf",
     bytes([10, len(SHORT)]) + SHORT.encode() + bytes([18, 4]) + b"keep", None, None, (),
     "same length"),
    ("binary with a located number", "application/octet-stream",
     b"\x00\x01" + EMAIL.encode() + b"\x00", None, None, (numeric("$.x", "5"),),
     "cannot replace a value in place"),
]


@pytest.mark.parametrize(
    ("content_type", "body", "coding", "limits", "extra", "fragment"),
    [row[1:] for row in UNSAFE], ids=[row[0] for row in UNSAFE])
@pytest.mark.parametrize("dry_run", [False, True])
def test_unsafe_bodies_are_blocked(content_type: str, body: bytes, coding: str | None,
                                   limits: DecodeLimits | None, extra: tuple[Finding, ...],
                                   fragment: str, dry_run: bool) -> None:
    flow = make_flow("https://m.example.com/x", body, {"content-type": content_type})
    if coding == "gzip-broken":
        flow.request.headers["content-encoding"] = "gzip"  # body is not gzip
    values = (*ALL_FORMS, SHORT)
    before = flow.get_state()
    result, _, _ = run(flow, values=values, extra=extra, limits=limits, dry_run=dry_run)
    assert fragment in result["reason"], result["reason"]
    if dry_run:
        assert result["action"] == "would_block"
        assert flow.get_state() == before
    else:
        assert result["action"] == "blocked_unsafe_redaction"
        assert flow.response is not None and flow.response.status_code == 204
        assert flow.request.get_state() == before["request"]  # not half-redacted
    assert result["changed"]


def test_without_recheck_the_byte_check_still_catches_survivors() -> None:
    # the value sits in the Host header, which is never rewritten
    flow = make_flow("https://m.example.com/x", b"", {"x-a": USER}, method="GET")
    flow.request.headers["host"] = f"{USER}.example.org"
    result, _, _ = run(flow, values=(USER,), recheck=False)
    assert result["action"] == "blocked_unsafe_redaction"


# --- dry run, pass, block -------------------------------------------------------------------------

def _flows() -> list[http.HTTPFlow]:
    return [
        make_flow("https://m.example.com/x", json.dumps({"email": EMAIL}).encode(),
                  {"content-type": "application/json"}, coding="gzip"),
        make_flow(f"https://m.example.com/x?u={quote(EMAIL)}", b"", {"x-u": EMAIL},
                  method="GET"),
        make_flow("https://m.example.com/x", f"a={USER}".encode(),
                  {"content-type": "application/x-www-form-urlencoded", "cookie": f"s={B64}"}),
    ]


@pytest.mark.parametrize("index", range(3))
def test_dry_run_changes_nothing(index: int) -> None:
    flow = _flows()[index]
    before = flow.get_state()
    wire_before = wire(flow)
    result, _, _ = run(flow, dry_run=True)
    assert result["action"] == "would_redact", result
    assert result["dry_run"] is True and result["changed"]
    assert flow.get_state() == before
    assert wire(flow) == wire_before
    assert flow.response is None


@pytest.mark.parametrize("index", range(3))
def test_dry_run_reports_what_the_real_run_changes(index: int) -> None:
    dry, real = _flows()[index], _flows()[index]
    dry_result, _, _ = run(dry, dry_run=True)
    real_result, _, _ = run(real)
    assert real_result["action"] == "redacted"
    assert dry_result["changed"] == real_result["changed"]


PASS_FLOWS = [
    ("json gzip", "https://m.example.com/x", json.dumps({"a": 1, "b": "ok"}).encode(),
     {"content-type": "application/json"}, "gzip"),
    ("form", "https://m.example.com/x?q=1", b"a=1&b=%20x", {"content-type":
                                                            "application/x-www-form-urlencoded"},
     None),
    ("binary", "https://m.example.com/x", bytes(range(256)), {}, None),
    ("get", "https://m.example.com/x?a=b%20c&d", b"", {"cookie": "a=1; b"}, None),
]


@pytest.mark.parametrize(("url", "body", "headers", "coding"),
                         [row[1:] for row in PASS_FLOWS], ids=[row[0] for row in PASS_FLOWS])
@pytest.mark.parametrize("action", ["pass", "redact"])
def test_flows_without_findings_are_untouched(url: str, body: bytes, headers: dict[str, str],
                                              coding: str | None, action: str) -> None:
    flow = make_flow(url, body, headers, coding=coding)
    before, wire_before = flow.get_state(), wire(flow)
    payload = decode(observe_request(flow))
    findings = scan(payload)
    assert findings == []
    plan = EnforcementPlan(action, "test", False, 204, ())
    result = apply_enforcement(flow, plan, payload, findings, recheck=scan)
    assert flow.get_state() == before and wire(flow) == wire_before
    assert flow.response is None
    assert result["action"] == "passed" and result["changed"] == []


def test_findings_only_in_headers_leave_the_compressed_body_byte_identical() -> None:
    body = json.dumps({"a": 1, "b": "ok"}).encode()
    flow = make_flow("https://m.example.com/x", body, {"content-type": "application/json",
                                                       "x-user": EMAIL}, coding="br")
    raw_before = flow.request.raw_content
    length_before = flow.request.headers["content-length"]
    result, _, _ = run(flow)
    assert result["action"] == "redacted"
    assert flow.request.raw_content == raw_before
    assert flow.request.headers["content-length"] == length_before
    assert result["changed"] == ["header:x-user"]


@pytest.mark.parametrize("status", [204, 200, 403])
@pytest.mark.parametrize("dry_run", [False, True])
def test_block(status: int, dry_run: bool) -> None:
    flow = make_flow("https://m.example.com/x", json.dumps({"email": EMAIL}).encode())
    before = flow.get_state()
    plan = EnforcementPlan("block", "block mode", dry_run, status, (("email", "$.email"),))
    result = apply_enforcement(flow, plan, None, [])
    assert result["changed"] == ["$.email"] and result["status"] == status
    assert flow.request.get_state() == before["request"]
    if dry_run:
        assert result["action"] == "would_block"
        assert flow.get_state() == before
        return
    assert result["action"] == "blocked"
    response = flow.response
    assert response is not None
    assert response.status_code == status and response.raw_content == b""
    assert response.headers[BLOCK_HEADER] == "blocked"
    assert ("content-length" in response.headers) == (status != 204)


def test_unknown_plan_action() -> None:
    flow = make_flow("https://m.example.com/x")
    with pytest.raises(ValueError, match="unknown enforcement action"):
        apply_enforcement(flow, EnforcementPlan("drop", "?"), None, [])
