"""Enforce mode through a real mitmdump with the phonehome addon to the local vendor
server, which records exactly what arrives."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import ssl
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess
from phonehome.simulate import RESOLVER_ADDON_PATH
from phonehome.simulate.vendor_server import VendorServer, read_record

pytestmark = pytest.mark.e2e

EMAIL = "jane.roe@example.org"
IDENTITY = f"email: {EMAIL}\nname: Jane Roe\nusername: janeroe\nmac: a4:83:e7:12:34:56\n"
def _leaky() -> bytes:
    lowered = EMAIL.encode()
    return json.dumps({"metrics": [{"eventPayload": {
        "event": {"name": "client.call.initiated"},
        "userEmail": EMAIL,
        "emailB64": base64.b64encode(lowered).decode(),
        "emailHash": hashlib.sha256(lowered).hexdigest(),
        "emailUrl": quote(EMAIL, safe=""),
        "origin": {"macAddress": "a4:83:e7:12:34:56", "clientVersion": "43.8.0.26"},
        "stack": "at /Users/janeroe/app.js:1",
    }}]}).encode()


FORMS = [EMAIL, base64.b64encode(EMAIL.encode()).decode(),
         hashlib.sha256(EMAIL.encode()).hexdigest(), quote(EMAIL, safe=""),
         "a4:83:e7:12:34:56", "janeroe"]
TELEMETRY = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
SERVICE = "https://conv-a.wbx2.com/conversation/api/v1/activities"
PLAIN = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics?plain=1"


def _run(tmp_path: Path, mode: str, dry: bool = False) -> tuple[list[dict], list[dict], dict]:
    (tmp_path / "identity.yaml").write_text(IDENTITY)
    leaky_gz = gzip.compress(_leaky())
    service_body = json.dumps({"object": {"displayName": "hello team"},
                               "actor": {"emailAddress": EMAIL}}).encode()
    plain_body = json.dumps({"metrics": [{"eventPayload": {"event": {"name": "x"}}}]}).encode()
    sent = {"telemetry": leaky_gz, "service": service_body, "plain": plain_body}
    statuses = {}
    reports = tmp_path / "reports"
    with VendorServer(tmp_path / "vendor.jsonl") as vendor:
        with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT, RESOLVER_ADDON_PATH],
                             options={"phonehome_sim_upstream": vendor.address,
                                      "ssl_insecure": "true",
                                      "phonehome_identity": str(tmp_path / "identity.yaml"),
                                      "phonehome_report_dir": str(reports),
                                      "phonehome_formats": "json", "phonehome_quiet": "true",
                                      "phonehome_enforce": mode,
                                      "phonehome_enforce_dry_run": str(dry).lower()}) as proxy:
            context = ssl.create_default_context(cafile=str(proxy.ca_cert))
            with httpx.Client(proxy=proxy.url, verify=context, trust_env=False,
                              timeout=30) as client:
                statuses["telemetry"] = client.post(TELEMETRY, content=leaky_gz, headers={
                    "content-type": "application/json", "content-encoding": "gzip"}).status_code
                statuses["service"] = client.post(SERVICE, content=service_body, headers={
                    "content-type": "application/json"}).status_code
                statuses["plain"] = client.post(PLAIN, content=plain_body, headers={
                    "content-type": "application/json"}).status_code
        received = read_record(vendor.record_path)
    report = json.loads((reports / "audit.json").read_text())
    results = [flow["enforcement"] for flow in report["flows"]]
    if mode == "observe":  # observe records no enforcement at all
        assert results == [None] * len(results) and not report["summary"]["by_enforcement"]
        results = [{"action": "passed", "dry_run": dry} for _ in results]
    else:
        assert sum(report["summary"]["by_enforcement"].values()) == len(results)
    by_path = {r["path"] + ("?" + r["query"] if r.get("query") else ""): r for r in received}
    return results, received, {"sent": sent, "statuses": statuses, "by_path": by_path}


def _arrived(info: dict, url: str) -> dict | None:
    path = url.split("wbx2.com", 1)[1]
    return info["by_path"].get(path)


def test_redact_mode(tmp_path: Path) -> None:
    results, _, info = _run(tmp_path, "redact")
    telemetry = _arrived(info, TELEMETRY)
    assert telemetry is not None, results
    headers = {k.lower(): v for k, v in telemetry["headers"]}
    assert headers["content-encoding"] == "gzip"
    assert int(headers["content-length"]) == len(telemetry["body"])
    body = gzip.decompress(telemetry["body"])  # still a valid gzip stream
    for form in FORMS:
        assert form.encode() not in body, form
    tree = json.loads(body)
    assert tree["metrics"][0]["eventPayload"]["origin"]["clientVersion"] == "43.8.0.26"
    # service traffic is left alone by the mode; unflagged flows arrive byte-identical
    assert _arrived(info, SERVICE)["body"] == info["sent"]["service"]
    assert _arrived(info, PLAIN)["body"] == info["sent"]["plain"]
    assert [r["action"] for r in results] == ["redacted", "passed", "passed"]
    assert info["statuses"] == {name: _arrived(info, url)["status"] for name, url in
                                (("telemetry", TELEMETRY), ("service", SERVICE), ("plain", PLAIN))}


def test_block_mode(tmp_path: Path) -> None:
    results, received, info = _run(tmp_path, "block")
    assert _arrived(info, TELEMETRY) is None
    assert _arrived(info, PLAIN) is None  # telemetry too, even without findings
    assert info["statuses"]["telemetry"] == 204 and info["statuses"]["plain"] == 204
    assert _arrived(info, SERVICE)["body"] == info["sent"]["service"]
    assert len(received) == 1
    assert [r["action"] for r in results] == ["blocked", "passed", "blocked"]


@pytest.mark.parametrize(("mode", "dry"), [("observe", False), ("redact", True),
                                           ("block", True)])
def test_observe_and_dry_run_change_nothing(tmp_path: Path, mode: str, dry: bool) -> None:
    results, received, info = _run(tmp_path, mode, dry)
    assert len(received) == 3
    assert _arrived(info, TELEMETRY)["body"] == info["sent"]["telemetry"]
    assert _arrived(info, SERVICE)["body"] == info["sent"]["service"]
    assert _arrived(info, PLAIN)["body"] == info["sent"]["plain"]
    assert info["statuses"] == {name: _arrived(info, url)["status"] for name, url in
                                (("telemetry", TELEMETRY), ("service", SERVICE), ("plain", PLAIN))}
    first = results[0]["action"]
    assert first == {"observe": "passed", "redact": "would_redact", "block": "would_block"}[mode]
    assert all(r["dry_run"] is dry for r in results)
