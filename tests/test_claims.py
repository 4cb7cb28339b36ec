"""Claims files: loading with path:line errors, and each check's verdicts."""

from __future__ import annotations

import copy
import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from builders import FIXTURES, ROOT
from phonehome.analysis.claims import (
    CHECKS,
    EVIDENCE_LIMIT,
    ClaimsError,
    evaluate_claims,
    load_claims,
)

WEBEX_CLAIMS = ROOT / "rules" / "claims" / "webex.yaml"


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


# --- loading -------------------------------------------------------------------------------

GOOD_HEAD = """\
schema: phonehome.claims/1
vendor: Example
claims:
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "vendor.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_webex_claims_load_and_use_every_check() -> None:
    claims = load_claims(WEBEX_CLAIMS)
    assert claims.vendor == "Cisco Webex"
    assert len(claims) == 5
    assert {c.check for c in claims.claims} == set(CHECKS)
    for claim in claims.claims:
        assert claim.source.title
        assert claim.line > 0
        assert set(claim.params) == set(CHECKS[claim.check])


def test_webex_quotes_name_a_source_url_or_say_why_not() -> None:
    for claim in load_claims(WEBEX_CLAIMS).claims:
        if claim.quote:
            assert claim.source.url and claim.source.url.startswith("https://")
        else:
            assert claim.source.note, f"{claim.id}: a paraphrase needs a note"


BAD_FILES = [
    # (body after the head, expected line, expected words)
    ("  - id: a\n    statement: s\n    check: anonymized\n    source: {title: t}\n"
     "    colour: red\n", 8, "unknown key 'colour'"),
    ("  - id: a\n    statement: s\n    statement: t\n    check: anonymized\n"
     "    source: {title: t}\n", 6, "duplicate key 'statement'"),
    ("  - id: a\n    statement: s\n    check: be_nice\n    source: {title: t}\n", 6,
     "unknown check"),
    ("  - id: a\n    statement: s\n    check: anonymized\n    source: {title: t}\n"
     "    params:\n      min_flows: 0\n", 9, "min_flows: must be an integer"),
    ("  - id: a\n    statement: s\n    check: anonymized\n    source: {title: t}\n"
     "    params:\n      parties: [third]\n", 9, "has no parameter 'parties'"),
    ("  - id: a\n    statement: s\n    check: no_personal_data\n    source: {title: t}\n"
     "    params:\n      purposes: [marketing]\n", 9, "purposes: unknown value 'marketing'"),
    ("  - id: a\n    statement: s\n    check: no_personal_data\n    source: {title: t}\n"
     "    params:\n      min_severity: extreme\n", 9, "min_severity: must be one of"),
    ("  - id: a\n    check: anonymized\n    source: {title: t}\n", 4, "`statement`"),
    ("  - id: a\n    statement: s\n    check: anonymized\n    source: {url: x}\n", 7,
     "source `title`"),
    ("  - id: a\n    statement: s\n    check: anonymized\n", 4, "`source` must be a mapping"),
    ("  - id: Not A Slug\n    statement: s\n    check: anonymized\n    source: {title: t}\n", 4,
     "slug"),
    ("  - id: a\n    statement: s\n    check: anonymized\n    source: {title: t}\n"
     "  - id: a\n    statement: s\n    check: anonymized\n    source: {title: t}\n",
     8, "duplicate claim id 'a' (first at line 4)"),
    ("  - just a string\n", 4, "each claim is a mapping"),
    ("  - id: a\n    statement: [unclosed\n", 6, "invalid YAML"),
]


@pytest.mark.parametrize(("body", "line", "words"), BAD_FILES)
def test_bad_claims_files_name_the_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = _write(tmp_path, GOOD_HEAD + body)
    with pytest.raises(ClaimsError) as info:
        load_claims(path)
    assert any(e.startswith(f"{path}:{line}:") and words in e for e in info.value.errors), (
        info.value.errors
    )
    assert str(info.value).startswith(f"{path}:")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("schema: phonehome.claims/2\nvendor: X\nclaims: []\n", "`schema` must be"),
        ("schema: phonehome.claims/1\nclaims: []\n", "`vendor`"),
        ("schema: phonehome.claims/1\nvendor: X\nclaims: []\n", "non-empty list"),
        ("- 1\n- 2\n", "a claims file is a mapping"),
        ("schema: phonehome.claims/1\nvendor: X\nrules: []\nclaims: []\n", "unknown key 'rules'"),
    ],
)
def test_bad_top_level(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(ClaimsError) as info:
        load_claims(_write(tmp_path, text))
    assert any(words in e for e in info.value.errors), info.value.errors


def test_every_error_is_reported_not_just_the_first(tmp_path: Path) -> None:
    body = (
        "  - id: a\n    statement: s\n    check: nope\n    source: {title: t}\n"
        "  - id: b\n    statement: s\n    check: anonymized\n    source: {title: t}\n"
        "    params: {min_flows: -1}\n"
    )
    with pytest.raises(ClaimsError) as info:
        load_claims(_write(tmp_path, GOOD_HEAD + body))
    assert len(info.value.errors) == 2
    assert "and 1 more error" in str(info.value)


def test_missing_file_is_a_claims_error(tmp_path: Path) -> None:
    with pytest.raises(ClaimsError, match="cannot read"):
        load_claims(tmp_path / "absent.yaml")


def test_params_get_defaults(tmp_path: Path) -> None:
    body = "  - id: a\n    statement: s\n    check: opt_out_honored\n    source: {title: t}\n"
    (claim,) = load_claims(_write(tmp_path, GOOD_HEAD + body)).claims
    assert claim.params == {"purposes": ("telemetry",), "marker_labels": ("opt_out",)}
    with pytest.raises(TypeError):
        claim.params["purposes"] = ("service",)  # type: ignore[index]


# --- evaluation ------------------------------------------------------------------------------


def _flow(fid: str, t: float, **fields: Any) -> dict[str, Any]:
    flow: dict[str, Any] = {
        "id": fid, "timestamp": t, "method": "POST", "url": f"https://h.example/{fid}",
        "host": "h.example", "purpose": "telemetry", "party": "first", "organization": "Vendor",
        "bytes_out": 10, "rule_ids": [], "events": [], "trigger": "unknown",
        "trigger_source": "none", "categories": [], "findings": [], "audit_error": None,
        "identifiers": [], "source": "cap.mitm",
    }
    flow.update(fields)
    return flow


def _finding(type_: str, category: str, severity: str = "medium", encoding: str = "plain"):
    return {"type": type_, "category": category, "severity": severity, "location": "$.x",
            "encoding": encoding, "detector": type_, "evidence": "x…y"}


def _report(flows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    report = {"schema": "phonehome.report/1", "inputs": {"identity": True}, "flows": flows,
              "markers": [], "after_opt_out": [], "persistent_ids": []}
    report.update(extra)
    return report


EMAIL = _finding("email", "personal_data")
TITLE = _finding("meeting_title", "meeting_content")
ME_SHA = _finding("identity_match", "personal_data", "high", "sha256")
LOW_IP = _finding("ip_address", "personal_data", "low")

CASES = [
    # check, params, report, verdict, evidence
    ("no_personal_data", {}, _report([]), "untested", []),
    ("no_personal_data", {}, _report([_flow("a", 1, purpose="service", findings=[EMAIL])]),
     "untested", []),
    ("no_personal_data", {}, _report([_flow("a", 1), _flow("b", 2, findings=[EMAIL])]),
     "contradicted", ["b"]),
    ("no_personal_data", {}, _report([_flow("a", 1, findings=[TITLE])]), "holds", []),
    ("no_personal_data", {"min_severity": "medium"}, _report([_flow("a", 1, findings=[LOW_IP])]),
     "holds", []),
    ("no_personal_data", {"finding_types": ["email"]},
     _report([_flow("a", 1, findings=[LOW_IP]), _flow("b", 2, findings=[EMAIL])]),
     "contradicted", ["b"]),
    ("no_personal_data", {"exclude_types": ["email"]},
     _report([_flow("a", 1, findings=[EMAIL]), _flow("b", 2, findings=[EMAIL, LOW_IP])]),
     "contradicted", ["b"]),
    ("no_personal_data", {"exclude_types": ["email"]}, _report([_flow("a", 1, findings=[EMAIL])]),
     "holds", []),
    ("no_personal_data", {"purposes": ["telemetry", "service"]},
     _report([_flow("a", 1, purpose="service", findings=[EMAIL])]), "contradicted", ["a"]),
    ("no_personal_data", {},
     _report([_flow("a", 1, audit_error={"stage": "decode", "reason": "x"})]), "untested", []),
    ("no_meeting_content", {}, _report([_flow("a", 1, findings=[TITLE, EMAIL])]),
     "contradicted", ["a"]),
    ("no_meeting_content", {}, _report([_flow("a", 1, findings=[EMAIL])]), "holds", []),
    ("no_meeting_content", {}, _report([_flow("a", 1, purpose="service", findings=[TITLE])]),
     "untested", []),
    ("anonymized", {}, _report([_flow("a", 1), _flow("b", 2, findings=[ME_SHA])]),
     "contradicted", ["b"]),
    ("anonymized", {"encodings": ["plain"]}, _report([_flow("a", 1, findings=[ME_SHA])]),
     "holds", []),
    ("anonymized", {}, _report([_flow("a", 1), _flow("b", 2)]), "holds", []),
    ("anonymized", {}, _report([_flow("a", 1)], inputs={"identity": False}), "untested", []),
    ("anonymized", {"require_identity": False},
     _report([_flow("a", 1)], inputs={"identity": False}), "holds", []),
    ("anonymized", {}, _report(
        [_flow("a", 1), _flow("b", 2), _flow("c", 3)],
        persistent_ids=[{"key": "deviceId", "fingerprint": "f", "flows": ["a", "c"],
                         "flow_count": 2, "captures": ["x"], "capture_count": 1}]),
     "contradicted", ["a", "c"]),
    ("anonymized", {"min_flows": 3}, _report(
        [_flow("a", 1), _flow("b", 2)],
        persistent_ids=[{"key": "deviceId", "fingerprint": "f", "flows": ["a", "b"],
                         "flow_count": 2, "captures": ["x"], "capture_count": 1}]),
     "holds", []),
    ("anonymized", {"min_flows": 3}, _report(
        [_flow("a", 1)],
        persistent_ids=[{"key": "deviceId", "fingerprint": "f", "flows": ["a"],
                         "flow_count": 1, "captures": ["x", "y"], "capture_count": 2}]),
     "contradicted", ["a"]),
    ("anonymized", {"persistent_ids": False}, _report(
        [_flow("a", 1), _flow("b", 2)],
        persistent_ids=[{"key": "deviceId", "fingerprint": "f", "flows": ["a", "b"],
                         "flow_count": 2}]),
     "holds", []),
    ("anonymized", {}, _report(  # a persistent id that only links service flows
        [_flow("a", 1), _flow("s1", 2, purpose="service"), _flow("s2", 3, purpose="service")],
        persistent_ids=[{"key": "sid", "fingerprint": "f", "flows": ["s1", "s2"],
                         "flow_count": 2}]),
     "holds", []),
    ("no_third_party_sharing", {}, _report([_flow("a", 1), _flow("b", 2, party="third")]),
     "contradicted", ["b"]),
    ("no_third_party_sharing", {}, _report([_flow("a", 1, party="unknown")]), "holds", []),
    ("no_third_party_sharing", {"parties": ["third", "unknown"]},
     _report([_flow("a", 1, party="unknown")]), "contradicted", ["a"]),
    ("no_third_party_sharing", {}, _report([_flow("b", 2, purpose="service", party="third")]),
     "untested", []),
    ("opt_out_honored", {}, _report([_flow("a", 1)]), "untested", []),
    ("opt_out_honored", {}, _report(
        [_flow("a", 1), _flow("b", 20)], markers=[{"timestamp": 10, "label": "opt_out"}],
        after_opt_out=["b"]), "contradicted", ["b"]),
    ("opt_out_honored", {}, _report(
        [_flow("a", 1), _flow("b", 20, purpose="service")],
        markers=[{"timestamp": 10, "label": "Opt-Out"}], after_opt_out=["b"]), "holds", []),
    ("opt_out_honored", {}, _report(
        [_flow("a", 1)], markers=[{"timestamp": 10, "label": "opt_out"}]), "untested", []),
    ("opt_out_honored", {"marker_labels": ["telemetry off"]}, _report(
        [_flow("a", 1), _flow("b", 20)],
        markers=[{"timestamp": 10, "label": "telemetry_off"}], after_opt_out=["b"]),
     "contradicted", ["b"]),
    ("opt_out_honored", {}, {  # no after_opt_out key: computed from the marker
        "flows": [_flow("a", 1), _flow("b", 20)], "markers": [{"timestamp": 10,
                                                              "label": "opt_out"}]},
     "contradicted", ["b"]),
]


def _claim_file(tmp_path: Path, check: str, params: dict[str, Any]) -> Path:
    body = (
        f"  - id: c\n    statement: s\n    check: {check}\n    source: {{title: t}}\n"
        f"    params: {json.dumps(params)}\n"
    )
    return _write(tmp_path, GOOD_HEAD + body)


@pytest.mark.parametrize(("check", "params", "report", "verdict", "evidence"), CASES)
def test_check_verdicts(
    tmp_path: Path, check: str, params: dict[str, Any], report: dict[str, Any], verdict: str,
    evidence: list[str],
) -> None:
    (entry,) = evaluate_claims(report, load_claims(_claim_file(tmp_path, check, params)))
    assert entry["verdict"] == verdict, entry["reason"]
    assert entry["evidence"] == evidence
    assert entry["evidence_count"] == len(evidence)
    assert entry["reason"] and "\n" not in entry["reason"]
    assert entry["check"] == check
    flow_ids = {f["id"] for f in report["flows"]}
    assert set(entry["evidence"]) <= flow_ids


def test_evidence_is_capped_with_a_count(tmp_path: Path) -> None:
    flows = [_flow(f"f{i:03d}", i, party="third") for i in range(EVIDENCE_LIMIT + 15)]
    (entry,) = evaluate_claims(
        _report(flows), load_claims(_claim_file(tmp_path, "no_third_party_sharing", {}))
    )
    assert entry["verdict"] == "contradicted"
    assert len(entry["evidence"]) == EVIDENCE_LIMIT
    assert entry["evidence_count"] == EVIDENCE_LIMIT + 15
    assert entry["evidence"] == [f["id"] for f in flows[:EVIDENCE_LIMIT]]


def test_fixture_claims_are_what_webex_yaml_gives() -> None:
    report = _fixture("report_webex_session1.json")
    claims = evaluate_claims(report, load_claims(WEBEX_CLAIMS))
    assert claims == report["claims"]
    verdicts = {c["id"]: c["verdict"] for c in claims}
    assert verdicts == {
        "webex-telemetry-no-personal-data": "contradicted",
        "webex-telemetry-no-meeting-content": "contradicted",
        "webex-usage-data-aggregate": "contradicted",
        "webex-telemetry-first-party-only": "contradicted",
        "webex-telemetry-opt-out": "contradicted",
    }
    by_id = {c["id"]: c for c in claims}
    assert by_id["webex-telemetry-no-meeting-content"]["evidence"] == ["f08", "f09"]
    assert by_id["webex-telemetry-first-party-only"]["evidence"] == ["f11"]
    assert by_id["webex-telemetry-opt-out"]["evidence"] == report["after_opt_out"]


def test_claims_flip_when_the_evidence_goes() -> None:
    report = copy.deepcopy(_fixture("report_webex_session1.json"))
    claims = load_claims(WEBEX_CLAIMS)
    report["flows"] = [f for f in report["flows"] if f["party"] != "third"]
    for flow in report["flows"]:
        flow["findings"] = []
    report["persistent_ids"] = []
    report["after_opt_out"] = []
    verdicts = {c["id"]: c["verdict"] for c in evaluate_claims(report, claims)}
    assert set(verdicts.values()) == {"holds"}


def test_every_claim_entry_carries_statement_and_source() -> None:
    report = _fixture("report_webex_session2.json")
    for entry in evaluate_claims(report, load_claims(WEBEX_CLAIMS)):
        assert entry["statement"]
        assert entry["source"]["title"]
        assert entry["vendor"] == "Cisco Webex"
        assert entry["verdict"] in ("holds", "contradicted", "untested")


@pytest.mark.parametrize(("encoding", "family"), [
    (None, "plain"), ("plain", "plain"), ("sha256", "sha256"),
    ("sha256(lower)>base64", "sha256"), ("url>base64", "url"), ("md5(lower)", "md5"),
])
def test_encoding_chains_count_as_their_first_layer(encoding, family):
    from phonehome.analysis.claims import _encoding_family

    assert _encoding_family(encoding) == family
