"""Teams-like telemetry from Microsoft's own SDKs, through a real mitmdump with the addon.

tests/teams_client/client.js sends a Teams session with the npm packages
@microsoft/1ds-core-js, 1ds-post-js and applicationinsights-web, in Node, via the
proxy, to the local vendor stand-in (the resolver addon keeps the real host names).
The client writes what it sent (truth.json); each figure is checked against it.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from builders import node_client
from conftest import assert_valid_report
from phonehome.proxy_process import MitmdumpProcess, addon_script
from phonehome.rules.engine import most_specific
from phonehome.simulate import RESOLVER_ADDON_PATH
from phonehome.simulate.vendor_server import VendorServer, read_record

CLIENT = Path(__file__).resolve().parent / "teams_client"
IDENTITY = {
    "email": "jane.doe@contoso.example",
    "name": "Jane Doe",
    "hostname": "jane-laptop.corp.contoso.example",
    "ip": "203.0.113.7",
    "phone": "+1 425 555 0142",
    "meeting_titles": ["Q3 layoffs planning"],
}


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _run(tmp_path_factory.mktemp("teams"), "auto")


def _run(work: Path, app: str) -> dict[str, Any]:
    """The client's session through mitmdump with the addon (`phonehome_app=app`)."""
    node = node_client(CLIENT, "@microsoft/1ds-post-js", timeout=600)
    identity = work / "identity.yaml"
    identity.write_text(yaml.safe_dump(IDENTITY), encoding="utf-8")
    reports = work / "reports"
    truth_path = work / "truth.json"
    with VendorServer(work / "vendor.jsonl") as vendor:
        proxy = MitmdumpProcess(
            work / "mitmproxy",
            scripts=[addon_script(work), RESOLVER_ADDON_PATH],
            options={
                "phonehome_report_dir": str(reports),
                "phonehome_identity": str(identity),
                "phonehome_formats": "json,md",
                "phonehome_quiet": "true",
                "phonehome_sim_upstream": vendor.address,
                "ssl_insecure": "true",
                "phonehome_app": app,
            },
            extra_args=["--flow-detail", "0"],
        )
        with proxy:
            env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            env.update(HTTPS_PROXY=proxy.url, NODE_EXTRA_CA_CERTS=str(proxy.ca_cert))
            ran = subprocess.run(
                [node, str(CLIENT / "client.js"), "--out", str(truth_path),
                 "--identity-email", IDENTITY["email"], "--identity-name", IDENTITY["name"],
                 "--identity-hostname", IDENTITY["hostname"], "--identity-ip", IDENTITY["ip"],
                 "--identity-phone", IDENTITY["phone"],
                 "--meeting-title", IDENTITY["meeting_titles"][0]],
                env=env, capture_output=True, text=True, timeout=300)
            assert ran.returncode == 0, f"{ran.stderr[-2000:]}\n--- mitmdump ---\n" \
                                        f"{proxy.output()[-2000:]}"
    report = json.loads((reports / "audit.json").read_text(encoding="utf-8"))
    return {
        "report": report,
        "truth": json.loads(truth_path.read_text(encoding="utf-8")),
        "record": read_record(work / "vendor.jsonl"),
        "markdown": (reports / "audit.md").read_text(encoding="utf-8"),
    }


def _sent_events(entry: dict[str, Any]) -> list[str | None]:
    """The names of the events a recorded request carried, decoded here, not by phonehome."""
    body = entry["body"]
    headers = {k.lower(): v for k, v in entry["headers"]}
    if "gzip" in headers.get("content-encoding", ""):
        body = gzip.decompress(body)
    if not body:
        return []
    text = body.decode("utf-8")
    records = json.loads(text) if text.startswith("[") else [
        json.loads(line) for line in text.splitlines() if line.strip()]
    names = []
    for record in records:
        data = record.get("data") or {}
        base = data.get("baseData") or {}
        names.append(base.get("name") or data.get("baseType") or record.get("name"))
    return names


@pytest.fixture(scope="module")
def flows(session: dict[str, Any]) -> list[tuple[dict[str, Any], list[str | None]]]:
    """Each report flow with the event names its recorded request carried."""
    by_digest = {e["body_sha256"]: e for e in session["record"]}
    out = []
    for flow in session["report"]["flows"]:
        entry = by_digest[flow["payload"]["sha256"]]
        out.append((flow, _sent_events(entry)))
    assert len(out) == len(session["record"])
    return out


def test_the_capture_has_both_pipes_gzip_and_the_unload_shape(session, flows) -> None:
    assert_valid_report(session["report"])
    paths = Counter(flow["url"].split("?")[0].rsplit("/", 3)[-3] for flow, _ in flows)
    assert any("OneCollector" in flow["url"] for flow, _ in flows)
    assert any("/v2/track" in flow["url"] for flow, _ in flows), paths
    gzipped = [e for e in session["record"]
               if any(k.lower() == "content-encoding" and "gzip" in v for k, v in e["headers"])]
    assert gzipped
    unload = [flow for flow, _ in flows
              if "apikey=" in flow["url"] and flow["content_type"].startswith("text/plain")]
    assert unload, "the teardown request keeps its headers in the query string"
    for flow in unload:
        assert flow["trigger"] == "shutdown"
        assert {e["name"] for e in flow["events"]} == {"desktop_terminated", "appKilled"}


