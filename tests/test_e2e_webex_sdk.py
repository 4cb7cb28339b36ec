"""Cisco's own Webex JS SDK in Node, through a real mitmdump with the addon.

tests/webex_sdk_client/client.js runs a session with the `webex` package's meetings
build against the local vendor stand-in and writes each request the SDK made with
the trigger a reader of the SDK source gives it (truth.json); the report is held to it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from builders import node_client
from conftest import assert_valid_report
from phonehome.proxy_process import MitmdumpProcess, addon_script
from phonehome.simulate import RESOLVER_ADDON_PATH
from phonehome.simulate.vendor_server import VendorServer, read_record

CLIENT = Path(__file__).resolve().parent / "webex_sdk_client"
WEBEX_DOMAINS = ("wbx2.com", "ciscospark.com", "webex.com", "webexapis.com")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node = node_client(CLIENT, "webex", timeout=900)
    work = tmp_path_factory.mktemp("webex-sdk")
    reports = work / "reports"
    truth_path = work / "truth.json"
    with VendorServer(work / "vendor.jsonl") as vendor:
        proxy = MitmdumpProcess(
            work / "mitmproxy",
            scripts=[addon_script(work), RESOLVER_ADDON_PATH],
            options={
                "phonehome_report_dir": str(reports),
                "phonehome_formats": "json",
                "phonehome_quiet": "true",
                "phonehome_sim_upstream": vendor.address,
                "ssl_insecure": "true",
            },
            extra_args=["--flow-detail", "0"],
        )
        with proxy:
            env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
            env.update(HTTPS_PROXY=proxy.url, NODE_EXTRA_CA_CERTS=str(proxy.ca_cert))
            ran = subprocess.run([node, str(CLIENT / "client.js"), "--out", str(truth_path)],
                                 env=env, capture_output=True, text=True, timeout=300)
            assert ran.returncode == 0, f"{ran.stderr[-2000:]}\n--- mitmdump ---\n" \
                                        f"{proxy.output()[-2000:]}"
    return {
        "report": json.loads((reports / "audit.json").read_text(encoding="utf-8")),
        "truth": json.loads(truth_path.read_text(encoding="utf-8")),
        "record": read_record(work / "vendor.jsonl"),
    }


def _key(method: str, url: str, events: list[str]) -> tuple[str, str, tuple[str, ...]]:
    return method.upper(), urlsplit(url).path, tuple(events)


@pytest.fixture(scope="module")
def judged(session: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each report flow with the client's own record of that request."""
    truth = list(session["truth"]["requests"])
    flows = session["report"]["flows"]
    assert len(flows) == len(truth) == len(session["record"]), (
        len(flows), len(truth), len(session["record"]))
    out = []
    for flow in sorted(flows, key=lambda f: f["timestamp"]):
        names = [e["name"] for e in flow["events"] if e["name"] not in flow["rule_ids"]]
        key = _key(flow["method"], flow["url"], names)
        match = next(i for i, t in enumerate(truth) if _key(t["method"], t["url"],
                                                              t["events"]) == key)
        out.append((flow, truth.pop(match)))
    return out


def test_the_session_is_the_sdks_own(session, judged) -> None:
    assert_valid_report(session["report"])
    assert session["truth"]["sdk"]["package"] == "webex/meetings"
    sent = Counter(name for _, t in judged for name in t["events"])
    # the SDK's pipes: Call Analyzer (incl. pre-login), legacy metrics, business, WebRTC stats
    for name in ("client.locus.join.request", "client.login.end", "js_sdk_join_success",
                 "JS_SDK_WDM_REGISTRATION_SUCCESSFUL", "callEnd", "stats-report"):
        assert sent[name] >= 1, name
    paths = {urlsplit(flow["url"]).path for flow, _ in judged}
    assert {"/metrics/api/v1/clientmetrics", "/metrics/api/v1/clientmetrics-prelogin",
            "/metric/v2", "/wdm/api/v1/devices", "/v1/region", "/api/v1/logs/meta"} <= paths
    assert all(t["status"] in (200, 204) for _, t in judged), \
        [(t["url"], t["status"]) for _, t in judged if t["status"] not in (200, 204)]


def test_no_telemetry_request_has_an_unknown_trigger(judged) -> None:
    telemetry = [(flow, t) for flow, t in judged if flow["purpose"] == "telemetry"]
    unknown = [(flow["url"], t["events"]) for flow, t in telemetry if flow["trigger"] == "unknown"]
    right = [flow for flow, t in telemetry if flow["trigger"] == t["trigger"]]
    print(f"\nWebex SDK e2e: {len(judged)} requests, {len(telemetry)} telemetry; "
          f"trigger unknown {len(unknown)}; trigger as the SDK source says "
          f"{len(right)}/{len(telemetry)} = {len(right) / len(telemetry):.3f}")
    assert len(telemetry) >= 25
    assert unknown == []
    assert len(right) / len(telemetry) >= 0.95, [
        (t["events"] or flow["url"], flow["trigger"], t["trigger"]) for flow, t in telemetry
        if flow["trigger"] != t["trigger"]]


def test_every_webex_flow_is_first_party_cisco(session, judged) -> None:
    report = session["report"]
    assert report["app"]["name"] == "webex"
    webex = [flow for flow, _ in judged
             if any(flow["host"] == d or flow["host"].endswith("." + d) for d in WEBEX_DOMAINS)]
    assert len(webex) == len(judged)
    for flow in webex:
        assert (flow["party"], flow["organization"]) == ("first", "Cisco Webex"), flow["url"]
