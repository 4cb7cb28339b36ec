"""Reports written in one pass over the store, through the `phonehome` CLI.

- the streamed audit.json and CSVs of six small sessions are those the in-memory
  build wrote (tests/fixtures/streaming/, recorded from it before it was removed),
  with `finding_groups` added;
- audit.json validates against the shipped schema, at 5,000 flows too;
- the Markdown and HTML of 20,000 flows stay under their size bound and point to
  audit.json for the flows they do not show.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from builders import write_flows
from report_cases import CASES, comparable, expected, fixed_key, phonehome, telemetry_flows

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "addons" / "phonehome" / "report" / "report.schema.json")
                    .read_text(encoding="utf-8"))
MAX_PEOPLE_BYTES = 5 * 1024 * 1024


def _validate(report: dict[str, Any]) -> None:
    validator = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(report))
    assert error is None, f"{list(error.absolute_path)}: {error.message[:300]}"


@pytest.mark.parametrize("name", list(CASES))
def test_streamed_reports_equal_the_in_memory_ones(tmp_path: Path, name: str) -> None:
    out = CASES[name](tmp_path)
    got = comparable(out)
    want = expected(name)
    groups = got["json"].pop("finding_groups")
    assert "finding_groups" not in want["json"]
    # the digest came later: tests/test_digest.py checks it against the flows
    got["json"].pop("digest")
    for claim in got["json"]["claims"]:
        claim.pop("digest")
    for flow in got["json"]["flows"]:  # and the identity key an identity match is of
        for finding in flow["findings"]:
            finding.pop("identity", None)
        for event in flow["events"]:  # and where an event sits in its batch
            event.pop("location", None)
    assert got["json"] == want["json"]
    assert got["flows_csv"] == want["flows_csv"]
    assert got["findings_csv"] == want["findings_csv"]
    # the groups are the flows' findings, counted once
    findings = [(flow["host"], finding) for flow in got["json"]["flows"]
                for finding in flow["findings"]]
    assert sum(group["count"] for group in groups) == len(findings)
    grouped = Counter({(g["type"], g["host"], g["location"]): 0 for g in groups})
    for group in groups:
        grouped[(group["type"], group["host"], group["location"])] += group["count"]
    assert grouped == Counter((f["type"], host, f["location"]) for host, f in findings)
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    _validate(report)


def _cloned_store(tmp_path: Path, flows: int) -> Path:
    """A store of `flows` records: a real audit's records, repeated with fresh ids and
    times, written with the store's own writer."""
    from phonehome.audit.store import FindingsStore, read_store

    seed = tmp_path / "seed"
    fixed_key(seed)
    capture = write_flows(tmp_path / "seed.mitm", telemetry_flows(60))
    done = phonehome("audit", capture, "-o", seed, "--format", "json", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    with read_store(seed / "audit.sqlite") as contents:
        records = list(contents.records())
        inputs = contents.meta()["inputs"]
    store = tmp_path / "big" / "audit.sqlite"
    writer = FindingsStore(store, commit_every=2000)
    writer.set_meta("inputs", inputs)
    for index in range(flows):
        record = dict(records[index % len(records)])
        record["id"] = str(uuid.UUID(int=index + 1))
        record["timestamp"] = 1_780_000_000.0 + index * 2.5
        writer.append(record)
    writer.close()
    return store


def test_the_json_report_of_5000_flows_validates(tmp_path: Path) -> None:
    store = _cloned_store(tmp_path, 5000)
    out = tmp_path / "out"
    done = phonehome("report", store, "-o", out, "--format", "json", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    assert len(report["flows"]) == report["summary"]["flows"] == 5000
    assert all(flow["decoded"] is not None for flow in report["flows"])  # bodies kept
    assert report["finding_groups"]
    _validate(report)


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.flows: list[str] = []
        self.groups = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "details" and "flow" in (found.get("class") or "").split():
            self.flows.append(str(found.get("id")))
        if tag == "tr" and "finding" in (found.get("class") or "").split():
            self.groups += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_html_and_markdown_of_20000_flows_stay_small(tmp_path: Path) -> None:
    flows = 20_000
    store = _cloned_store(tmp_path, flows)
    out = tmp_path / "out"
    done = phonehome("report", store, "-o", out, "--format", "md,html,csv", "-q")
    assert done.returncode == 0, done.stderr[-2000:]
    html = (out / "audit.html").read_text(encoding="utf-8")
    markdown = (out / "audit.md").read_text(encoding="utf-8")
    assert len(html.encode()) <= MAX_PEOPLE_BYTES
    assert len(markdown.encode()) <= MAX_PEOPLE_BYTES

    page = _Sections()
    page.feed(html)
    shown = len(page.flows)
    assert 0 < shown < 200  # the flows behind the top groups, in full
    assert page.groups > 0
    text = " ".join(" ".join(page.text).split())
    assert f"{flows - shown:,} more flows in audit.json" in text
    # the digest's example flows are among those shown: each link opens a flow
    digest_section = html.split('id="digest"', 1)[1].split("</section>", 1)[0]
    links = re.findall(r'href="#flow-([^"]+)"', digest_section)
    assert links and set(links) <= set(f.removeprefix("flow-") for f in page.flows)
    assert "in audit.json</span>" not in digest_section
    assert re.search(rf"{flows - shown:,} more flows in audit\.json", markdown)
    # the CSVs still hold every flow
    with (out / "audit-flows.csv").open(encoding="utf-8") as rows:
        assert sum(1 for _ in rows) == flows + 1
