"""The simulator end to end: vendor server ← real mitmdump + resolver addon ← simulate().

One vendor server and one mitmdump serve every run in this module; runs are
sequential, so each run's requests are the records between its start and end.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote_plus

import pytest
import yaml

from phonehome.proxy_process import MitmdumpProcess
from phonehome.simulate import ALL_LEAKS, RESOLVER_ADDON_PATH, SimulationResult, simulate
from phonehome.simulate.vendor_server import VendorServer, read_record

pytestmark = pytest.mark.e2e

SPEED = 2000.0
SERVICE_ENDPOINTS = {
    ("wdm-a.wbx2.com", "/wdm/api/v1/devices"),
    ("u2c.wbx2.com", "/u2c/api/v1/limited/catalog"),
    ("u2c.wbx2.com", "/u2c/api/v1/user/catalog"),
    ("idbroker.webex.com", "/idb/oauth2/v1/access_token"),
    ("webexapis.com", "/v1/meetings"),
    ("locus-a.wbx2.com", "/wbxappapi/v1/meetingInfo"),
    ("locus-a.wbx2.com", "/locus/api/v1/loci/call"),
    ("conv-a.wbx2.com", "/conversation/api/v1/activities"),
}
"""Where personal values legitimately travel: the app doing its job."""


# --- running mitmdump -------------------------------------------------------------


@dataclass(frozen=True)
class Rig:
    proxy_url: str
    ca_cert: Path
    record: Path
    work: Path


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    work = tmp_path_factory.mktemp("simulate")
    record = work / "record.jsonl"
    with VendorServer(record) as server:
        with MitmdumpProcess(work / "conf", scripts=[RESOLVER_ADDON_PATH], extra_args=["-q"],
                             options={"phonehome_sim_upstream": server.address,
                                      "ssl_insecure": "true"}) as proxy:
            yield Rig(proxy.url, proxy.ca_cert, record, work)


@dataclass(frozen=True)
class Run:
    result: SimulationResult
    records: list[dict[str, Any]]
    truth: dict[str, Any]
    identity: dict[str, Any]


def _play(rig: Rig, name: str, leaks: tuple[str, ...], seed: int = 1) -> Run:
    before = len(read_record(rig.record)) if rig.record.exists() else 0
    result = simulate(rig.proxy_url, rig.ca_cert, seed=seed, speed=SPEED, leaks=leaks,
                      out_dir=rig.work / name)
    records = read_record(rig.record)[before:]
    truth = json.loads(result.ground_truth_path.read_text())
    identity = yaml.safe_load(result.identity_path.read_text())
    return Run(result, records, truth, identity)


@pytest.fixture(scope="module")
def all_run(rig: Rig) -> Run:
    return _play(rig, "all", ALL_LEAKS)


@pytest.fixture(scope="module")
def none_run(rig: Rig) -> Run:
    return _play(rig, "none", ())


# --- reading records ------------------------------------------------------------


def _header(record: dict[str, Any], name: str) -> str | None:
    if name.lower() == "host":
        return record["host"]  # HTTP/2 carries it as :authority
    for key, value in record["headers"]:
        if key.lower() == name.lower():
            return value
    return None


def _body(record: dict[str, Any]) -> bytes:
    body = record["body"]
    if (_header(record, "Content-Encoding") or "").lower() == "gzip":
        return gzip.decompress(body)
    return body


def _tree(record: dict[str, Any]) -> Any:
    text = _body(record).decode()
    if (_header(record, "Content-Type") or "").startswith("application/x-sentry-envelope"):
        return [json.loads(line) for line in text.splitlines() if line]
    if (_header(record, "Content-Type") or "").startswith("application/x-www-form-urlencoded"):
        return dict(parse_qsl(text))
    return json.loads(text) if text else None


_TOKEN = re.compile(r"\.([A-Za-z_$][\w$]*)|\[(\d+)\]")


def _resolve(record: dict[str, Any], location: str) -> Any:
    """A value by the ground truth's location: JSONPath, header:NAME, query:NAME or url."""
    if location == "url":
        return f"{record['path']}?{record['query']}"
    if location.startswith("header:"):
        return _header(record, location[len("header:"):])
    if location.startswith("query:"):
        return dict(parse_qsl(record["query"])).get(location[len("query:"):])
    assert location.startswith("$"), location
    node = _tree(record)
    for key, index in _TOKEN.findall(location[1:]):
        node = node[key] if key else node[int(index)]
    return node


