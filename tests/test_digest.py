"""The digest: what of yours went where.

- through the `phonehome` CLI, on every report case: each entry's numbers are what
  the flows' findings add up to, and every personal finding is in exactly one entry;
- every third party that received personal data appears in it;
- the schema validates it and refuses a malformed entry;
- the claims cite digest ids, and the third-party claim cites exactly the entries
  that went to third parties;
- audit.json has it right after `app`, and audit.md shows it first;
- a detected value that is your identity value joins that item; past MAX_ITEMS a
  new value joins its type's "other values", and the numbers still add up.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from builders import audit_sample
from report_cases import CASES, ROOT

SCHEMA = json.loads((ROOT / "addons" / "phonehome" / "report" / "report.schema.json")
                    .read_text(encoding="utf-8"))
PERSONAL = {"personal_data", "meeting_content"}


def _validator() -> Any:
    return jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


def _errors(report: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message[:200]}"
            for e in _validator().iter_errors(report)]


def _fold(location: str) -> str:
    return re.sub(r"\[\d+\]", "[]", location)


Places = dict[tuple[str, str, str], list[tuple[dict, dict]]]


def _places(report: dict[str, Any]) -> tuple[Places, Places]:
    """Each personal item, worked out from the flows alone: the places (flow, finding)
    where it was found, one per flow and field; and all its findings."""
    identity_fps = {f["fingerprint"]: f["identity"]
                    for flow in report["flows"] for f in flow["findings"]
                    if f["type"] == "identity_match" and f.get("identity") and f.get("fingerprint")}
    items: Places = defaultdict(list)
    every: Places = defaultdict(list)
    for flow in report["flows"]:
        seen: set[tuple[tuple[str, str, str], str]] = set()
        for f in flow["findings"]:
            if f["category"] not in PERSONAL:
                continue
            if f["type"] == "identity_match" and f.get("identity"):
                key = ("identity", f["identity"], "")
            elif f.get("fingerprint") in identity_fps:
                key = ("identity", identity_fps[f["fingerprint"]], "")
            elif f["type"] == "audio_level":
                key = ("detected", "audio_level", "")
            else:
                key = ("detected", f["type"], f.get("fingerprint") or f["evidence"])
            every[key].append((flow, f))
            if (key, f["location"]) not in seen:
                seen.add((key, f["location"]))
                items[key].append((flow, f))
    return items, every


def _key(entry: dict[str, Any]) -> tuple[str, str, str]:
    if entry["kind"] == "identity" or entry["item"] == "audio_level":
        return entry["kind"], entry["item"], ""
    return "detected", entry["item"], entry["fingerprint"] or entry["evidence"]


def _check_against_flows(report: dict[str, Any]) -> None:
    digest = report["digest"]
    items, every = _places(report)
    assert [e["id"] for e in digest] == [f"d{n}" for n in range(1, len(digest) + 1)]
    assert sorted(map(_key, digest)) == sorted(items)
    for entry in digest:
        places = items[_key(entry)]
        flows = {flow["id"]: flow for flow, _ in places}
        assert entry["count"] == len(places), entry["id"]
        assert entry["flow_count"] == len(flows)
        assert entry["first_seen"] == min(flow["timestamp"] for flow in flows.values())
        assert entry["last_seen"] == max(flow["timestamp"] for flow in flows.values())
        assert entry["triggers"] == dict(Counter(f["trigger"] for f in flows.values()))
        assert entry["example_flow"] == next(iter(flows))
        assert entry["severity"] == max((f["severity"] for _, f in every[_key(entry)]),
                                        key=("info", "low", "medium", "high").index)
        by_host: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
        for flow, finding in places:
            by_host[flow["host"]].append((flow, finding))
        assert {d["host"] for d in entry["destinations"]} == set(by_host)
        assert sum(d["count"] for d in entry["destinations"]) == entry["count"]
        counts = [d["count"] for d in entry["destinations"]]
        assert counts == sorted(counts, reverse=True)
        for destination in entry["destinations"]:
            at = by_host[destination["host"]]
            assert destination["count"] == len(at)
            assert destination["flow_count"] == len({flow["id"] for flow, _ in at})
            assert destination["party"] == at[0][0]["party"]
            assert destination["organization"] == at[0][0]["organization"]
            folded = Counter(_fold(f["location"]) for _, f in at)
            assert set(destination["locations"]) <= set(folded)
            assert len(destination["locations"]) == min(8, len(folded))
            assert set(destination["encodings"]) == {
                f.get("encoding") or "plain" for flow, f in every[_key(entry)]
                if flow["host"] == destination["host"]}
        orgs = Counter()
        for flow, _ in places:
            if flow["organization"]:
                orgs[flow["organization"]] += 1
        assert set(entry["organizations"]) == set(orgs)


@pytest.mark.e2e
@pytest.mark.parametrize("name", list(CASES))
def test_digest_numbers_are_what_the_flows_findings_add_up_to(tmp_path: Path,
                                                               name: str) -> None:
    out = CASES[name](tmp_path)
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert _errors(report) == []
    _check_against_flows(report)
    ids = {entry["id"] for entry in report["digest"]}
    for claim in report["claims"]:
        assert set(claim["digest"]) <= ids
        assert claim["digest"] == sorted(claim["digest"], key=lambda i: int(i[1:]))
        if claim["verdict"] != "contradicted":
            assert claim["digest"] == []


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sample") / "out"
    done = audit_sample(out, "--format", "json,md")
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "audit.json").read_text(encoding="utf-8"))


@pytest.mark.e2e
def test_every_third_party_that_received_personal_data_is_in_the_digest(sample: Path) -> None:
    report = _report(sample)
    received = {(flow["organization"], flow["host"]) for flow in report["flows"]
                if flow["party"] == "third"
                and any(f["category"] in PERSONAL for f in flow["findings"])}
    assert {org for org, _ in received} >= {"Amplitude", "Sentry (Functional Software, Inc.)"}
    listed = {(d["organization"], d["host"]) for entry in report["digest"]
              for d in entry["destinations"] if d["party"] == "third"}
    assert listed == received
    for org, _ in received:
        assert any(org in entry["organizations"] for entry in report["digest"])


@pytest.mark.e2e
def test_sample_digest_in_audit_json_and_md(sample: Path) -> None:
    report = _report(sample)
    assert list(report)[list(report).index("app") + 1] == "digest"
    first = report["digest"][0]
    assert (first["kind"], first["item"], first["label"]) == ("identity", "email", "your e-mail")
    assert first["evidence"] == "m***@w***.org"
    assert first["fingerprint"] is None
    hosts = {d["host"]: d for d in first["destinations"]}
    assert hosts["api.amplitude.com"]["party"] == "third"
    assert hosts["api.amplitude.com"]["encodings"] == ["sha256"]
    assert hosts["api.amplitude.com"]["locations"] == ["$.events[].user_id"]
    assert {"plain", "base64", "sha256", "url"} <= {
        e for d in first["destinations"] for e in d["encodings"]}
    # the e-mail the email detector found is the identity item, not an entry of its own
    assert not any(e["kind"] == "detected" and e["item"] == "email" for e in report["digest"])
    keys = {e["item"] for e in report["digest"] if e["kind"] == "identity"}
    assert {"email", "username", "hostname", "mac", "meeting_titles", "meeting_ids"} <= keys
    for entry in report["digest"]:
        for destination in entry["destinations"]:
            assert "mario" not in json.dumps(destination).lower()
        assert "mario" not in entry["evidence"].lower()

    text = (sample / "audit.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[1:3] == ["## What of yours went where", "## Claims"]
    section = text.split("## What of yours went where", 1)[1].split("\n## ", 1)[0]
    assert "`d1` **your e-mail** (`m***@w***.org`, high)" in section
    assert re.search(r"Amplitude, api\\\.amplitude\\\.com \(third party\): "
                     r"`\$\.events\[\]\.user_id`; sha256; 2×", section)
    # times as times, never epoch seconds
    assert str(int(first["first_seen"])) not in section
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d to \d\d:\d\d:\d\d\.\d UTC", section)


@pytest.mark.e2e
def test_claims_cite_the_digest_entries_they_rest_on(sample: Path) -> None:
    report = _report(sample)
    claims = {claim["id"]: claim for claim in report["claims"]}
    third = claims["webex-telemetry-first-party-only"]
    assert third["verdict"] == "contradicted"
    by_id = {flow["id"]: flow for flow in report["flows"]}
    # every flow to a third party is telemetry, so all the third parties' items are cited
    assert all(f["purpose"] == "telemetry" for f in by_id.values() if f["party"] == "third")
    went_third = [e["id"] for e in report["digest"]
                  if any(d["party"] == "third" for d in e["destinations"])]
    assert third["digest"] == went_third and went_third
    personal = claims["webex-telemetry-no-personal-data"]
    cited = {e["id"]: e for e in report["digest"] if e["id"] in personal["digest"]}
    assert "d1" in cited
    assert all(e["kind"] == "identity" or e["item"] in {"ip_address", "username", "email",
                                                         "mac_address", "auth_token"}
               for e in cited.values())
    text = (sample / "audit.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if "`webex-telemetry-first-party-only`" in line)
    assert re.findall(r"`(d\d+)`", row) == went_third


@pytest.mark.e2e
def test_schema_refuses_a_malformed_digest(sample: Path) -> None:
    report = _report(sample)
    assert _errors(report) == []
    for harm in ({"id": "1"}, {"kind": "guessed"}, {"count": 0}, {"secret": "x"}):
        broken = json.loads(json.dumps(report))
        broken["digest"][0].update(harm)
        assert _errors(broken), harm
    broken = json.loads(json.dumps(report))
    broken["digest"][0]["destinations"][0]["party"] = "first_party"
    assert _errors(broken)
    broken = json.loads(json.dumps(report))
    del broken["digest"]
    assert _errors(broken)


# --- the computation, directly -------------------------------------------------------------


def _flow(n: int, host: str, party: str, findings: list[dict[str, Any]],
          org: str | None = "Org") -> Any:
    from phonehome.analysis.records import FlowView

    return FlowView(id=f"f{n}", timestamp=100.0 + n, method="POST", url=f"https://{host}/",
                    host=host, purpose="telemetry", party=party, organization=org, bytes_out=1,
                    rule_ids=(), events=(), trigger="in_meeting", trigger_source="rule",
                    categories=(), findings=tuple(_finding(**f) for f in findings))


def _finding(**fields: Any) -> Any:
    from phonehome.analysis.records import Finding

    base = {"type": "email", "category": "personal_data", "severity": "high",
            "location": "$.a[0].email", "detector": "email", "evidence": "j***@e***.org"}
    return Finding(**{**base, **fields})


def test_a_detected_value_that_is_yours_joins_the_identity_item() -> None:
    from phonehome.analysis.digest import digest_of_flows

    flows = [
        # the email detector saw it first, before any identity match
        _flow(1, "a.example", "first", [{"fingerprint": "hmac:1"}]),
        _flow(2, "b.example", "third", [
            {"fingerprint": "hmac:1"},
            {"type": "identity_match", "detector": "identity", "encoding": "plain",
             "fingerprint": "hmac:1", "identity": "email"},
            {"type": "identity_match", "detector": "identity", "encoding": "md5",
             "fingerprint": "hmac:2", "identity": "email", "location": "$.uid",
             "evidence": "md5 of j***@e***.org"}], org="Tracker"),
        _flow(3, "a.example", "first", [{"fingerprint": "hmac:3", "evidence": "x***@y***.org"},
                                        {"type": "device_serial", "category": "device_info",
                                         "fingerprint": "hmac:4"}]),
    ]
    entries, _, _ = digest_of_flows(flows)
    assert [(e.kind, e.item, e.count, e.flow_count) for e in entries] == [
        ("identity", "email", 3, 2), ("detected", "email", 1, 1)]
    mine = entries[0]
    assert mine.label == "your e-mail" and mine.evidence == "j***@e***.org"
    assert mine.organizations == ("Tracker", "Org")
    tracker = next(d for d in mine.destinations if d.host == "b.example")
    assert (tracker.party, tracker.count, tracker.encodings) == ("third", 2, ("plain", "md5"))
    assert tracker.locations == ("$.a[].email", "$.uid")
    assert entries[1].fingerprint == "hmac:3"


def test_past_max_items_new_values_join_other_values() -> None:
    from phonehome.analysis.digest import OTHER_VALUES, Digest, DigestKeys

    digest = Digest(DigestKeys(), max_items=3)
    for n in range(10):
        digest.add(_flow(n, "h.example", "first",
                         [{"type": "phone", "fingerprint": f"hmac:{n}", "location": "$.p"}]))
    entries, ids = digest.entries()
    assert len(entries) == 4
    other = [e for e in entries if e.evidence == OTHER_VALUES]
    assert len(other) == 1 and other[0].count == 7 and other[0].fingerprint is None
    assert sum(e.count for e in entries) == 10
    assert sorted(ids.values(), key=lambda i: int(i[1:])) == [e.id for e in entries]
