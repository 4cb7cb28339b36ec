"""The audited app: party from the host alone, first party = the app's vendor, its claims."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from builders import SAMPLE, make_obs, payload_of
from phonehome.analysis.app import party_for, resolve_app
from phonehome.analysis.session import build_report
from phonehome.rules import load_rules
from phonehome.rules.party import PartyEntry, attribute

WEBEX = PartyEntry("first", "Cisco Webex", "webex")
TEAMS = PartyEntry("first", "Microsoft", "teams")
SENTRY = PartyEntry("third", "Sentry", "trackers")
CA_BATCH = {"metrics": [{"eventPayload": {"event": {"name": "client.call.initiated"}}}]}


@pytest.mark.parametrize(("entry", "has_domain", "app", "expected"), [
    (WEBEX, True, None, ("first", "Cisco Webex", "webex")),
    (WEBEX, True, "webex", ("first", "Cisco Webex", "webex")),
    (WEBEX, True, "teams", ("third", "Cisco Webex", "webex")),
    (TEAMS, True, "teams", ("first", "Microsoft", "teams")),
    (SENTRY, True, "webex", ("third", "Sentry", None)),
    (SENTRY, True, None, ("third", "Sentry", None)),
    (None, True, "webex", ("third", None, None)),
    (None, False, "webex", ("unknown", None, None)),
    (None, False, None, ("unknown", None, None)),
])
def test_attribute(entry, has_domain, app, expected) -> None:
    got = attribute(entry, has_domain, app)
    assert (got.party, got.organization, got.vendor_pack) == expected


def classify(rules, url, body):
    obs = make_obs(url, body)
    return rules.classify(obs, payload_of(obs))


@pytest.fixture(scope="module")
def rulesets():
    return {app: load_rules(app=app) for app in (None, "webex", "teams")}


@pytest.mark.parametrize(("url", "app", "expected"), [
    ("https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics", None, ("first", "Cisco Webex")),
    ("https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics", "webex",
     ("first", "Cisco Webex")),
    ("https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics", "teams",
     ("third", "Cisco Webex")),
    ("https://browser.events.data.microsoft.com/OneCollector/1.0/", "webex",
     ("third", "Microsoft")),
    ("https://browser.events.data.microsoft.com/OneCollector/1.0/", "teams",
     ("first", "Microsoft")),
    # a vendor's path on a host without a domain: the rule explains it, the host decides
    ("http://127.0.0.1:8080/metrics/api/v1/clientmetrics", "webex", ("unknown", None)),
    ("http://localhost/metrics/api/v1/clientmetrics", None, ("unknown", None)),
    ("https://metrics.example.org/metrics/api/v1/clientmetrics", "webex", ("third", None)),
])
def test_party_comes_from_the_host_and_the_app(rulesets, url, app, expected) -> None:
    result = classify(rulesets[app], url, CA_BATCH)
    assert "webex-ca-diagnostic-events" in result.rule_ids or "OneCollector" in url
    assert (result.party, result.organization) == expected


def test_an_unknown_app_is_a_load_error() -> None:
    with pytest.raises(ValueError, match="unknown app 'zoom'.*webex"):
        load_rules(app="zoom")


def _flow(i: int, pack: str | None, purpose: str = "telemetry", party: str = "first") -> dict:
    return {"id": f"f{i}", "timestamp": float(i), "method": "POST", "url": f"https://h{i}/",
            "host": f"h{i}", "purpose": purpose, "party": party, "organization": None,
            "vendor_pack": pack, "bytes_out": 1, "rule_ids": [], "events": [],
            "trigger": "unknown", "trigger_source": "none", "categories": [], "findings": []}


APPS = {"webex": "Cisco Webex", "teams": "Microsoft"}


def test_auto_picks_the_vendor_with_most_telemetry() -> None:
    flows = [_flow(1, "webex", "service"), _flow(2, "webex", "service"), _flow(3, "webex", "auth"),
             _flow(4, "teams"), _flow(5, "teams"), _flow(6, None, party="third")]
    app = resolve_app(flows, "auto", APPS)
    assert (app["name"], app["vendor"], app["chosen_by"]) == ("teams", "Microsoft", "traffic")
    parties = [party_for(f["party"], f["vendor_pack"], app["name"]) for f in flows]
    assert parties == ["third", "third", "third", "first", "first", "third"]


def test_auto_ties_go_to_more_flows_then_load_order() -> None:
    flows = [_flow(1, "teams"), _flow(2, "webex"), _flow(3, "webex", "service")]
    assert resolve_app(flows, None, APPS)["name"] == "webex"
    assert resolve_app([_flow(1, "teams"), _flow(2, "webex")], None, APPS)["name"] == "webex"


def test_no_app_vendor_traffic_names_no_app() -> None:
    app = resolve_app([_flow(1, None, party="unknown")], "auto", APPS)
    assert app["name"] is None and "no flow" in app["reason"]


def test_an_explicit_app_wins_and_an_unknown_one_is_refused() -> None:
    app = resolve_app([_flow(1, "teams")], "webex", APPS)
    assert (app["name"], app["vendor"], app["chosen_by"]) == ("webex", "Cisco Webex", "option")
    with pytest.raises(ValueError, match="unknown app 'zoom'"):
        resolve_app([], "zoom", APPS)


@pytest.mark.parametrize(("flows", "vendor", "prefix"), [
    ([_flow(1, "teams")], "Microsoft", "teams-"),
    ([_flow(1, "webex")], "Cisco Webex", "webex-"),
])
def test_the_claims_checked_are_the_apps_vendors(flows, vendor, prefix) -> None:
    report = build_report(flows, inputs={"app": "auto", "apps": APPS})
    assert report["claims"]
    assert {c["vendor"] for c in report["claims"]} == {vendor}
    assert all(c["id"].startswith(prefix) for c in report["claims"])


def test_no_app_no_claims() -> None:
    report = build_report([_flow(1, None, party="unknown")], inputs={"apps": APPS})
    assert report["app"]["name"] is None and report["claims"] == []


def _phonehome(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "phonehome", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_audit_and_report_with_app_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "teams"
    done = _phonehome("audit", SAMPLE, "--app", "teams", "-o", out, "--format", "json", "-q")
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert report["app"] == {"name": "teams", "vendor": "Microsoft", "chosen_by": "option",
                             "reason": "asked for teams (--app, live: phonehome_app)"}
    assert {c["vendor"] for c in report["claims"]} == {"Microsoft"}
    webex = [f for f in report["flows"] if f["vendor_pack"] == "webex"]
    assert webex and all(f["party"] == "third" for f in webex)
    assert not any(f["party"] == "first" for f in report["flows"])

    # the same store, reported as the Webex audit it is
    again = tmp_path / "webex"
    done = _phonehome("report", out / "audit.sqlite", "--app", "auto", "-o", again,
                      "--format", "json", "-q")
    assert done.returncode == 0, done.stderr
    report = json.loads((again / "audit.json").read_text(encoding="utf-8"))
    assert (report["app"]["name"], report["app"]["chosen_by"]) == ("webex", "traffic")
    assert {c["vendor"] for c in report["claims"]} == {"Cisco Webex"}
    assert all(f["party"] == "first" for f in report["flows"] if f["vendor_pack"] == "webex")


def test_an_unknown_app_exits_2_with_one_line(tmp_path: Path) -> None:
    done = _phonehome("audit", SAMPLE, "--app", "zoom", "-o", tmp_path, "-q")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "unknown app 'zoom'" in done.stderr