def _events(record: dict[str, Any]) -> list[str]:
    try:
        tree = _tree(record)
    except (ValueError, UnicodeDecodeError):
        return []
    names = []
    for item in tree.get("metrics", []) if isinstance(tree, dict) else []:
        event = item.get("eventPayload", {}).get("event", {}) if "eventPayload" in item else {}
        names.append(event.get("name") or item.get("metricName") or item.get("type") or "")
    return names


def _labels(records: list[dict[str, Any]]) -> list[str]:
    """Each record as labels: its event names, or METHOD host+path."""
    labels = []
    for record in records:
        host = _header(record, "Host")
        labels.append(f"{record['method']} {host}{record['path']}")
        labels.extend(_events(record))
    return labels


def _telemetry(run: Run) -> list[dict[str, Any]]:
    return [r for r in run.records
            if (_header(r, "Host"), r["path"]) not in SERVICE_ENDPOINTS]


def _searchable(record: dict[str, Any]) -> str:
    """Everything a request carries: path, raw and decoded query, headers, body."""
    headers = "\n".join(f"{k}: {v}" for k, v in record["headers"])
    return "\n".join((record["path"], record["query"], unquote_plus(record["query"]), headers,
                      _body(record).decode("utf-8", "replace")))


def _forms(value: str, kinds: tuple[str, ...]) -> list[str]:
    """The encodings of a value an audit looks for, by leak kind."""
    data = value.encode()
    forms: list[str] = []
    if "plain" in kinds:
        forms += [value, value.lower(), value.upper()]
    if "url" in kinds:
        forms += [quote(value, safe=""), quote_plus(value)]
    if "base64" in kinds:
        forms += [base64.b64encode(data).decode(), base64.urlsafe_b64encode(data).decode(),
                  base64.b64encode(data).decode().rstrip("=")]
    if "hashed" in kinds:
        for name in ("md5", "sha1", "sha256", "sha512"):
            digest = hashlib.new(name, data).hexdigest()
            forms += [digest, digest.upper()]
            lowered = hashlib.new(name, value.lower().encode()).hexdigest()
            forms += [lowered]
    return [f for f in dict.fromkeys(forms) if f != value or "plain" in kinds]


# What each leak kind, when off, must never put into telemetry.
_ABSENT_WHEN_OFF: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "identity_plain": (("email", ("plain",)), ("hostname", ("plain",)), ("name", ("plain",)),
                       ("phone", ("plain",)), ("device_name", ("plain",))),
    "identity_url": (("email", ("url",)),),
    "identity_base64": (("email", ("base64",)),),
    "identity_hashed": (("email", ("hashed",)),),
    "stack_username": (("username", ("plain",)),),
    "meeting_title": (("meeting_titles", ("plain", "url", "base64", "hashed")),),
    "public_ip": (("ip", ("plain",)),),
    "mac_address": (("mac", ("plain",)),),
}


def _identity_value(identity: dict[str, Any], key: str) -> str:
    value = identity[key]
    return str(value[0] if isinstance(value, list) else value)


