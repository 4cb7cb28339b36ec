"""The HTML report's examples, payload trees and size bound, read with html.parser."""

from __future__ import annotations

import json
from typing import Any

import pytest

from builders import audit_sample
from phonehome.analysis.digest import digest_matcher
from phonehome.report.html import format_html
from test_report_formats import parse_html, tree_json

MAX_HTML_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("audit")
    done = audit_sample(out)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    return ((out / "audit.html").read_text(encoding="utf-8"),
            json.loads((out / "audit.json").read_text(encoding="utf-8")))


@pytest.mark.e2e
def test_claim_examples_show_what_the_verdict_rests_on(audited) -> None:
    """A claim about meeting content shows meeting-content values, not the flows' tokens."""
    html, report = audited
    dom = parse_html(html)
    by_id = {f["id"]: f for f in report["flows"]}
    digest = {e["id"]: e for e in report["digest"]}
    checked = 0
    for claim in report["claims"]:
        if not claim.get("digest"):
            continue
        match = digest_matcher([digest[d] for d in claim["digest"]], report["flows"])
        (article,) = [a for a in dom.find_all("article") if a.attrs.get("data-claim")
                      == claim["id"]]
        for row in (r for r in article.find_all("tr") if r.has_class("example")):
            flow = by_id[row.find_all("a")[0].attrs["href"].removeprefix("#flow-")]
            cells = [c.text() for c in row.find_all("td")]
            cited = [f for f in flow["findings"] if match(f)]
            if cited:
                assert (cells[2].split(" ")[0], cells[3]) in {
                    (f["location"], f["evidence"]) for f in cited}
                checked += 1
    assert checked >= 5
    (content,) = [a for a in dom.find_all("article")
                  if a.attrs.get("data-claim") == "webex-telemetry-no-meeting-content"]
    types = {c.text() for c in content.find_all("span") if c.has_class("muted")}
    assert "auth_token" not in types and types & {"audio_level", "identity_match",
                                                  "meeting_title"}


@pytest.mark.e2e
def test_payload_trees_agree_with_audit_json(audited) -> None:
    html, report = audited
    dom = parse_html(html)
    flows = {n.attrs["id"]: n for n in dom.find_all("details") if n.has_class("flow")}
    trees = 0
    for flow in report["flows"]:
        if not isinstance(flow.get("decoded"), (dict, list)) or not flow["decoded"]:
            continue
        node = flows[f"flow-{flow['id']}"]
        (tree,) = [u for u in node.find_all("ul") if u.has_class("tree")]
        cut = any(li.has_class("cut") for li in tree.iter())
        assert cut or tree_json(tree) == flow["decoded"]
        flagged = {li.attrs["data-loc"] for li in tree.iter() if li.has_class("flag")}
        body = {f["location"] for f in flow["findings"] if f["location"].startswith("$")}
        # every body finding is on a shown field, or inside a JSON string the tree marks
        inner = [li for li in tree.iter() if li.has_class("inner")]
        assert flagged <= body
        assert len(body - flagged) == 0 or inner
        events = [n for n in tree.iter() if n.has_class("evt")]
        assert len(events) == len(flow["events"]) or not all(
            e.get("location") for e in flow["events"])
        trees += 1
    assert trees > 50


def _huge_report(flows: int, leaves: int) -> dict[str, Any]:
    out = []
    for i in range(flows):
        decoded = {"batch": [{"k": j, "note": f"value {j} " * 8} for j in range(leaves)]}
        decoded["batch"][leaves - 1]["email"] = "m***@w***.org"
        out.append({
            "id": f"f{i:05d}", "timestamp": 1_700_000_000.0 + i, "method": "POST",
            "url": f"https://t.example/{i}", "host": "t.example", "purpose": "telemetry",
            "party": "third", "bytes_out": 1000, "rule_ids": [], "events": [],
            "trigger": "periodic", "trigger_source": "rule", "categories": [],
            "organization": None,
            "findings": [{"type": "email", "category": "personal_data", "severity": "high",
                          "location": f"$.batch[{leaves - 1}].email", "encoding": "plain",
                          "detector": "email", "evidence": "m***@w***.org",
                          "fingerprint": "hmac:00"}],
            "decoded": decoded})
    return {"schema": "phonehome.report/1", "generated_at": "", "tool": {"name": "phonehome"},
            "inputs": {}, "flows": out, "summary": {}, "cadence": [], "claims": []}


def test_html_stays_under_5_mb_and_keeps_the_flagged_fields() -> None:
    """300 flows (all shown) of 2000 items each: the trees are cut, never the findings."""
    report = _huge_report(300, 2000)
    html = format_html(report)
    assert len(html.encode()) <= MAX_HTML_BYTES
    dom = parse_html(html)
    flagged = [li for li in dom.iter() if li.has_class("flag")]
    assert len(flagged) == 300
    assert all(li.attrs["data-loc"] == "$.batch[1999].email" for li in flagged)
    cuts = [li for li in dom.iter() if li.has_class("cut")]
    assert len(cuts) == 300 and "more items not shown here" in cuts[0].text()


@pytest.mark.e2e
def test_a_revealing_report_does_not_claim_its_previews_are_raw(tmp_path) -> None:
    """With --reveal the payload trees show values as sent, but the digest and the
    claims' examples still show the findings' evidence, a redacted preview: the page
    says so."""
    done = audit_sample(tmp_path, "--reveal", "--format", "json,html")
    assert done.returncode in (0, 1), done.stderr[-2000:]
    page = (tmp_path / "audit.html").read_text(encoding="utf-8")
    report = json.loads((tmp_path / "audit.json").read_text(encoding="utf-8"))
    assert report["inputs"]["reveal"] is True
    assert "shown as sent" not in page
    assert "values are redacted previews (made with reveal" in page
    assert "<th>Value (redacted)</th>" in page
    assert report["digest"][0]["evidence"] in page  # the preview, as the digest holds it
