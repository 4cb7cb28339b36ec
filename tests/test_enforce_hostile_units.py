"""Unit tables behind the hostile-traffic enforce fixes: charsets and opaque bodies in
decode, classification that does not depend on the body, token-exact JSON rewriting,
and the default policy (only telemetry is touched unless the enforce file says so).

Findings come from the real pipeline (bundled rules, real detectors, an identity file).
"""

from __future__ import annotations

import gzip
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mitmproxy import http
from mitmproxy.test import tflow

from builders import ROOT
from phonehome.audit.pipeline import Auditor, AuditSettings
from phonehome.capture.observe import observe_request
from phonehome.decode import decode
from phonehome.decode.jsonio import json_tokens
from phonehome.enforce import (
    Action,
    EnforcePolicy,
    apply_enforcement,
    plan_enforcement,
)
from phonehome.model import Classification, Finding, Observation, Payload

EMAIL = "jane.roe@example.org"
TELEMETRY = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
DOC = json.dumps({"metrics": [{"eventPayload": {"event": {"name": "client.call.initiated"},
                                                "userEmail": EMAIL}}]})


@pytest.fixture(scope="module")
def auditor(tmp_path_factory: pytest.TempPathFactory) -> Auditor:
    identity = tmp_path_factory.mktemp("id") / "identity.yaml"
    identity.write_text(f"email: {EMAIL}\n")
    return Auditor(AuditSettings(identity_path=identity))


def _obs(body: bytes, content_type: str, url: str = TELEMETRY, coding: str = "") -> Observation:
    host = url.split("/")[2]
    path = "/" + url.split("/", 3)[3]
    return Observation(id="1", timestamp=0.0, method="POST", url=url, scheme="https",
                       host=host, port=443, path=path, body=body, content_type=content_type,
                       content_encoding=coding)


def _flow(url: str, body: bytes, content_type: str, coding: str = "") -> http.HTTPFlow:
    request = http.Request.make("POST", url, b"", {"content-type": content_type})
    request.content = body
    if coding:
        request.headers["content-encoding"] = coding
        request.raw_content = body
    return tflow.tflow(req=request)


# --- charsets --------------------------------------------------------------------------

NDJSON = '{"a": 1}\n{"email": "' + EMAIL + '"}\n'
FORM = f"user={EMAIL.replace('@', '%40')}&n=1"
TEXT = f"user {EMAIL} signed in"

CHARSETS = [
    # content type, body, the e-mail's location
    ("application/json; charset=utf-16", DOC.encode("utf-16"), "$.metrics[0]"),
    ("application/json; charset=UTF-16LE", DOC.encode("utf-16-le"), "$.metrics[0]"),
    ("application/json; charset=utf-16be", DOC.encode("utf-16-be"), "$.metrics[0]"),
    ("application/json; charset=utf-16", DOC.encode("utf-16-be"), "$.metrics[0]"),  # no BOM
    ("application/json; charset=utf-32", DOC.encode("utf-32"), "$.metrics[0]"),
    ("application/json; charset=utf-32le", DOC.encode("utf-32-le"), "$.metrics[0]"),
    ("application/json; charset=utf-32be", DOC.encode("utf-32-be"), "$.metrics[0]"),
    ("application/json", b"\xff\xfe" + DOC.encode("utf-16-le"), "$.metrics[0]"),  # BOM only
    ("application/json", b"\xfe\xff" + DOC.encode("utf-16-be"), "$.metrics[0]"),
    ("application/json", b"\x00\x00\xfe\xff" + DOC.encode("utf-32-be"), "$.metrics[0]"),
    ("application/json", DOC.encode("utf-16-le"), "$.metrics[0]"),  # NUL pattern only
    ("", DOC.encode("utf-32-le"), "$.metrics[0]"),
    ("application/x-ndjson; charset=utf-16", NDJSON.encode("utf-16"), "$[1].email"),
    ("application/x-ndjson", NDJSON.encode("utf-16"), "$[1].email"),
    ("application/x-www-form-urlencoded; charset=utf-16", FORM.encode("utf-16"), "$.user"),
    ("application/x-www-form-urlencoded; charset=utf-32be", FORM.encode("utf-32-be"), "$.user"),
    ("text/plain; charset=utf-16", TEXT.encode("utf-16"), "$"),
    ("text/plain", TEXT.encode("utf-16"), "$"),
    ("text/plain; charset=iso-8859-1", TEXT.encode("latin-1"), "$"),
]


