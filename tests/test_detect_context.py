"""Key context and neighbours decide what a value is: positives next to decoys, and
recall kept where the same value is personal. Also the detectors for what telemetry
carries beyond the basics: geo pairs, serials, Wi-Fi networks, organisations, window
titles in a share, personal data inside log lines."""

from __future__ import annotations

import pytest

from builders import make_payload
from phonehome.detect import DETECTORS, Context, DetectionEngine, identifier_candidates
from phonehome.detect.base import is_version_key, neighbours_of, normalize_key
from phonehome.detect.persistent import is_shared_constant

ENGINE = DetectionEngine()
BY_TYPE = {cls.type: cls() for cls in DETECTORS}

TENANT = "a387cfcf60114a43a7699f9fbb49289e-9bceb9fe-1c06-460f-96c5-6a0b247358bc-7238"
SENTRY_KEY = "3f2a9c0b1d4e5f60718293a4b5c6d7e8"
DSN = f"https://{SENTRY_KEY}@o123.ingest.sentry.io/4505123"
GUID = "0f1e5a1c-8a7b-4b8e-9c1d-1234567890ab"
HEX32 = "1d05c0ffee1234567890abcdef123456"
AMPLITUDE = "https://api2.amplitude.com/2/httpapi"
ONE_DS = "https://browser.events.data.microsoft.com/OneCollector/1.0/"


def _at(payload_args: dict, location: str, kind: str) -> list:
    payload = make_payload(payload_args.get("tree"), query=payload_args.get("query", ()),
                           headers=payload_args.get("headers", ()), url=payload_args.get("url"))
    return [f for f in ENGINE.detect(payload) if f.location == location and f.type == kind]


