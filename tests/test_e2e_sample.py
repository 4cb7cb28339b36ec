"""The bundled sample capture, audited through the CLI like the README says."""

from __future__ import annotations

import json

import pytest

from builders import EXAMPLES, audit_sample
from conftest import assert_valid_report
from ground_truth import findings_at, matches

pytestmark = pytest.mark.e2e



def test_sample_audit_finds_every_planted_leak_on_the_real_timeline(tmp_path):
    result = audit_sample(tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "audit.json").read_text())
    assert_valid_report(report)
    truth = json.loads((EXAMPLES / "ground_truth.json").read_text())
    assert report["summary"]["flows"] == truth["requests"]
    missing = [entry for entry in truth["planted"]
               if not any(matches(entry, f) for f in
                          findings_at(report, entry["host"], entry["path"], entry["location"]))]
    assert missing == []
    streams = {c["event"]: c for c in report["cadence"] if c["regular"]}
    assert streams["client.mediaquality.event"]["median_interval_s"] == pytest.approx(60, rel=0.1)
    assert streams["stats-report"]["median_interval_s"] == pytest.approx(30, rel=0.1)