@pytest.mark.parametrize(("content_type", "body", "where"), CHARSETS)
def test_declared_and_sniffed_charsets_are_read(content_type: str, body: bytes,
                                                where: str) -> None:
    payload = decode(_obs(body, content_type))
    assert payload.opaque is None, payload.notes
    hits = [leaf.location for leaf in payload.leaves if leaf.value == EMAIL
            or (isinstance(leaf.value, str) and EMAIL in leaf.value)]
    assert hits and hits[0].startswith(where), (payload.kind, payload.tree)


def test_latin1_form_escapes_are_read_in_its_charset() -> None:
    payload = decode(_obs(b"name=Ren%E9", "application/x-www-form-urlencoded; charset=latin-1"))
    assert payload.tree == {"name": "René"}


@pytest.mark.parametrize(("content_type", "body", "opaque"), [
    # a declared charset wins over a BOM of another: utf-8 + FF FE is not UTF-16 (and
    # not valid UTF-8 JSON either, so it is opaque)
    ("application/json; charset=utf-8", b"\xff\xfe" + DOC.encode(), True),
    # an undeclared BOM before ASCII would read as CJK and hide the e-mail
    ("text/plain", b"\xff\xfe" + TEXT.encode(), False),
])
def test_a_bom_that_does_not_fit_does_not_hide_the_text(content_type: str, body: bytes,
                                                         opaque: bool) -> None:
    payload = decode(_obs(body, content_type))
    assert not any("read as utf-16" in note for note in payload.notes)
    assert (payload.opaque is not None) is opaque
    if not opaque:
        assert any(isinstance(leaf.value, str) and EMAIL in leaf.value
                   for leaf in payload.leaves)


_GZ = bytearray(gzip.compress(DOC.encode() * 10))
_GZ[30:50] = b"\xff" * 20

OPAQUE = [
    # content type, body, content-encoding, reason fragment
    ("application/json; charset=utf-16", DOC.encode("utf-16")[:-1], "", "not valid utf-16"),
    ("application/json; charset=utf-32", DOC.encode("utf-16"), "", "not valid utf-32"),
    ("application/json", bytes(_GZ), "gzip", ""),
    ("application/json", gzip.compress(DOC.encode())[:-30], "gzip", "gzip: truncated"),
    ("application/json", b"\x00\x01\x02\x03binary", "", "no text or structure"),
    ("application/octet-stream", bytes(range(256)), "", "no text or structure"),
]


@pytest.mark.parametrize(("content_type", "body", "coding", "reason"), OPAQUE)
def test_opaque_bodies_still_match_their_endpoint(auditor: Auditor, content_type: str,
                                                  body: bytes, coding: str,
                                                  reason: str) -> None:
    result = auditor.audit_result(_obs(body, content_type, coding=coding))
    assert result.payload is not None and result.payload.opaque
    assert reason in result.payload.opaque
    assert any(n.startswith("opaque body:") for n in result.record["payload"]["notes"])
    cls = result.classification
    assert cls.purpose == "telemetry"
    assert "webex-ca-diagnostic-events" in cls.rule_ids
    # events are only as known as the body: a cut stream may keep a few leading ones
    assert all(e.name == "client.call.initiated" for e in cls.events)


def test_opaque_body_to_an_unknown_host_stays_unknown(auditor: Auditor) -> None:
    result = auditor.audit_result(_obs(b"\x00\x01\x02junk", "application/json",
                                       url="https://x.unknown-host.example/a"))
    assert result.payload is not None and result.payload.opaque
    assert result.classification.purpose == "unknown"
    plan = plan_enforcement(EnforcePolicy(mode="redact"), result.observation, result.payload,
                            result.classification, result.findings)
    assert plan.action == "pass"  # not telemetry: not ours to block


# --- JSON rewritten token by token ----------------------------------------------------------


def _only_flagged_spans_changed(sent: str, received: str) -> None:
    parts = sent.split(EMAIL)
    pattern = "(?s)" + r'([^"\\]+)'.join(re.escape(part) for part in parts)
    m = re.fullmatch(pattern, received)
    assert m is not None, received
    assert all(g and EMAIL not in g for g in m.groups())


def _event(rest: str) -> str:
    return ('{"metrics": [{"eventPayload": {"event": {"name": "client.call.initiated"}, '
            f'"userEmail": "{EMAIL}", {rest}}}}}]}}')