def test_figures_events_triggers_personal_fields(session, flows) -> None:
    truth = session["truth"]
    expected = {e["name"]: e["trigger"] for e in truth["events"]}
    sent = Counter(e["name"] for e in truth["events"])
    named = Counter(e["name"] for flow, _ in flows for e in flow["events"])
    events_named = sum(min(n, named[name]) for name, n in sent.items()) / sum(sent.values())

    judged = [(flow, names) for flow, names in flows if any(n in expected for n in names)]
    right = [flow for flow, names in judged
             if flow["trigger"] == most_specific(expected.get(n) for n in names)]
    triggers_right = len(right) / len(judged)

    found = 0
    missed = []
    for plant in truth["personal"]:
        hit = False
        for flow, names in flows:
            for index, name in enumerate(names):
                if name != plant["event"]:
                    continue
                prefix = f"$[{index}]"
                hit = hit or any(
                    f["location"].startswith(prefix) and plant["field"] in f["location"]
                    for f in flow["findings"])
        found += hit
        if not hit:
            missed.append(plant)
    personal_found = found / len(truth["personal"])
    print(f"\nTeams e2e: {len(flows)} flows, {sum(sent.values())} events sent; "
          f"events named {events_named:.3f}; flows with the right trigger "
          f"{len(right)}/{len(judged)} = {triggers_right:.3f}; planted personal fields found "
          f"{found}/{len(truth['personal'])} = {personal_found:.3f}")
    assert events_named >= 0.90
    assert triggers_right >= 0.90, [(f["trigger"], n) for f, n in judged if f not in right]
    assert personal_found >= 0.95, missed


def test_every_flow_is_microsofts_and_first_party(session, flows) -> None:
    report = session["report"]
    assert report["app"]["name"] == "teams" and report["app"]["vendor"] == "Microsoft"
    assert report["app"]["chosen_by"] == "traffic"
    for flow, _ in flows:
        assert (flow["party"], flow["organization"], flow["vendor_pack"]) == (
            "first", "Microsoft", "teams"), flow["url"]
    assert "App audited: Microsoft" in session["markdown"]


def test_the_claims_checked_are_microsofts(session) -> None:
    claims = {c["id"]: c for c in session["report"]["claims"]}
    assert claims and all(c["vendor"] == "Microsoft" for c in claims.values())
    assert all(cid.startswith("teams-") for cid in claims)
    # the plain UPN and the tagged e-mail contradict "no names or e-mail addresses"
    assert claims["teams-diagnostic-no-names-or-emails"]["verdict"] == "contradicted"
    # the UPN in clear (loginSuccess) contradicts the one-sided hash
    assert claims["teams-upn-one-sided-hash"]["verdict"] == "contradicted"
    assert claims["teams-diagnostic-no-user-content"]["verdict"] == "contradicted"
    assert claims["teams-no-third-party-disclosure"]["verdict"] == "holds"


def test_the_apps_own_pii_tags_are_reported_as_such(flows) -> None:
    findings = [f for flow, _ in flows for f in flow["findings"]]
    by_field = {}
    for finding in findings:
        by_field.setdefault(finding["location"].rsplit(".", 1)[-1], []).append(finding)
    # tagged and also seen by the e-mail detector: one finding, whose reason says both
    email = [f for f in by_field["UserInfo_Email"] if f["type"] == "email"]
    assert len(email) == 1 and "the app itself tagged this field as Pii_SmtpAddress" in \
        email[0]["reason"]
    # tagged where no other detector looks: the tag's own finding
    fqdn = by_field["DeviceInfo_Name"]
    assert any(f["detector"] == "vendor_pii_tag" and "Pii_Fqdn" in f["reason"] for f in fqdn)
    content = [f for f in by_field["Module_Summary"] if f["category"] == "meeting_content"]
    assert content and "CustomerContent_GenericContent" in content[0]["reason"]
    # the UPN is the user's own address: hashed in every event but loginSuccess (in clear)
    upn = Counter((f["encoding"] or "plain").split("(")[0] for f in findings
                  if f["type"] == "identity_match" and f["location"].endswith("UserInfo_Upn"))
    assert upn["plain"] == 1 and upn["sha256"] >= 25, upn


def test_auditing_webex_makes_microsoft_a_third_party(tmp_path: Path) -> None:
    """The live option: with phonehome_app=webex the same traffic is a third party's."""
    report = _run(tmp_path, "webex")["report"]
    assert report["app"] == {"name": "webex", "vendor": "Cisco Webex", "chosen_by": "option",
                             "reason": "asked for webex (--app, live: phonehome_app)"}
    assert report["flows"] and all(
        (f["party"], f["organization"]) == ("third", "Microsoft") for f in report["flows"])
    claims = {c["id"]: c for c in report["claims"]}
    assert {c["vendor"] for c in claims.values()} == {"Cisco Webex"}
    assert claims["webex-telemetry-first-party-only"]["verdict"] == "contradicted"