# (payload, location, finding type, expected: None = absent, else (category, severity))
PD_HIGH = ("personal_data", "high")
PD_MEDIUM = ("personal_data", "medium")
INGESTION = ("identifiers", "low")
CASES = [
    # --- version-like keys hold versions, not IPs; recall kept under IP keys
    ({"tree": {"release": "43.8.0.26"}}, "$.release", "ip_address", None),
    ({"tree": {"av": "43.8.0.26"}}, "$.av", "ip_address", None),
    ({"tree": {"$app_version_string": "43.8.0.26"}}, "$['$app_version_string']", "ip_address",
     None),
    ({"tree": {"ver": "43.8.0.26"}}, "$.ver", "ip_address", None),
    ({"tree": {"build": "43.8.0.26"}}, "$.build", "ip_address", None),
    ({"tree": {"appVersionName": "43.8.0.26"}}, "$.appVersionName", "ip_address", None),
    ({"tree": {"release": "webex-desktop@43.8.0.26"}}, "$.release", "ip_address", None),
    ({"tree": {"log": "Webex version 43.8.0.26 started"}}, "$.log", "ip_address", None),
    ({"tree": {"log": "build: 43.8.0.26, channel gold"}}, "$.log", "ip_address", None),
    ({"tree": {"log": "launch av=43.8.0.26 os=mac"}}, "$.log", "ip_address", None),
    ({"tree": {"log": "appVersion: \"43.8.0.26\""}}, "$.log", "ip_address", None),
    ({"tree": {"log": "clientIp=43.8.0.26"}}, "$.log", "ip_address", PD_HIGH),
    ({"tree": {"clientIp": "43.8.0.26"}}, "$.clientIp", "ip_address", PD_HIGH),
    ({"tree": {"properties": {"ip": "43.8.0.26"}}}, "$.properties.ip", "ip_address", PD_HIGH),
    ({"tree": {"log": "connect to 43.8.0.26 failed"}}, "$.log", "ip_address", PD_HIGH),
    ({"tree": {"tags": {"ai.location.ip": "203.0.113.7"}}}, "$.tags['ai.location.ip']",
     "ip_address", PD_HIGH),
    # --- the userinfo of a URL is not an e-mail; recall kept under e-mail keys
    ({"tree": {"dsn": DSN}}, "$.dsn", "email", None),
    ({"tree": {"config": f"Sentry.init({{dsn: '{DSN}'}})"}}, "$.config", "email", None),
    ({"tree": {"url": "https://jane:pw@example.org/x"}}, "$.url", "email", None),
    ({"tree": {"userEmail": "jane.roe@example.org"}}, "$.userEmail", "email", PD_HIGH),
    ({"tree": {"link": "mailto:jane.roe@example.org"}}, "$.link", "email", PD_HIGH),
    ({"tree": {"url": "https://example.org/u?email=jane.roe@example.org"}}, "$.url", "email",
     PD_HIGH),
    # --- public ingestion keys identify the vendor's tenant: identifiers, low
    ({"headers": [("apikey", TENANT)], "url": ONE_DS}, "header:apikey", "auth_token", INGESTION),
    ({"query": [("apikey", TENANT)], "url": ONE_DS}, "query:apikey", "auth_token", INGESTION),
    ({"headers": [("apikey", f"{TENANT},{TENANT}")]}, "header:apikey", "auth_token",
     INGESTION),
    ({"tree": {"name": "Ms.Teams.Launch", "iKey": "o:" + HEX32}}, "$.iKey", "auth_token",
     INGESTION),
    ({"tree": [{"iKey": GUID, "name": "Microsoft.ApplicationInsights.x.Event"}]}, "$[0].iKey",
     "auth_token", INGESTION),
    ({"tree": {"connectionString": f"InstrumentationKey={GUID};IngestionEndpoint="
               "https://westeurope-5.in.applicationinsights.azure.com/"}},
     "$.connectionString", "auth_token", INGESTION),
    ({"tree": {"dsn": DSN}}, "$.dsn", "auth_token", INGESTION),
    ({"headers": [("X-Sentry-Auth", f"Sentry sentry_version=7, sentry_key={SENTRY_KEY}, "
                   "sentry_client=sentry.native/0.6")]},
     "header:X-Sentry-Auth", "auth_token", INGESTION),
    ({"tree": {"api_key": HEX32, "events": [{"event_type": "launch"}]}, "url": AMPLITUDE},
     "$.api_key", "auth_token", INGESTION),
    ({"tree": {"api_key": HEX32, "events": [{"event_type": "launch"}]}}, "$.api_key",
     "auth_token", INGESTION),
    ({"tree": {"event": "App Open", "properties": {"token": HEX32, "distinct_id": "u-1"}}},
     "$.properties.token", "auth_token", INGESTION),
    ({"tree": {"properties": {"token": HEX32}}, "url": "https://api-js.mixpanel.com/track"},
     "$.properties.token", "auth_token", INGESTION),
    # … and real credentials stay high
    ({"tree": {"api_key": HEX32}}, "$.api_key", "auth_token", PD_HIGH),
    ({"headers": [("apikey", "sk-live-9f8e7d6c5b4a39281706")]}, "header:apikey", "auth_token",
     PD_HIGH),
    ({"tree": {"dsn": f"https://{SENTRY_KEY}:{HEX32}@sentry.example.com/12"}}, "$.dsn",
     "auth_token", PD_HIGH),
    ({"tree": {"token": HEX32}, "url": "https://api.example.com/v1"}, "$.token", "auth_token",
     PD_HIGH),
    # --- file names: meeting content only in a share or file transfer
    ({"tree": {"event": {"name": "client.share.initiated", "fileName": "Q3 Budget.xlsx"}}},
     "$.event.fileName", "file_name", ("meeting_content", "medium")),
    ({"tree": {"name": "file.transfer.started", "data": {"fileName": "offer.pdf"}}},
     "$.data.fileName", "file_name", ("meeting_content", "medium")),
    ({"tree": {"filename": "a1b2c3_1715250000.txt"},
      "url": "https://client-logs-a.wbx2.com/api/v1/logs/meta"},
     "$.filename", "file_name", ("error_logs", "low")),
    ({"tree": {"file": "a1b2c3_1715250000.txt"},
      "url": "https://client-logs-a.wbx2.com/api/v1/logs/urls"},
     "$.file", "file_name", ("error_logs", "low")),
    ({"tree": {"fileName": "webex-crash-2024-05-09.zip"}}, "$.fileName", "file_name",
     ("error_logs", "low")),
    ({"tree": {"fileName": "current.log"}}, "$.fileName", "file_name", ("error_logs", "low")),
    ({"tree": {"name": "app.feedback.upload", "fileName": "trace.tar.gz"}}, "$.fileName",
     "file_name", ("error_logs", "low")),
    ({"tree": {"fileName": "Q3 Budget.xlsx"}}, "$.fileName", "file_name",
     ("usage_statistics", "low")),
    # --- window titles and document names in a share context
    ({"tree": {"event": {"name": "client.share.selected-app",
                         "shareResourceName": "Microsoft PowerPoint"}}},
     "$.event.shareResourceName", "file_name", None),
    ({"tree": {"event": {"name": "client.share.selected-app",
                         "shareResourceName": "Q3 Budget.pptx - PowerPoint"}}},
     "$.event.shareResourceName", "file_name", ("meeting_content", "medium")),
    ({"tree": {"name": "screenshare.started", "data": {"windowTitle": "Inbox (3) - Outlook"}}},
     "$.data.windowTitle", "file_name", ("meeting_content", "medium")),
    ({"tree": {"name": "Ms.Call.Sharing", "data": {"appWindowTitle": "Slack | #layoffs"}}},
     "$.data.appWindowTitle", "file_name", ("meeting_content", "medium")),
    ({"tree": {"name": "present.start", "data": {"sharedDocument": "Roadmap 2025.docx"}}},
     "$.data.sharedDocument", "file_name", ("meeting_content", "medium")),
    ({"tree": {"name": "casting", "documentName": "Salaries.xlsx"}}, "$.documentName",
     "file_name", ("meeting_content", "medium")),
    ({"tree": {"name": "app.focus", "windowTitle": "Inbox (3) - Outlook"}}, "$.windowTitle",
     "file_name", ("usage_statistics", "low")),
    ({"tree": {"name": "doc.opened", "documentName": "Salaries.xlsx"}}, "$.documentName",
     "file_name", ("usage_statistics", "low")),
    # --- geo coordinates: a pair is stronger than one number
    ({"tree": {"location": {"lat": 48.8566, "lng": 2.3522}}}, "$.location", "geo_location",
     PD_HIGH),
    ({"tree": {"geo": {"latitude": "52.5200", "longitude": "13.4050"}}}, "$.geo",
     "geo_location", PD_HIGH),
    ({"tree": {"lat": 48.8566}}, "$.lat", "geo_location", PD_MEDIUM),
    ({"tree": {"geo": "48.8566,2.3522"}}, "$.geo", "geo_location", PD_HIGH),
    ({"tree": {"location": {"coordinates": [2.3522, 48.8566]}}}, "$.location.coordinates",
     "geo_location", PD_HIGH),
    ({"tree": {"log": "gps fix lat=48.8566, lng=2.3522 acc=12"}}, "$.log", "geo_location",
     PD_HIGH),
    ({"tree": {"location": {"lat": 0.0, "lng": 0.0}}}, "$.location", "geo_location", None),
    ({"tree": {"location": {"lat": 0.0, "lng": 0.0}}}, "$.location.lat", "geo_location", None),
    ({"tree": {"geo": "0.00,0.00"}}, "$.geo", "geo_location", None),
    ({"tree": {"geo": "95.1234,10.1234"}}, "$.geo", "geo_location", None),
    ({"tree": {"lng": 190.1234}}, "$.lng", "geo_location", None),
    ({"tree": {"log": "lat=0.00, lng=0.00"}}, "$.log", "geo_location", None),
    ({"tree": {"location": "Europe/Berlin"}}, "$.location", "geo_location", None),
    ({"tree": {"latencyMs": 48.8566}}, "$.latencyMs", "geo_location", None),
    # --- hardware serials: keys and log lines
    ({"tree": {"IOPlatformSerialNumber": "C02XK0ABJGH5"}}, "$.IOPlatformSerialNumber",
     "device_serial", PD_MEDIUM),
    ({"tree": {"device": {"serialNumber": "FVFXC2ABHV2H"}}}, "$.device.serialNumber",
     "device_serial", PD_MEDIUM),
    ({"tree": {"serviceTag": "8XK2Q13"}}, "$.serviceTag", "device_serial", PD_MEDIUM),
    ({"tree": {"log": "Hardware: Serial Number (system): C02XK0ABJGH5\nModel: Mac"}}, "$.log",
     "device_serial", PD_MEDIUM),
    ({"tree": {"log": '"IOPlatformSerialNumber" = "C02XK0ABJGH5"'}}, "$.log", "device_serial",
     PD_MEDIUM),
    ({"tree": {"log": "Dell Service Tag: 8XK2Q13 BIOS 1.2"}}, "$.log", "device_serial",
     PD_MEDIUM),
    ({"tree": {"log": "serialNumber=UNKNOWN"}}, "$.log", "device_serial", None),
    ({"tree": {"log": "serialized 1234567890 bytes"}}, "$.log", "device_serial", None),
    ({"tree": {"log": "Serial: 1234567890"}}, "$.log", "device_serial", None),
    ({"tree": {"serialNumber": "Not Available"}}, "$.serialNumber", "device_serial", None),
    # --- Wi-Fi networks: SSIDs (wifi_network) and BSSIDs (mac_address)
    ({"tree": {"network": {"ssid": "Roe Family 5G"}}}, "$.network.ssid", "wifi_network",
     PD_MEDIUM),
    ({"tree": {"wifiName": "ACME-Guest"}}, "$.wifiName", "wifi_network", PD_MEDIUM),
    ({"tree": {"networkName": "Jane's iPhone"}}, "$.networkName", "wifi_network", PD_MEDIUM),
    ({"tree": {"log": "joined SSID: Roe Family 5G, rssi -51"}}, "$.log", "wifi_network",
     PD_MEDIUM),
    ({"tree": {"network": {"bssid": "a4:83:e7:12:34:56"}}}, "$.network.bssid", "mac_address",
     PD_HIGH),
    ({"tree": {"ssid": "<unknown ssid>"}}, "$.ssid", "wifi_network", None),
    ({"tree": {"networkName": "wifi"}}, "$.networkName", "wifi_network", None),
    ({"tree": {"ssid": ""}}, "$.ssid", "wifi_network", None),
    ({"tree": {"ssid": "a" * 40}}, "$.ssid", "wifi_network", None),
    ({"tree": {"log": "BSSID: a4:83:e7:12:34:56"}}, "$.log", "wifi_network", None),
    # --- organisation and tenant names
    ({"tree": {"orgName": "Acme Corporation"}}, "$.orgName", "organization_name", PD_MEDIUM),
    ({"tree": {"tenantName": "Contoso"}}, "$.tenantName", "organization_name", PD_MEDIUM),
    ({"tree": {"user": {"companyName": "Roe & Partners LLP"}}}, "$.user.companyName",
     "organization_name", PD_MEDIUM),
    ({"tree": {"organization": "Wayne Enterprises"}}, "$.organization", "organization_name",
     PD_MEDIUM),
    ({"tree": {"orgName": GUID}}, "$.orgName", "organization_name", None),
    ({"tree": {"organization": "ORG_TYPE_ENTERPRISE"}}, "$.organization", "organization_name",
     None),
    ({"tree": {"sdk": {"organization": "Microsoft"}}}, "$.sdk.organization",
     "organization_name", None),
    ({"tree": {"tenantName": "unknown"}}, "$.tenantName", "organization_name", None),
    # --- a posted comment's text is chat, found by its neighbours
    ({"tree": {"verb": "post", "object": {"objectType": "comment",
                                          "displayName": "Can you all see my screen?"}}},
     "$.object.displayName", "chat_message", ("meeting_content", "high")),
    ({"tree": {"verb": "add", "object": {"objectType": "person",
                                         "displayName": "Jane Roe"}}},
     "$.object.displayName", "chat_message", None),
    # --- personal data inside free-text log lines and stack traces
    ({"tree": {"log": "2024-05-09 INFO login ok for jane.roe@example.org"}}, "$.log", "email",
     PD_HIGH),
    ({"tree": {"log": "profile loaded displayName: Jane Roe (en-US)"}}, "$.log", "person_name",
     PD_MEDIUM),
    ({"tree": {"log": "user_name=Jane Roe"}}, "$.log", "person_name", PD_MEDIUM),
    ({"tree": {"log": "Device Name: Jane's MacBook Pro, OS 14.5"}}, "$.log", "hostname",
     PD_MEDIUM),
    ({"tree": {"log": "Computer Name: DESKTOP-4F2K9QX User: x"}}, "$.log", "hostname",
     PD_MEDIUM),
    ({"tree": {"log": "hostname=janes-mbp.local"}}, "$.log", "hostname", PD_MEDIUM),
    ({"tree": {"stack": "at load (C:\\Users\\jdoe\\AppData\\app.js:1)"}}, "$.stack", "username",
     PD_MEDIUM),
    ({"tree": {"stack": "at load (file:///home/jdoe/app/main.js:3:9)"}}, "$.stack", "username",
     PD_MEDIUM),
    ({"tree": {"log": "open file%3A%2F%2F%2FUsers%2Fjdoe%2FLibrary failed"}}, "$.log",
     "username", PD_MEDIUM),
    ({"tree": {"log": "event name: client.call.initiated"}}, "$.log", "person_name", None),
    ({"tree": {"log": "displayName: UNKNOWN USER"}}, "$.log", "person_name", None),
    ({"tree": {"log": "hostname=metrics-a.wbx2.com"}}, "$.log", "hostname", None),
    ({"tree": {"log": "Device Name: iPhone"}}, "$.log", "hostname", None),
    ({"headers": [("X-Note", "displayName: Jane Roe")]}, "header:X-Note", "person_name", None),
]


