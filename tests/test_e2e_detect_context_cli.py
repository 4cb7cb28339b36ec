"""Key context through the real CLI: `phonehome audit` on a small capture with versions,
a Sentry DSN, a 1DS tenant key, a shared constant and what telemetry carries."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from builders import http_flow, write_flows
from conftest import assert_valid_report

pytestmark = pytest.mark.e2e

TENANT = "a387cfcf60114a43a7699f9fbb49289e-9bceb9fe-1c06-460f-96c5-6a0b247358bc-7238"
SENTRY_KEY = "3f2a9c0b1d4e5f60718293a4b5c6d7e8"
JSON = (b"content-type", b"application/json")


def _post(host: str, path: str, body: dict | bytes, *headers: tuple[bytes, bytes]):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return http_flow(method=b"POST", scheme=b"https", host=host, port=443,
                     authority=host.encode(), path=path.encode(), content=content,
                     headers=(JSON, *headers))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("context")
    flows = [
        _post("o123.ingest.sentry.io", "/api/4505123/store/", {
            "dsn": f"https://{SENTRY_KEY}@o123.ingest.sentry.io/4505123",
            "release": "43.8.0.26",
            "contexts": {"app": {"app_version": "43.8.0.26"}},
            "user": {"clientIp": "203.0.113.7"},
        }, (b"x-sentry-auth", f"Sentry sentry_version=7, sentry_key={SENTRY_KEY}".encode())),
        _post("browser.events.data.microsoft.com", "/OneCollector/1.0/",
              b'{"name":"Ms.Teams.Geo","ver":"4.0","iKey":"o:a387cfcf60114a43a7699f9fbb49289e",'
              b'"data":{"location":{"lat":48.8566,"lng":2.3522},'
              b'"IOPlatformSerialNumber":"C02XK0ABJGH5","network":{"ssid":"Roe Family 5G"}}}\n',
              (b"apikey", TENANT.encode()), (b"client-id", b"NO_AUTH")),
        _post("browser.events.data.microsoft.com", "/OneCollector/1.0/",
              b'{"name":"Ms.Teams.Log","ver":"4.0","data":{"log":'
              b'"Serial Number (system): C02XK0ABJGH5 av=43.8.0.26"}}\n',
              (b"apikey", TENANT.encode()), (b"client-id", b"NO_AUTH")),
    ]
    capture = write_flows(tmp / "context.mitm", flows)
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "audit", str(capture), "-o", str(tmp / "out"),
         "--format", "json", "-q"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp / "out" / "audit.json").read_text())
    assert_valid_report(data)
    return data


def _findings(report: dict, path: str) -> list[dict]:
    return [f for flow in report["flows"] if urlsplit(flow["url"]).path == path
            for f in flow["findings"]]


def test_a_version_under_release_is_no_ip_but_an_ip_under_client_ip_is(report):
    sentry = _findings(report, "/api/4505123/store/")
    ips = {f["location"]: f for f in sentry if f["type"] == "ip_address"}
    assert set(ips) == {"$.user.clientIp"}
    assert ips["$.user.clientIp"]["severity"] == "high"


def test_a_sentry_dsn_key_is_no_email_but_a_low_ingestion_key(report):
    sentry = _findings(report, "/api/4505123/store/")
    assert [f for f in sentry if f["type"] == "email"] == []
    keys = {f["location"]: f for f in sentry if f["type"] == "auth_token"}
    assert set(keys) == {"$.dsn", "header:x-sentry-auth"}
    for finding in keys.values():
        assert (finding["category"], finding["severity"]) == ("identifiers", "low")
        assert "ingestion key" in finding["reason"]
        assert SENTRY_KEY not in json.dumps(finding)


def test_the_1ds_tenant_key_is_low_identifiers_and_no_auth_links_nothing(report):
    tokens = [f for f in _findings(report, "/OneCollector/1.0/") if f["type"] == "auth_token"]
    assert {f["location"] for f in tokens} == {"header:apikey", "$.iKey"}
    assert {(f["category"], f["severity"]) for f in tokens} == {("identifiers", "low")}
    assert all("not the user" in f["reason"] for f in tokens)
    assert not [p for p in report.get("persistent_ids", []) if "client-id" in p["keys"]]
    linked = json.dumps(report.get("persistent_ids", []))
    assert "NO_AUTH" not in linked


def test_geo_pair_serial_and_ssid_are_found(report):
    found = {(f["type"], f["location"]): f for f in _findings(report, "/OneCollector/1.0/")}
    geo = found[("geo_location", "$.data.location")]
    assert geo["severity"] == "high" and "pair" in geo["reason"]
    assert ("device_serial", "$.data.IOPlatformSerialNumber") in found
    assert ("device_serial", "$.data.log") in found  # the labelled serial in a log line
    assert ("wifi_network", "$.data.network.ssid") in found
    assert not [f for f in found.values() if f["type"] == "ip_address"]  # av=43.8.0.26
    assert "C02XK0ABJGH5" not in json.dumps(report)