def _present(run: Run, key: str, kinds: tuple[str, ...]) -> list[str]:
    value = _identity_value(run.identity, key)
    forms = _forms(value, kinds)
    found = []
    for record in _telemetry(run):
        text = _searchable(record)
        for form in forms:
            pattern = re.escape(form)
            if key == "ip":
                pattern = rf"(?<![\d.]){pattern}(?![\d.])"
            if re.search(pattern, text):
                found.append(f"{form!r} in {record['method']} {_header(record, 'Host')}"
                             f"{record['path']}")
    return found


def _muted_seqs(run: Run) -> set[int]:
    """Record numbers of the MQE posts sent between client.muted and client.unmuted."""
    inside, found = False, set()
    for record in run.records:
        events = _events(record)
        if "client.muted" in events:
            inside = True
        elif "client.unmuted" in events:
            inside = False
        elif inside and "client.mediaquality.event" in events:
            found.add(record["seq"])
    return found


def _muted_mqe(run: Run) -> list[dict[str, Any]]:
    """The audioTransmit entries of the MQE events sent while muted."""
    muted = _muted_seqs(run)
    return [_tree(r)["metrics"][0]["eventPayload"]["event"]["intervals"][0]["audioTransmit"][0]
            for r in run.records if r["seq"] in muted]


def _event_at(record: dict[str, Any], location: str) -> str | None:
    """The event name of the batch item a location points into, when it has one."""
    found = re.match(r"\$\.(metrics|events)\[(\d+)\]", location)
    if not found:
        return None
    item = _tree(record)[found[1]][int(found[2])]
    if found[1] == "events":
        return item.get("event_type")
    return _events(record)[int(found[2])]


# --- tests ------------------------------------------------------------------------


def test_requests_all_arrive_at_the_vendor_server(all_run: Run) -> None:
    assert len(all_run.records) == all_run.result.requests == all_run.truth["requests"]
    assert sum(all_run.result.requests_by_host.values()) == all_run.result.requests


def test_every_host_keeps_its_host_header_and_sni(all_run: Run) -> None:
    hosts = {_header(r, "Host") for r in all_run.records}
    assert hosts == set(all_run.result.requests_by_host)
    for record in all_run.records:
        assert record["sni"] == _header(record, "Host")
        assert not record["sni"].startswith("127.")
    assert {"metrics-a.wbx2.com", "api.amplitude.com", "o12345.ingest.sentry.io",
            "unified-telemetry-a.wbx2.com", "client-logs-a.wbx2.com"} <= hosts


_MILESTONES = (
    "POST wdm-a.wbx2.com/wdm/api/v1/devices",
    "GET ds.ciscospark.com/v1/region",
    "client.sign-in.start",
    "GET u2c.wbx2.com/u2c/api/v1/limited/catalog",
    "POST idbroker.webex.com/idb/oauth2/v1/access_token",
    "client.login.end",
    "client.startup.end",
    "webex.system.client.heartbeat",
    "client.scheduling.initiate",
    "POST webexapis.com/v1/meetings",
    "client.meetinginfo.request",
    "POST locus-a.wbx2.com/locus/api/v1/loci/call",
    "client.locus.join.response",
    "POST unified-telemetry-a.wbx2.com/metric/v2",
    "client.mediaquality.event",
    "client.muted",
    "client.unmuted",
    "client.share.initiated",
    "client.share.stopped",
    "POST conv-a.wbx2.com/conversation/api/v1/activities",
    "client.crash",
    "POST o12345.ingest.sentry.io/api/4505123/envelope/",
    "client.call.leave",
    "POST client-logs-a.wbx2.com/api/v1/logs/urls",
    "POST client-logs-a.wbx2.com/api/v1/logs/meta",
    "js_sdk_upload_logs_success",
    "client.exit.app",
)


def test_phases_arrive_in_order(all_run: Run) -> None:
    labels = _labels(all_run.records)
    positions = [labels.index(m) for m in _MILESTONES]
    assert positions == sorted(positions)
    assert labels[-1] == "client.exit.app"
    # Heartbeats before the meeting and again after leaving it.
    beats = [i for i, label in enumerate(labels) if label == "webex.system.client.heartbeat"]
    assert len(beats) == 8
    assert sum(i > labels.index("client.call.leave") for i in beats) == 4


