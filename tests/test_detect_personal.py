"""Personal-data detectors: positives next to decoys, per detector, through the engine
and through each detector's own pure `detect()`."""

from __future__ import annotations

import pytest

from builders import make_payload, nest
from phonehome.detect import DETECTORS, Context, DetectionEngine
from phonehome.model import FINDING_TYPES, severity_rank

ENGINE = DetectionEngine()
BY_TYPE = {cls.type: cls() for cls in DETECTORS}


def _types(path: tuple, value: object) -> dict[str, list]:
    findings = ENGINE.detect(make_payload(nest(path, value)))
    out: dict[str, list] = {}
    for f in findings:
        out.setdefault(f.type, []).append(f)
    return out


# (path, value, type, expected)
CASES = [
    # --- email
    (("user", "email"), "jane.roe@example.org", "email", True),
    (("msg",), "contact me at j.doe+tag@mail.example.co.uk please", "email", True),
    (("fields", "sipUri"), "sip:jane@acme.webex.com", "email", True),
    (("asset",), "icon@2x.png", "email", False),
    (("dep",), "webex-js-sdk@3.0.0", "email", False),
    (("x",), "not an @ address", "email", False),
    (("x",), "a..b@example.org", "email", False),
    # --- phone
    (("dial_in_url",), "tel:+14155552671", "phone", True),
    (("note",), "call +44 20 7946 0958 later", "phone", True),
    (("user", "phone"), "(415) 555-2671", "phone", True),
    (("user", "mobile"), 4155552671, "phone", True),
    (("ts",), "1715250000000", "phone", False),
    (("originTime",), 1715250000000, "phone", False),
    (("counter",), "123456789", "phone", False),
    (("blob",), "aGVsbG8+14155552671abc", "phone", False),
    (("offset",), "+0100", "phone", False),
    (("osVersion",), "10.0.22631", "phone", False),
    # --- person name
    (("user", "displayName"), "Jane Roe", "person_name", True),
    (("attendee", "fullName"), "José María García", "person_name", True),
    (("participants", 0, "name"), "Ana Lima", "person_name", True),
    (("user", "firstName"), "Jane", "person_name", True),
    (("userName",), "Jane Roe", "person_name", True),
    (("userName",), "jroe", "person_name", False),
    (("event", "name"), "client.call.initiated", "person_name", False),
    (("device", "name"), "Jane Roe", "person_name", False),
    (("user", "displayName"), "0f1e5a1c-8a7b-4b8e-9c1d-1234567890ab", "person_name", False),
    (("user", "displayName"), "user@example.org", "person_name", False),
    # --- ip address
    (("peerReflexiveIP",), "203.0.113.42", "ip_address", True),
    (("clientInfo", "localIP"), "192.168.1.80", "ip_address", True),
    (("candidate",), "a=candidate:1 1 udp 2122260223 198.51.100.7 54321 typ host", "ip_address",
     True),
    (("edgeInfo", "publicIP"), "2001:db8:85a3::8a2e:370:7334", "ip_address", True),
    (("xff",), "client 203.0.113.9 via proxy", "ip_address", True),
    (("clientVersion",), "43.8.0.26", "ip_address", False),
    (("build",), "43.8.0.26", "ip_address", False),
    (("userAgent",), "Webex/43.8.0.26 (mac)", "ip_address", False),
    (("note",), "version v10.1.2.3 released", "ip_address", False),
    (("browserVersion",), "120.0.6099.109", "ip_address", False),
    (("origin", "localIP"), "127.0.0.1", "ip_address", False),
    (("mask",), "255.255.255.0", "ip_address", False),
    (("x",), "1.2.3.4.5", "ip_address", False),
    (("time",), "10:00:00", "ip_address", False),
    (("x",), "999.1.1.1", "ip_address", False),
    # --- mac address
    (("clientInfo", "macAddress"), "a4:83:e7:12:34:56", "mac_address", True),
    (("wifi",), "bssid A4-83-E7-12-34-56 seen", "mac_address", True),
    (("mac",), "a483e7123456", "mac_address", True),
    (("x",), "a483.e712.3456", "mac_address", True),
    (("x",), "00:00:00:00:00:00", "mac_address", False),
    (("x",), "ff:ff:ff:ff:ff:ff", "mac_address", False),
    (("x",), "02:00:00:00:00:00", "mac_address", False),
    (("certFingerprint",), "ab:cd:ef:01:23:45:67:89:ab:cd", "mac_address", False),
    (("x",), "2023.1001.0001", "mac_address", False),
    (("eventId",), "a483e7123456", "mac_address", False),
    # --- geo
    (("location", "lat"), 48.8566, "geo_location", True),
    (("location", "lng"), 2.3522, "geo_location", True),
    (("geo",), "48.8566,2.3522", "geo_location", True),
    (("location", "lat"), 48, "geo_location", False),
    (("location", "lat"), 123.456, "geo_location", False),
    (("latency",), 48.8566, "geo_location", False),
    (("location", "lat"), True, "geo_location", False),
    # --- hostname
    (("clientInfo", "hostname"), "janes-mbp.local", "hostname", True),
    (("computerName",), "DESKTOP-4F2K9QX", "hostname", True),
    (("deviceName",), "Jane's MacBook Pro", "hostname", True),
    (("host",), "metrics-a.wbx2.com", "hostname", False),
    (("deviceName",), "iPhone", "hostname", False),
    (("hostname",), "localhost", "hostname", False),
    (("host",), "primary", "hostname", False),
    (("hostname",), "192.168.1.80", "hostname", False),
    # --- username
    (("stack",), "Error\n  at run (/Users/jroe/Library/app.js:12:3)", "username", True),
    (("stack",), "at C:\\Users\\jroe\\AppData\\Local\\app.dll", "username", True),
    (("log",), "open /home/alice/.config/webex failed", "username", True),
    (("user", "login"), "jroe", "username", True),
    (("osUser",), "CORP\\jroe", "username", True),
    (("url2",), "https://example.com/home/index.html", "username", False),
    (("stack",), "/Users/Shared/Webex/log.txt", "username", False),
    (("path",), "C:\\Users\\Public\\x", "username", False),
    (("user", "login"), "0f1e5a1c8a7b4b8e9c1d", "username", False),
    (("user",), "anonymous", "username", False),
    (("username",), "Jane Roe", "username", False),
    # --- device serial
    (("serialNumber",), "C02XL0GHJGH5", "device_serial", True),
    (("imei",), "490154203237518", "device_serial", True),
    (("imei",), "490154203237519", "device_serial", False),
    (("serialNumber",), "To be filled by O.E.M.", "device_serial", False),
    (("serialNumber",), "0", "device_serial", False),
    (("model",), "MacBookPro18,3", "device_serial", False),
    # --- credit card
    (("payment",), "4111 1111 1111 1111", "credit_card", True),
    (("card", "number"), "5555-5555-5555-4444", "credit_card", True),
    (("x",), "378282246310005", "credit_card", True),
    (("x",), "4111 1111 1111 1112", "credit_card", False),
    (("ts",), "1715250000000", "credit_card", False),
    (("x",), "1234567812345670", "credit_card", False),
    (("amount",), "4111111111111111.25", "credit_card", False),
    # --- national id
    (("ssn",), "536-22-1234", "national_id", True),
    (("note",), "my SSN is 536-22-1234", "national_id", True),
    (("iban",), "DE89 3704 0044 0532 0130 00", "national_id", True),
    (("x",), "paid from GB82WEST12345698765432", "national_id", True),
    (("dni",), "12345678Z", "national_id", True),
    (("taxId",), "36574261809", "national_id", True),
    (("x",), "000-12-3456", "national_id", False),
    (("x",), "12345678A", "national_id", False),
    (("x",), "DE89 3704 0044 0532 0130 01", "national_id", False),
    (("date",), "2024-05-09", "national_id", False),
    # --- auth token
    (("Authorization",), "Bearer NWU3ZGQ5ZjMtYjI0Ny00ODQzLWIyZDMtOGYzNjY4ZWQ5OWM3", "auth_token",
     True),
    (("x",), "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "auth_token",
     True),
    (("cfg",), "key=AKIAIOSFODNN7EXAMPLE", "auth_token", True),
    (("access_token",), "ya29.a0AfH6SMBx3kLq9vZp", "auth_token", True),
    (("password",), "hunter22", "auth_token", True),
    (("x",), "eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "auth_token", False),
    (("token",), "null", "auth_token", False),
    (("trackingId",), "webex-js-sdk_0f1e5a1c-8a7b-4b8e-9c1d-1234567890ab_12", "auth_token", False),
    (("contentHash",), "3f2a9c0b1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
     "auth_token", False),
]


@pytest.mark.parametrize(("path", "value", "kind", "expected"), CASES)
def test_engine_table(path, value, kind, expected):
    found = _types(path, value)
    assert (kind in found) is expected, found
    for finding in found.get(kind, ()):
        assert finding.category == "personal_data"
        assert severity_rank(finding.severity) >= severity_rank("medium")
        assert finding.detector == BY_TYPE[kind].name
        raw = str(value)
        if len(raw) >= 6:
            assert raw not in finding.evidence and raw not in finding.reason


@pytest.mark.parametrize(("path", "value", "kind", "expected"), CASES)
def test_detector_pure_api_agrees(path, value, kind, expected):
    """Each detector alone, as a pure function of (value, context), gives the same answer."""
    hits = BY_TYPE[kind].detect(value, Context.of(path))
    assert bool(hits) is expected


def test_one_class_per_finding_type():
    types = [cls.type for cls in DETECTORS]
    assert len(types) == len(set(types))
    assert set(types) == set(FINDING_TYPES) - {"identity_match", "persistent_id"}
    names = [cls.name for cls in DETECTORS]
    assert len(names) == len(set(names)) and all(names)


@pytest.mark.parametrize(
    ("value", "severity", "note"),
    [
        ("203.0.113.42", "high", "public"),
        ("192.168.1.80", "medium", "private"),
        ("10.1.2.3", "medium", "private"),
        ("203.0.113.0", "medium", "prefix"),
        ("fe80::1ff:fe23:4567:890a", "medium", "private"),
    ],
)
def test_ip_public_private_noted(value, severity, note):
    (finding,) = _types(("addr",), value)["ip_address"]
    assert finding.severity == severity
    assert note in finding.reason


def test_randomised_mac_noted():
    (finding,) = _types(("macAddress",), "da:a1:19:12:34:56")["mac_address"]
    assert "locally administered" in finding.reason and finding.severity == "medium"


@pytest.mark.parametrize(
    ("key", "value", "more"),
    [("ip", "198.51.100.7", True), ("clientVersion", "198.51.100.7", False),
     ("email", "a@b.example", True), ("osVersion", "a@b.example", False)],
)
def test_key_context_moves_confidence(key, value, more):
    plain = ENGINE.detect(make_payload({"data": value}))
    keyed = ENGINE.detect(make_payload({key: value}))
    base = max((f.confidence for f in plain), default=0)
    other = max((f.confidence for f in keyed), default=0)
    assert (other > base) if more else (other < base)


DECOYS = {
    "clientVersion": "43.8.0.26",
    "version": "43.8.0.26",
    "buildNumber": "43.8.0.26",
    "model": "MacBookPro18,3",
    "hwModel": "iPhone15,2",
    "osVersion": "10.0.22631",
    "os_version": "14.4.1",
    "eventId": "2f1e5a1c-8a7b-4b8e-9c1d-1234567890ab",
    "requestId": "5c7b1f0e-1d2c-4e3f-9a8b-7c6d5e4f3a2b",
    "originTime": 1715250000000,
    "timestamp": "1715250000000",
    "count": 1234567,
    "sequence": 42,
    "contentSha256": "3f2a9c0b1d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8",
    "buildHash": "9b2f3c1d4e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c",
    "etag": "W/\"5e8f-1a2b3c4d\"",
    "durationMs": 2440,
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Chrome/120.0.6099.109",
    "locale": "en-US",
    "name": "client.call.initiated",
    "type": ["diagnostic-event"],
    "networkType": "wifi",
}


def test_decoys_are_not_personal_data():
    assert ENGINE.detect(make_payload(DECOYS)) == []