@pytest.mark.parametrize(("args", "location", "kind", "expected"), CASES)
def test_context_table(args, location, kind, expected):
    found = _at(args, location, kind)
    if expected is None:
        assert found == [], found
        return
    assert found, ENGINE.detect(make_payload(args.get("tree"), query=args.get("query", ()),
                                             headers=args.get("headers", ()),
                                             url=args.get("url")))
    category, severity = expected
    assert [(f.category, f.severity) for f in found] == [(category, severity)] * len(found)


def test_an_ingestion_key_says_why_it_is_not_the_users():
    (finding,) = _at({"headers": [("apikey", TENANT)], "url": ONE_DS}, "header:apikey",
                     "auth_token")
    assert "ingestion key" in finding.reason and "tenant" in finding.reason
    assert "not the user" in finding.reason
    assert TENANT not in finding.evidence


def test_a_geo_pair_is_one_finding_for_both_numbers():
    payload = make_payload({"location": {"lat": 48.8566, "lng": 2.3522, "acc": 12}})
    (finding,) = [f for f in ENGINE.detect(payload) if f.type == "geo_location"]
    assert finding.location == "$.location"
    assert "pair" in finding.reason and "48.8566" not in finding.evidence


def test_a_shared_constant_is_never_a_persistent_id():
    for value in ("NO_AUTH", "default", "unknown", "00000000000000000000000000000000",
                  "ffffffff-ffff-ffff-ffff-ffffffffffff", "00:00:00:00:00:00", "NOT_SET"):
        assert is_shared_constant(value), value
        assert identifier_candidates(make_payload(headers=[("Client-Id", value)])) == []
    for value in ("dev-5f1e5a1c", GUID, "C02XK0ABJGH5", "abc123", "Device_1"):
        assert not is_shared_constant(value), value
    # recall kept: a real id under the same header is a candidate
    (candidate,) = identifier_candidates(make_payload(headers=[("Client-Id", GUID)]))
    assert candidate["location"] == "header:Client-Id"