def test_in_meeting_cadence_counts(all_run: Run) -> None:
    labels = _labels(all_run.records)
    join, leave = labels.index("client.locus.join.response"), labels.index("client.call.leave")
    mqe = [i for i, label in enumerate(labels) if label == "client.mediaquality.event"]
    rtc = [i for i, label in enumerate(labels)
           if label == "POST unified-telemetry-a.wbx2.com/metric/v2"]
    assert len(mqe) == 15 and len(rtc) == 30
    assert all(join < i < leave for i in mqe + rtc)
    assert len(_muted_mqe(all_run)) == 4


def test_vendor_requests_keep_their_tracking_order(all_run: Run) -> None:
    seqs = [int(t.rsplit("_", 1)[1]) for r in all_run.records
            if (t := _header(r, "trackingid"))]
    assert seqs == list(range(1, len(seqs) + 1))


def test_third_parties_speak_http2_and_the_vendor_http1(all_run: Run) -> None:
    third = {"api.amplitude.com", "o12345.ingest.sentry.io"}
    versions = {(_header(r, "Host") in third, r["http_version"]) for r in all_run.records}
    assert versions == {(True, "HTTP/2.0"), (False, "HTTP/1.1")}


def test_some_bodies_are_gzipped(all_run: Run) -> None:
    gzipped = [r for r in all_run.records if _header(r, "Content-Encoding") == "gzip"]
    assert len(gzipped) >= 45
    assert all(r["body"][:2] == b"\x1f\x8b" for r in gzipped)


def test_batched_call_analyzer_envelope(all_run: Run) -> None:
    batches = [_tree(r) for r in all_run.records
               if r["path"].startswith("/metrics/api/v1/clientmetrics") and r["body"] != b"{}"]
    ca = [item["eventPayload"] for batch in batches for item in batch["metrics"]
          if item.get("type") == ["diagnostic-event"]]
    assert max(len(batch["metrics"]) for batch in batches) >= 3
    for payload in ca:
        assert set(payload) == {"eventId", "version", "origin", "originTime",
                                "senderCountryCode", "event"}
        assert payload["event"]["name"].startswith("client.")
        assert "identifiers" in payload["event"] and "clientInfo" in payload["origin"]


def test_every_leak_kind_is_planted(all_run: Run) -> None:
    assert {e["leak"] for e in all_run.truth["planted"]} == set(ALL_LEAKS)
    assert all_run.truth["leaks_not_planted"] == []


def _expected_match(run: Run, entry: dict[str, Any], value: Any) -> bool:
    kind, encoding = entry["value_kind"], entry["encoding"]
    if kind == "audio_level":
        return isinstance(value, (int, float)) and value > 0
    if kind == "chat_message":
        return value == _chat_text(run)
    secret = _identity_value(run.identity, kind)
    if not isinstance(value, str):
        return False
    if entry.get("leak") == "stack_username":
        return f"/Users/{secret}/" in value
    if encoding == "plain":
        return secret in value
    if encoding == "url":
        return quote_plus(secret) in value and secret not in value
    if encoding == "base64":
        return value == base64.b64encode(secret.encode()).decode()
    if encoding == "sha256":
        return value == hashlib.sha256(secret.encode()).hexdigest()
    raise AssertionError(f"unknown encoding {encoding}")


def _chat_text(run: Run) -> str:
    chat = next(r for r in run.records if r["path"].endswith("/activities"))
    return _tree(chat)["object"]["displayName"]


