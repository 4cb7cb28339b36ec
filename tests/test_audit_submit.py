"""One `AuditSession.submit` for every flow: observed here, audited elsewhere as a record,
or audited and encoded by a worker (`Audited`); the stored session is the same.

- through the API: the three ways give equal reports, markers and scaled times included;
- through the CLI: `--time-scale` with worker processes stores what one process stores.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from builders import SAMPLE, muted_event_flow
from phonehome.audit.pipeline import Audited, Auditor, AuditSettings, EncodedRecord
from phonehome.audit.session import AuditSession
from phonehome.model import Observation
from report_cases import fixed_key, phonehome


def _flows() -> list[Observation]:
    return [muted_event_flow("f1", 100.0, ("opt_out", 99.0)),
            muted_event_flow("f2", 102.0, ("meeting_join", 101.5)),
            muted_event_flow("f3", 103.0)]


def _report(session: AuditSession) -> dict[str, Any]:
    report = session.finish().to_dict()
    report.pop("generated_at")
    return report


@pytest.mark.parametrize("time_scale", [1.0, 10.0])
def test_a_flow_encoded_by_a_worker_is_stored_as_an_observed_one(tmp_path, time_scale):
    observed = AuditSession(AuditSettings(), tmp_path / "a" / "audit.sqlite",
                            time_scale=time_scale)
    for observation in _flows():
        observed.submit(observation)
    shown: list[dict[str, Any]] = []
    encoded = AuditSession(AuditSettings(), tmp_path / "b" / "audit.sqlite",
                           time_scale=time_scale, on_record=shown.append)
    auditor = Auditor(AuditSettings())
    for observation in _flows():
        stored = encoded.submit(Audited(auditor.audit_encoded(observation),
                                        tuple(observation.markers)))
        assert isinstance(stored, EncodedRecord) and stored.id == observation.id
    assert encoded.flows == 3 and [r["id"] for r in shown] == ["f1", "f2", "f3"]
    want, got = _report(observed), _report(encoded)
    assert got == want
    times = [f["timestamp"] for f in got["flows"]]
    assert times == ([100.0, 102.0, 103.0] if time_scale == 1.0 else [109.0, 129.0, 139.0])
    assert [(m["label"], m["flow_id"]) for m in got["markers"] if m["source"] == "auditor"] == [
        ("opt_out", "f1"), ("meeting_join", "f2")]


@pytest.mark.e2e
def test_time_scaled_audit_on_workers_equals_one_process(tmp_path):
    outputs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        fixed_key(out)
        result = phonehome("audit", SAMPLE, "-o", out, "--format", "json", "-q",
                           "--time-scale", "3", "--jobs", jobs)
        assert result.returncode == 0, result.stderr
        report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
        report.pop("generated_at")
        report["inputs"].pop("captures")
        outputs[jobs] = report
    plain = tmp_path / "plain"
    fixed_key(plain)
    assert phonehome("audit", SAMPLE, "-o", plain, "--format", "json", "-q").returncode == 0
    unscaled = json.loads((plain / "audit.json").read_text(encoding="utf-8"))
    assert outputs["2"] == outputs["1"]
    scaled = {f["id"]: f["timestamp"] for f in outputs["2"]["flows"]}
    original = {f["id"]: f["timestamp"] for f in unscaled["flows"]}
    assert scaled.keys() == original.keys() and len(scaled) > 50
    # one origin (the session's first moment) stretches every flow's time by 3
    origins = {round((3 * original[i] - scaled[i]) / 2, 3) for i in original}
    assert len(origins) == 1
    assert scaled != original
