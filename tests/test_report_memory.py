"""The report phase keeps a few bytes per flow: between its passes over the store the
analysis holds ids, times and shared shapes in arrays, not each flow's objects.

Memory is counted by tracemalloc (Python's own allocations, the same on every run),
not by the clock: the peak of analysing a store and writing audit.json from it, at
two sizes of the same session; what the larger one adds per flow is bounded.
"""

from __future__ import annotations

import csv
import json
import tracemalloc
import uuid
from pathlib import Path

import pytest

from builders import METRICS_URL, ca_batch, make_obs
from phonehome.analysis.tally import MAX_ROWS
from phonehome.analysis.timeline import values as timeline_values
from phonehome.analysis.timeline.values import UNNAMED_ENDPOINT
from phonehome.audit.pipeline import Auditor, AuditSettings
from phonehome.audit.session import AuditSession, report_from_store
from phonehome.report.write import write_report

EVENTS = ("client.mediaquality.event", "client.network.changed", "client.media.tx.start")
MAX_BYTES_PER_FLOW = 120
"""Arrays of a flow's time, size, shape, context and position, its id's offset, and a
persistent id's position (about 40 bytes measured); the flows' objects took 850."""


def _store(folder: Path, flows: int, fresh_ids: bool = False, made_up_hosts: bool = False,
           opted_out: bool = False) -> Path:
    """A session of `flows` flows: a few audited shapes repeated with fresh ids and
    times, each carrying the same user id (one persistent id over all of them).
    With `fresh_ids` each flow also carries two ids no other flow has, audited anew;
    with `made_up_hosts` each goes to a host and path no other flow names; with
    `opted_out` an opt_out marker comes first, so every flow is sent after it."""
    auditor = Auditor(AuditSettings())
    shapes = []
    for name in EVENTS:
        observation = make_obs(METRICS_URL, ca_batch({
            "name": name, "identifiers": {"userId": "0f2a9b1c-9c2f-4e61-8d25-6b8f1e1d2c3a"}}))
        shapes.append((observation, auditor.audit(observation)))
    session = AuditSession(AuditSettings(), folder / "audit.sqlite", auditor=auditor)
    if opted_out:
        session.mark("opt_out", 1_780_000_000.0 - 1)
    for index in range(flows):
        observation, record = shapes[index % len(shapes)]
        if fresh_ids:
            observation = make_obs(METRICS_URL, ca_batch({
                "name": EVENTS[index % len(EVENTS)],
                "identifiers": {"userId": "0f2a9b1c-9c2f-4e61-8d25-6b8f1e1d2c3a",
                                "deviceId": str(uuid.UUID(int=2 * index + 1)),
                                "installId": str(uuid.UUID(int=2 * index + 2))}}))
            record = auditor.audit(observation)
        if made_up_hosts:
            url = f"https://h{index}.example/v{index}/metrics"
            observation = make_obs(url, json.loads(observation.body))
            record = {**record, "url": url, "host": observation.host}
        flow_id = str(uuid.UUID(int=index + 1))
        observation.id = flow_id
        session.submit(observation, {**record, "id": flow_id,
                                     "timestamp": 1_780_000_000.0 + index * 7.5})
    session.close()
    return folder / "audit.sqlite"


def _peak(store: Path, out: Path, formats: tuple[str, ...] = ("json",)) -> int:
    tracemalloc.start()
    try:
        write_report(report_from_store(store), out, formats)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fresh_ids", [False, True], ids=["same ids", "fresh ids"])
def test_the_report_phase_holds_a_few_bytes_per_flow(tmp_path, fresh_ids):
    small, large = 1_500, 6_000
    peaks = {}
    for flows in (100, small, large):  # the first loads what any report loads once
        folder = tmp_path / str(flows)
        folder.mkdir()
        peaks[flows] = _peak(_store(folder, flows, fresh_ids), folder)
        report = json.loads((folder / "audit.json").read_bytes())
        assert len(report["flows"]) == flows  # every flow written
        # only the user id links flows: an id sent once is never a persistent id
        assert [(p["keys"], p["flow_count"]) for p in report["persistent_ids"]] == [
            (["userId"], flows)]
        if fresh_ids:
            assert report["summary"]["flows"] == flows
    per_flow = (peaks[large] - peaks[small]) / (large - small)
    assert per_flow <= MAX_BYTES_PER_FLOW, (
        f"{per_flow:.0f} bytes per flow (peaks {peaks[small]:,} and {peaks[large]:,})")


def test_a_flood_of_made_up_endpoints_stays_flat(tmp_path, monkeypatch):
    """Past MAX_SHAPES distinct shapes (20,000; 500 here) the timeline keeps new ones
    as one unnamed endpoint, read for no cadence; past MAX_ROWS (2,000) the summary
    and tables count the rest as "(other)"."""
    monkeypatch.setattr(timeline_values, "MAX_SHAPES", 500)
    small, large = 5_000, 12_000  # past the tables' and the endpoint memo's sizes
    peaks = {}
    for flows in (100, small, large):
        folder = tmp_path / str(flows)
        folder.mkdir()
        peaks[flows] = _peak(_store(folder, flows, made_up_hosts=True), folder)
        report = json.loads((folder / "audit.json").read_bytes())
        assert len(report["flows"]) == flows
        assert len({flow["host"] for flow in report["flows"]}) == flows
        assert UNNAMED_ENDPOINT not in {entry["endpoint"] for entry in report["cadence"]}
        assert len(report["summary"]["by_host"]) == min(flows, MAX_ROWS + 1)
    per_flow = (peaks[large] - peaks[small]) / (large - small)
    assert per_flow <= MAX_BYTES_PER_FLOW, (
        f"{per_flow:.0f} bytes per flow (peaks {peaks[small]:,} and {peaks[large]:,})")


def test_flows_sent_after_an_opt_out_cost_a_few_bytes_each(tmp_path):
    """The report's after_opt_out names its flows by position until it is written, and
    the claims and the flows CSV ask each flow's timeline context."""
    small, large = 1_500, 6_000
    peaks = {}
    for flows in (100, small, large):
        folder = tmp_path / str(flows)
        folder.mkdir()
        peaks[flows] = _peak(_store(folder, flows, opted_out=True), folder, ("json", "csv"))
        report = json.loads((folder / "audit.json").read_bytes())
        assert report["after_opt_out"] == [flow["id"] for flow in report["flows"]]
        with (folder / "audit-flows.csv").open(newline="") as rows:
            assert {row["after_opt_out"] for row in csv.DictReader(rows)} == {"true"}
        (opt_out,) = [c for c in report["claims"] if c["id"] == "webex-telemetry-opt-out"]
        assert opt_out["verdict"] == "contradicted"
        assert opt_out["evidence_count"] == flows
    per_flow = (peaks[large] - peaks[small]) / (large - small)
    assert per_flow <= MAX_BYTES_PER_FLOW, (
        f"{per_flow:.0f} bytes per flow (peaks {peaks[small]:,} and {peaks[large]:,})")