@pytest.mark.parametrize("section", ["planted", "expected_service"])
def test_ground_truth_matches_the_record(all_run: Run, section: str) -> None:
    entries = all_run.truth[section]
    muted = _muted_seqs(all_run)
    assert entries and muted
    for entry in entries:
        hits = 0
        for record in all_run.records:
            if (_header(record, "Host"), record["path"]) != (entry["host"], entry["path"]):
                continue
            try:
                value = _resolve(record, entry["location"])
            except (KeyError, IndexError, TypeError):
                continue
            if entry.get("event") and _event_at(record, entry["location"]) not in (
                    None, entry["event"]):
                continue
            if entry.get("leak") == "muted_audio" and record["seq"] not in muted:
                continue
            hits += _expected_match(all_run, entry, value)
        assert hits == entry["count"], entry


def test_service_values_stay_in_service_endpoints(all_run: Run) -> None:
    places = {(e["host"], e["path"]) for e in all_run.truth["expected_service"]}
    assert places <= SERVICE_ENDPOINTS
    assert not places & {(e["host"], e["path"]) for e in all_run.truth["planted"]}
    chat = _chat_text(all_run)
    assert not [r for r in _telemetry(all_run) if chat in _searchable(r)]


def test_muted_audio_levels_are_sent_when_planted(all_run: Run) -> None:
    muted = _muted_mqe(all_run)
    assert muted
    for audio in muted:
        assert audio["levels"]["audioMeanVolume"] > 0
        assert audio["streams"][0]["audioAlgorithmModulesInfo"]["vadRetentionOnMute"] > 0


def test_no_leaks_plants_nothing(none_run: Run) -> None:
    assert none_run.truth["planted"] == []
    assert none_run.truth["leaks_not_planted"] == list(ALL_LEAKS)
    assert none_run.truth["expected_service"]


@pytest.mark.parametrize("leak", sorted(_ABSENT_WHEN_OFF))
def test_no_leaks_sends_no_identity_value_to_telemetry(none_run: Run, leak: str) -> None:
    for key, kinds in _ABSENT_WHEN_OFF[leak]:
        assert _present(none_run, key, kinds) == [], (leak, key)


def test_no_leaks_sends_every_identity_value_in_no_form(none_run: Run) -> None:
    every = ("plain", "url", "base64", "hashed")
    for key in ("email", "name", "phone", "username", "device_name", "hostname", "ip", "mac",
                "meeting_ids", "meeting_titles"):
        assert _present(none_run, key, every) == [], key


def test_no_leaks_mutes_the_audio_levels(none_run: Run) -> None:
    muted = _muted_mqe(none_run)
    assert len(muted) == 4
    for audio in muted:
        assert "levels" not in audio
        assert "audioAlgorithmModulesInfo" not in audio["streams"][0]


@pytest.mark.parametrize("leak", ALL_LEAKS)
def test_one_leak_plants_only_itself(rig: Rig, leak: str) -> None:
    run = _play(rig, f"only-{leak}", (leak,), seed=7)
    assert {e["leak"] for e in run.truth["planted"]} == {leak}
    for other, checks in _ABSENT_WHEN_OFF.items():
        if other == leak:
            continue
        for key, kinds in checks:
            if leak == "mac_address" and key == "mac" or leak == "public_ip" and key == "ip":
                continue
            assert _present(run, key, kinds) == [], (other, key)
    if leak != "muted_audio":
        assert all("levels" not in audio for audio in _muted_mqe(run))


def test_the_simulate_command_through_the_cli(rig: Rig) -> None:
    before = len(read_record(rig.record))
    out = rig.work / "cli"
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "simulate", "--proxy", rig.proxy_url,
         "--ca", str(rig.ca_cert), "--speed", str(SPEED), "--leaks", "none", "-o", str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["leaks_planted"] == [] and (out / "identity.yaml").is_file()
    assert len(read_record(rig.record)) - before == truth["requests"]


def test_the_simulate_command_rejects_bad_input(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "simulate", "--proxy", "http://127.0.0.1:9",
         "--ca", str(tmp_path / "missing.pem"), "--leaks", "everything"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
