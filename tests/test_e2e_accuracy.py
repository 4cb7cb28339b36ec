"""A session whose every event name is respelled, played through a real mitmdump, audited
by `phonehome audit` and scored against the simulator's ground truth (bench/accuracy.py)."""

from __future__ import annotations

import importlib.util
import json
import re
from types import ModuleType
from typing import Any

import pytest

from builders import ROOT

pytestmark = pytest.mark.e2e

SEED = 21


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("phonehome_bench_accuracy",
                                                  ROOT / "bench" / "accuracy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModuleType, dict, dict]:
    bench = _bench()
    workdir = tmp_path_factory.mktemp("respelled") / f"seed-{SEED}"
    bench._play(workdir, SEED, 1.0, None)  # every name respelled; no outside event list
    report = bench._audit(workdir, workdir / "audit")
    truth = json.loads((workdir / "ground_truth.json").read_text())
    return bench, report, truth


def test_respelled_session_meets_the_targets(session: tuple[ModuleType, dict, dict]) -> None:
    bench, report, truth = session
    row = bench.score(report, truth)
    assert row["trigger"] >= 0.95, row["wrong_triggers"]
    assert row["purpose"] >= 0.97
    assert row["precision"] >= 0.97, row["false_alarms"]
    assert row["recall"] >= 0.98
    assert row["category_f1"] >= 0.92
    assert row["cadence"] == 1.0


def _pair(bench: ModuleType, report: dict, truth: dict, path: str) -> list[tuple[dict, dict]]:
    return [(f, r) for f, r in bench._pairs(report, truth) if r["path"] == path]


def _lifecycle(bench: ModuleType, report: dict, truth: dict) -> list[tuple[dict, dict]]:
    """The flows before the first heartbeat: setup, sign-in and app start."""
    pairs = bench._pairs(report, truth)
    end = next(i for i, (_, r) in enumerate(pairs) if r["trigger"] == "periodic")
    return pairs[:end]


def test_the_respelled_mute_raises_the_levels_sent_while_muted(
        session: tuple[ModuleType, dict, dict]) -> None:
    bench, report, truth = session
    marks = {m["label"]: m["source"] for m in report["markers"]}
    assert marks["muted"].startswith("name:") and marks["unmuted"].startswith("name:")
    start, end = truth["mute_window"]["start"], truth["mute_window"]["end"]
    levels: dict[bool, set[str]] = {True: set(), False: set()}
    for flow, request in bench._pairs(report, truth):  # the simulator's own clock
        for finding in flow["findings"]:
            if finding["type"] == "audio_level":
                levels[start < request["timestamp"] < end].add(finding["severity"])
    assert levels == {True: {"high"}, False: {"medium"}}


@pytest.mark.parametrize(("path", "event", "trigger"), [
    ("/u2c/api/v1/limited/catalog", None, "sign_in"),     # the pre-auth catalog by e-mail hash
    ("/metrics/api/v1/clientmetrics", "webha", "error"),  # web-ha, a 5xx report
    ("/metrics/api/v1/clientmetrics", "registration", "setup"),  # meetings.register()
    ("/metrics/api/v1/clientmetrics-prelogin", "startup", "setup"),  # the first launch
])
def test_lifecycle_flows_agree_with_the_ground_truth(
        session: tuple[ModuleType, dict, dict], path: str, event: str | None,
        trigger: str) -> None:
    bench, report, truth = session
    pairs = [(f, r) for f, r in _lifecycle(bench, report, truth) if r["path"] == path
             and (event is None or any(event in re.sub("[^a-z]", "", n.lower())
                                       for n in r["events"]))]
    assert pairs
    for flow, request in pairs:
        assert (request["trigger"], flow["trigger"]) == (trigger, trigger), flow["events"]


def test_the_catalog_url_finding_is_in_the_ground_truth(
        session: tuple[ModuleType, dict, dict]) -> None:
    bench, report, truth = session
    flow, _ = _pair(bench, report, truth, "/u2c/api/v1/user/catalog")[0]
    at_url = [f for f in flow["findings"] if f["location"] == "url"]
    expected: list[dict[str, Any]] = [e for e in truth["expected_service"]
                                      if e["location"] == "url"]
    assert [(f["type"], f["encoding"]) for f in at_url] == [("identity_match", "url")]
    assert [(e["finding_type"], e["encoding"]) for e in expected] == [("identity_match", "url")]