@pytest.mark.parametrize(("key", "expected"), [
    ("release", True), ("av", True), ("$app_version_string", True), ("build", True),
    ("ver", True), ("clientVersion", True), ("osVersionName", True),
    ("clientIp", False), ("address", False), ("available", False), ("relay", False),
])
def test_version_keys(key, expected):
    assert is_version_key(normalize_key(key)) is expected


def test_neighbours_walk_the_path_and_the_url():
    tree = {"metrics": [{"eventPayload": {"event": {"name": "client.share.initiated",
                                                    "shareResourceName": "x", "mute": True}}}]}
    event, siblings, host = neighbours_of(
        tree, ("metrics", 0, "eventPayload", "event", "shareResourceName"),
        "https://user@Metrics-A.wbx2.com:443/metrics/api/v1/clientmetrics?x=1")
    assert event.split() == ["client.share.initiated", "/metrics/api/v1/clientmetrics"]
    assert siblings == {"name", "mute"}
    assert host == "metrics-a.wbx2.com"
    # A path through a JSON string (nested decoding) stops the walk without error.
    assert neighbours_of({"a": "{\"b\": 1}"}, ("a", "b"), "") == ("", frozenset(), "")


@pytest.mark.parametrize(("args", "location", "kind", "expected"), [
    case for case in CASES if set(case[0]) == {"tree"} and isinstance(case[0]["tree"], dict)
    and len(case[0]["tree"]) == 1 and case[1].count(".") == 1 and "[" not in case[1]
    and not isinstance(next(iter(case[0]["tree"].values())), (dict, list))
])
def test_pure_detector_agrees(args, location, kind, expected):
    """A one-key tree: the detector alone, with its neighbours filled in, agrees."""
    tree = args["tree"]
    (key, value), = tree.items()
    ctx = Context.of((key,)).around(*neighbours_of(tree, (key,)))
    hits = BY_TYPE[kind].detect(value, ctx)
    assert bool(hits) is (expected is not None)