REWRITES = [
    ("big exponent", _event('"v": 1e400')),
    ("long fraction", _event('"pi": 3.14159265358979323846')),
    ("capital exponent", _event('"e": 1E5, "f": 2.5E-3')),
    ("negative zero", _event('"z": -0, "zf": -0.0')),
    ("escapes", _event('"s": "caf\\u00e9 \\/ \\"q\\" \\ud83d\\ude00"')),
    ("raw unicode", _event('"s": "café ☕"')),
    ("whitespace and order", _event('"b" :  1 ,\n\t"a":[ 1 , 2 ]')),
    ("nested JSON string", _event('"inner": "{\\"mail\\": \\"' + EMAIL + '\\", \\"n\\": 1E5}"')),
    ("duplicate keys", _event('"k": 1, "k": 2.50')),
    ("big integer", _event('"id": 123456789012345678901234567890')),
]


@pytest.mark.parametrize("doc", [r[1] for r in REWRITES], ids=[r[0] for r in REWRITES])
@pytest.mark.parametrize("charset", ["utf-8", "utf-16"])
def test_redaction_changes_only_flagged_tokens(auditor: Auditor, doc: str,
                                               charset: str) -> None:
    body = doc.encode(charset)
    flow = _flow(TELEMETRY, body, f"application/json; charset={charset}")
    result = auditor.audit_result(observe_request(flow))
    plan = plan_enforcement(EnforcePolicy(mode="redact"), result.observation, result.payload,
                            result.classification, result.findings)
    assert plan.action == "redact", plan.reason
    record = apply_enforcement(flow, plan, result.payload, result.findings,
                               recheck=auditor.detection.detect)
    assert record["action"] == "redacted", record
    sent = flow.request.raw_content or b""
    if charset == "utf-16":
        assert sent[:2] == body[:2]  # the BOM, as sent
    _only_flagged_spans_changed(doc, sent.decode(charset))


def test_gzip_json_redaction_keeps_every_other_byte(auditor: Auditor) -> None:
    doc = _event('"v": 1e400, "pi": 3.14159265358979323846')
    flow = _flow(TELEMETRY, gzip.compress(doc.encode()), "application/json", "gzip")
    result = auditor.audit_result(observe_request(flow))
    plan = plan_enforcement(EnforcePolicy(mode="redact"), result.observation, result.payload,
                            result.classification, result.findings)
    record = apply_enforcement(flow, plan, result.payload, result.findings,
                               recheck=auditor.detection.detect)
    assert record["action"] == "redacted"
    _only_flagged_spans_changed(doc, gzip.decompress(flow.request.raw_content or b"").decode())


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=4),
    max_leaves=20,
)


@given(_json_values, st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
       st.booleans())
@settings(max_examples=150, deadline=None)
def test_json_tokens_cover_the_text_and_read_like_json(value: object, seps: tuple[str, str],
                                                       ascii_only: bool) -> None:
    text = json.dumps(value, separators=seps, ensure_ascii=ascii_only)
    tokens = list(json_tokens(text))
    # the spans are in order, and what lies between them is only separators
    last = 0
    for token in tokens:
        assert text[last:token.start].strip(" \t\n\r,:") == ""
        last = token.end
    assert text[last:].strip() == ""
    scalars = [t for t in tokens if t.kind in ("string", "number", "literal")]
    for token in scalars:
        if token.kind == "number":
            assert json.loads(text[token.start:token.end]) == json.loads(token.value)
        else:
            assert json.loads(text[token.start:token.end]) == token.value


@pytest.mark.parametrize("text", ['{"a":1,}', "[1 2]", '{"a" 1}', "[1]]", "[01]", '{"a":}',
                                  "", "[", '"\x01"', "NaN", "[Infinity]"])
def test_json_tokens_refuse_what_is_not_json(text: str) -> None:
    with pytest.raises(ValueError):
        list(json_tokens(text))


# --- the default policy ---------------------------------------------------------------------

EMAIL_FINDING = Finding(type="email", category="personal_data", severity="medium",
                        location="$.user.email", detector="email", evidence="j***",
                        value=EMAIL)
OPAQUE_PAYLOAD = Payload(kind="binary", tree=None, leaves=[], size=10, decoded_size=10,
                         sha256="", opaque="gzip: invalid block type")
CUT_PAYLOAD = Payload(kind="json", tree={}, leaves=[], size=10, decoded_size=10, sha256="",
                      truncated=["more than 10 leaves"])
