"""Enforce mode against hostile encodings and unrecognised traffic, through a real mitmdump
to the local vendor server, which records exactly what arrives.

Re-encoded telemetry (UTF-16, a corrupt gzip stream) must not get past block or redact
mode; redact mode must leave every unflagged byte as sent; traffic no rule classifies
as telemetry must pass untouched unless the enforce file names it.
"""

from __future__ import annotations

import gzip
import json
import re
import ssl
from pathlib import Path

import httpx
import pytest

from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess
from phonehome.simulate import RESOLVER_ADDON_PATH
from phonehome.simulate.vendor_server import VendorServer, read_record

pytestmark = pytest.mark.e2e

EMAIL = "jane.roe@example.org"
IDENTITY = f"email: {EMAIL}\nname: Jane Roe\n"
TELEMETRY = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"


def _event(**fields: object) -> dict:
    return {"metrics": [{"eventPayload": {"event": {"name": "client.call.initiated"},
                                          **fields}}]}


LEAKY = json.dumps(_event(userEmail=EMAIL, origin={"clientVersion": "43.8.0.26"}))
# numbers and escapes a tree round trip would change; only the e-mail is flagged
NUMBERS = (
    '{ "metrics" : [ {"eventPayload": {"event": {"name": "client.call.initiated"},\n'
    f'   "userEmail": "{EMAIL}", "big": 1e400, "pi": 3.14159265358979323846,\n'
    '   "e": 1E5, "z": -0, "neg": -0.0e-0, "esc": "caf\\u00e9 \\/ \\"q\\"",\n'
    '   "order": {"b": 1, "a": 2}, "again": "' + EMAIL + '"}} ]}\n'
).encode()
_broken = bytearray(gzip.compress(LEAKY.encode() * 20))
_broken[40:60] = b"\xff" * 20
CORRUPT_GZIP = bytes(_broken)
MULTIPART = (
    b"--XyZ\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\n" + EMAIL.encode()
    + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n\x00\x01binary\r\n--XyZ--\r\n")

# name → (url, headers, body); every request has its own host and path
REQUESTS: dict[str, tuple[str, dict[str, str], bytes]] = {
    "utf16": (TELEMETRY + "?case=utf16",
              {"content-type": "application/json; charset=utf-16"}, LEAKY.encode("utf-16")),
    "utf32be": (TELEMETRY + "?case=utf32be",
                {"content-type": "application/json; charset=utf-32be"},
                LEAKY.encode("utf-32-be")),
    "corrupt_gzip": (TELEMETRY + "?case=gzip",
                     {"content-type": "application/json", "content-encoding": "gzip"},
                     CORRUPT_GZIP),
    "numbers": (TELEMETRY + "?case=numbers", {"content-type": "application/json"}, NUMBERS),
    # traffic no rule classifies as telemetry
    "multipart_unknown_host": ("https://upload.unknown-host.example/u",
                               {"content-type": "multipart/form-data; boundary=XyZ"},
                               MULTIPART),
    "form_sign_in": ("https://idbroker.webex.com/idb/oauth2/v1/access_token",
                     {"content-type": "application/x-www-form-urlencoded"},
                     f"grant_type=password&username={EMAIL}&client_id=C1".encode()),
    "json_sign_in_host": ("https://idbroker.webex.com/idb/profile/v2/whatever",
                          {"content-type": "application/json"},
                          json.dumps({"login": EMAIL, "n": 1.50}).encode()),
    "ndjson_unknown": ("https://collector.unknown-host.example/ingest",
                       {"content-type": "application/x-ndjson"},
                       f'{{"a": 1}}\n{{"email": "{EMAIL}"}}\n'.encode()),
    "json_third_party": ("https://api.some-third-party.example/v1/things",
                         {"content-type": "application/json"},
                         json.dumps({"user": {"email": EMAIL}, "x": 1e2}).encode()),
}
TELEMETRY_CASES = ("utf16", "utf32be", "corrupt_gzip", "numbers")
UNRECOGNISED = tuple(name for name in REQUESTS if name not in TELEMETRY_CASES)


def _run(tmp_path: Path, mode: str, enforce_file: str | None = None) -> dict:
    (tmp_path / "identity.yaml").write_text(IDENTITY)
    reports = tmp_path / "reports"
    options = {"ssl_insecure": "true", "phonehome_identity": str(tmp_path / "identity.yaml"),
               "phonehome_report_dir": str(reports), "phonehome_formats": "json",
               "phonehome_quiet": "true", "phonehome_enforce": mode}
    if enforce_file is not None:
        (tmp_path / "enforce.yaml").write_text(enforce_file)
        options["phonehome_enforce_file"] = str(tmp_path / "enforce.yaml")
    statuses = {}
    with VendorServer(tmp_path / "vendor.jsonl") as vendor:
        options["phonehome_sim_upstream"] = vendor.address
        with MitmdumpProcess(tmp_path / "conf", scripts=[ADDON_SCRIPT, RESOLVER_ADDON_PATH],
                             options=options) as proxy:
            context = ssl.create_default_context(cafile=str(proxy.ca_cert))
            with httpx.Client(proxy=proxy.url, verify=context, trust_env=False,
                              timeout=30) as client:
                for name, (url, headers, body) in REQUESTS.items():
                    statuses[name] = client.post(url, content=body, headers=headers).status_code
        received = read_record(vendor.record_path)
    report = json.loads((reports / "audit.json").read_text())
    arrived = {}
    for name, (url, _, _) in REQUESTS.items():
        host, _, rest = url.removeprefix("https://").partition("/")
        path, _, query = ("/" + rest).partition("?")
        hits = [r for r in received if r["host"] == host and r["path"] == path
                and (r.get("query") or "") == query]
        assert len(hits) <= 1, name
        arrived[name] = hits[0]["body"] if hits else None
    flows = {}
    for flow in report["flows"]:
        for name, (url, _, _) in REQUESTS.items():
            if flow["url"] == url:
                flows[name] = flow
    assert set(flows) == set(REQUESTS)
    return {"statuses": statuses, "arrived": arrived, "flows": flows}


def _only_flagged_spans_changed(sent: str, received: str) -> None:
    """`received` is `sent` with each e-mail replaced, and not one other character changed."""
    parts = sent.split(EMAIL)
    assert len(parts) > 1
    pattern = "(?s)" + r'([^"\\]+)'.join(re.escape(part) for part in parts)
    m = re.fullmatch(pattern, received)
    assert m is not None, received
    assert all(EMAIL not in g and g for g in m.groups())


def test_block_mode_blocks_reencoded_telemetry(tmp_path: Path) -> None:
    run = _run(tmp_path, "block")
    for name in TELEMETRY_CASES:
        assert run["arrived"][name] is None, name  # the server never saw it
        assert run["statuses"][name] == 204, name
        flow = run["flows"][name]
        assert flow["enforcement"]["action"] == "blocked", name
        assert flow["purpose"] == "telemetry" and "webex-ca-diagnostic-events" in flow["rule_ids"]
    # the UTF-16 body is read, so its e-mail is a finding; the corrupt one is opaque
    assert any(f["type"] in ("email", "identity_match")
               for f in run["flows"]["utf16"]["findings"])
    gz = run["flows"]["corrupt_gzip"]
    assert gz["events"] == []
    assert any(n.startswith("opaque body:") for n in gz["payload"]["notes"])
    # nothing a rule does not classify as telemetry is touched
    for name in UNRECOGNISED:
        assert run["arrived"][name] == REQUESTS[name][2], name
        assert run["flows"][name]["enforcement"]["action"] == "passed", name


def test_redact_mode(tmp_path: Path) -> None:
    run = _run(tmp_path, "redact")
    arrived, flows = run["arrived"], run["flows"]
    # UTF-16 and UTF-32 telemetry is redacted in its own charset, every other byte kept
    for name, codec in (("utf16", "utf-16"), ("utf32be", "utf-32-be")):
        body = arrived[name]
        assert body is not None and flows[name]["enforcement"]["action"] == "redacted", name
        if codec == "utf-16":
            assert body[:2] == REQUESTS[name][2][:2]  # the BOM, as sent
        _only_flagged_spans_changed(LEAKY, body.decode(codec))
    # a body that cannot be read cannot be checked: blocked, and the reason says so
    assert arrived["corrupt_gzip"] is None and run["statuses"]["corrupt_gzip"] == 204
    gz = flows["corrupt_gzip"]["enforcement"]
    assert gz["action"] == "blocked" and "opaque body" in gz["reason"]
    # numbers keep their form, whitespace and escapes stay; only the e-mails change
    assert flows["numbers"]["enforcement"]["action"] == "redacted"
    _only_flagged_spans_changed(NUMBERS.decode(), arrived["numbers"].decode())
    json.loads(arrived["numbers"])  # still JSON (no Infinity)
    for name in UNRECOGNISED:
        assert arrived[name] == REQUESTS[name][2], name
        assert flows[name]["enforcement"]["action"] == "passed", name


def test_enforce_file_entries_reach_unrecognised_traffic(tmp_path: Path) -> None:
    enforce = ("findings:\n"
               "  email: {action: redact, purpose: unknown}\n"
               "  identity_match: {action: redact, purpose: unknown}\n")
    run = _run(tmp_path, "redact", enforce)
    arrived, flows = run["arrived"], run["flows"]
    for name in ("ndjson_unknown", "json_third_party", "multipart_unknown_host"):
        assert flows[name]["purpose"] == "unknown", name
        assert flows[name]["enforcement"]["action"] == "redacted", name
        _only_flagged_spans_changed(REQUESTS[name][2].decode("latin-1"),
                                    arrived[name].decode("latin-1"))
    assert b'filename="a.bin"' in arrived["multipart_unknown_host"]
    for name in ("form_sign_in", "json_sign_in_host"):  # auth: not named, not touched
        assert flows[name]["purpose"] == "auth"
        assert arrived[name] == REQUESTS[name][2], name