OBS = _obs(b"", "")
PURPOSES = ("telemetry", "service", "auth", "update", "unknown")
PARTIES = ("first", "third", "unknown")


def _expected_default(mode: str, purpose: str, flagged: bool) -> str:
    if mode == "observe" or purpose != "telemetry":
        return "pass"
    if mode == "block":
        return "block"
    return "redact" if flagged else "pass"


@pytest.mark.parametrize("mode", ["observe", "redact", "block"])
@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("party", PARTIES)
@pytest.mark.parametrize("flagged", [True, False])
def test_the_mode_touches_only_telemetry(mode: str, purpose: str, party: str,
                                         flagged: bool) -> None:
    cls = Classification(purpose=purpose, party=party, rule_ids=["r1"] if purpose != "unknown"
                         else [], organization="Acme" if party == "third" else None)
    findings = [EMAIL_FINDING] if flagged else []
    plan = plan_enforcement(EnforcePolicy(mode=mode), OBS, None, cls, findings)
    assert plan.action == _expected_default(mode, purpose, flagged), plan.reason


@pytest.mark.parametrize("mode", ["redact", "block"])
@pytest.mark.parametrize("purpose", PURPOSES)
@pytest.mark.parametrize("payload", [OPAQUE_PAYLOAD, CUT_PAYLOAD], ids=["opaque", "cut"])
def test_unreadable_telemetry_fails_closed(mode: str, purpose: str, payload: Payload) -> None:
    cls = Classification(purpose=purpose, party="first", rule_ids=["r1"])
    plan = plan_enforcement(EnforcePolicy(mode=mode), OBS, payload, cls, [])
    expected = "block" if purpose == "telemetry" else "pass"
    assert plan.action == expected, plan.reason
    if expected == "block" and mode == "redact":
        assert "fail-closed" in plan.reason and ("opaque" in plan.reason
                                                 or "partly" in plan.reason)


ENTRIES = [
    # id, mode, purpose, party, policy kwargs, expected
    ("purposes adds unknown (redact)", "redact", "unknown", "third",
     dict(purposes=("telemetry", "unknown")), "redact"),
    ("purposes adds unknown (block)", "block", "unknown", "third",
     dict(purposes=("telemetry", "unknown")), "block"),
    ("purposes without telemetry", "block", "telemetry", "first", dict(purposes=()), "pass"),
    ("rule entry on service", "redact", "service", "first",
     dict(by_rule={"r1": Action("block")}), "block"),
    ("finding entry on unknown", "redact", "unknown", "unknown",
     dict(by_finding={"email": Action("redact", purposes=("unknown",))}), "redact"),
    ("finding entry scoped to unknown leaves auth", "redact", "auth", "first",
     dict(by_finding={"email": Action("redact", purposes=("unknown",))}), "pass"),
    ("category block on update", "block", "update", "first",
     dict(by_category={"personal_data": Action("block")}), "block"),
    ("category block never hits auth unnamed", "block", "auth", "first",
     dict(by_category={"personal_data": Action("block")}), "pass"),
    ("category redact on unknown", "redact", "unknown", "third",
     dict(by_category={"personal_data": Action("redact")}), "redact"),
]


@pytest.mark.parametrize(("mode", "purpose", "party", "kwargs", "expected"),
                         [row[1:] for row in ENTRIES], ids=[row[0] for row in ENTRIES])
def test_explicit_entries_reach_other_traffic(mode: str, purpose: str, party: str,
                                              kwargs: dict, expected: str) -> None:
    cls = Classification(purpose=purpose, party=party, rule_ids=["r1"])
    plan = plan_enforcement(EnforcePolicy(mode=mode, **kwargs), OBS, None, cls, [EMAIL_FINDING])
    assert plan.action == expected, plan.reason


def test_an_entry_that_redacts_an_unreadable_body_blocks_it() -> None:
    cls = Classification(purpose="unknown", party="third")
    policy = EnforcePolicy(mode="redact", by_category={"personal_data": Action("redact")})
    plan = plan_enforcement(policy, OBS, OPAQUE_PAYLOAD, cls, [EMAIL_FINDING])
    assert plan.action == "block" and "fail-closed" in plan.reason


def test_example_file_documents_purposes() -> None:
    text = (ROOT / "rules" / "enforce" / "example.yaml").read_text()
    assert "\npurposes: [telemetry]\n" in text
