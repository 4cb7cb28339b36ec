"""Accuracy on names no rule was written for: mute markers from the vocabulary, the first
launch a rule calls an app start; vocabulary tables, pack checks and the real pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builders import ROOT, audited_at
from conftest import assert_valid_report
from phonehome.analysis.session import build_report
from phonehome.audit.pipeline import Auditor, AuditSettings
from phonehome.rules.loader import load_rules
from phonehome.rules.vocabulary import Vocabulary

METRICS = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
LOCUS = "https://locus-a.wbx2.com/locus/api/v1/loci"
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    pack = next(p for p in load_rules([ROOT / "rules" / "generic.yaml"],
                                      include_builtin=False).packs if p.vocabulary is not None)
    assert pack.vocabulary is not None
    return pack.vocabulary


@pytest.fixture(scope="module")
def auditor() -> Auditor:
    return Auditor(AuditSettings())


# --- the vocabulary's marks ---------------------------------------------------------


@pytest.mark.parametrize(("name", "trigger", "marks"), [
    ("ClientMuted", "in_meeting", ("muted",)),
    ("client_muted", "in_meeting", ("muted",)),
    ("client-unmuted", "in_meeting", ("unmuted",)),
    ("clientUnmuted", "in_meeting", ("unmuted",)),
    ("desktop.muted", "in_meeting", ("muted",)),
    ("micMute", "in_meeting", ("muted",)),
    ("audio_unmute", "in_meeting", ("unmuted",)),
    # another word wins: the phrase that speaks proves nothing
    ("muteChat", "collaboration", ()),
    ("client.muted.failed", "error", ()),
    ("client.unmute.error", "error", ()),
    # words that point elsewhere or to several moments
    ("client.media.quality.event", "in_meeting", ()),
    ("lobbyToggleMuted", None, ()),
    ("client.share.initiated", "screen_share", ()),
])
def test_a_mute_word_proves_its_marker(vocabulary: Vocabulary, name: str, trigger: str | None,
                                        marks: tuple[str, ...]) -> None:
    verdict = vocabulary.judge(name)
    assert (verdict.trigger, verdict.marks) == (trigger, marks)


def test_the_pack_runs_its_mark_tests(vocabulary: Vocabulary) -> None:
    assert any(t.marks for t in vocabulary.tests)
    assert vocabulary.run_tests() == []


def _vocabulary_pack(marks: str, tests: str = "[{name: ClientMuted, trigger: in_meeting}]") -> str:
    return f"""\
pack: words
vendor: test
version: 1
rules: []
vocabulary:
  triggers:
    in_meeting:
      strong: [muted, unmuted]
  marks: {marks}
  tests: {tests}
"""


@pytest.mark.parametrize(("marks", "message"), [
    ("{muted: [mute]}", "'mute' is not a phrase of the vocabulary's triggers"),
    ("{silenced: [muted]}", "'silenced' is not one of"),
    ("[muted]", "'marks' must be a mapping"),
    ("{muted: muted}", "'muted' must be a list of strings"),
])
def test_bad_marks_are_load_errors_with_their_line(tmp_path: Path, marks: str,
                                                   message: str) -> None:
    path = tmp_path / "words.yaml"
    path.write_text(_vocabulary_pack(marks))
    with pytest.raises(ValueError) as error:
        load_rules([path], include_builtin=False)
    assert message in str(error.value)
    assert "words.yaml:9" in str(error.value)


def test_a_failed_mark_test_says_what_was_proven(tmp_path: Path) -> None:
    path = tmp_path / "words.yaml"
    path.write_text(_vocabulary_pack(
        "{muted: [muted], unmuted: [unmuted]}",
        "[{name: ClientUnmuted, trigger: in_meeting, marks: [muted]}]"))
    pack = next(p for p in load_rules([path], include_builtin=False).packs
                if p.vocabulary is not None)
    assert pack.vocabulary is not None
    assert pack.vocabulary.run_tests() == [
        "vocabulary ['ClientUnmuted', line 10]: marks ['unmuted'], expected ['muted']"]


# --- through the real pipeline ------------------------------------------------------


def _ca(*names: str, **event: Any) -> dict[str, Any]:
    return {"metrics": [{"eventPayload": {"event": {"name": n, **event}},
                         "type": ["diagnostic-event"]} for n in names]}


def _mqe(volume: float) -> dict[str, Any]:
    interval = {"audioTransmit": [{"levels": {"audioMeanVolume": volume}}]}
    return _ca("client.mediaquality.event", intervals=[interval])


def _report(auditor: Auditor, steps: list[tuple[float, str, str, Any]]) -> dict[str, Any]:
    records = [audited_at(auditor, f"f{i}", T0 + at, method, url, body)
               for i, (at, method, url, body) in enumerate(steps)]
    report = build_report(records, claims_paths=[])
    assert_valid_report(report)
    return report


def _levels(flow: dict[str, Any]) -> list[str]:
    return [f["severity"] for f in flow["findings"] if f["type"] == "audio_level"]


@pytest.mark.parametrize(("muted", "unmuted"), [
    ("ClientMuted", "ClientUnmuted"),
    ("client_muted", "client_unmuted"),
    ("desktop.muted", "desktop.unmuted"),
])
def test_a_respelled_mute_opens_the_mute_phase(auditor: Auditor, muted: str,
                                               unmuted: str) -> None:
    report = _report(auditor, [
        (0.0, "POST", "https://wdm-a.wbx2.com/wdm/api/v1/devices", {"name": "d"}),
        (300.0, "POST", f"{LOCUS}/call", {"correlationId": "c1"}),
        (360.0, "POST", METRICS, _mqe(-31.5)),
        (400.0, "POST", METRICS, _ca(muted, mediaType="audio")),
        (420.0, "POST", METRICS, _mqe(-40.25)),
        (480.0, "POST", METRICS, _mqe(-41.75)),
        (500.0, "POST", METRICS, _ca(unmuted, mediaType="audio")),
        (540.0, "POST", METRICS, _mqe(-30.5)),
        (900.0, "PUT", f"{LOCUS}/l1/participant/p1/leave", {}),
    ])
    flows = {flow["id"]: flow for flow in report["flows"]}
    marks = [(m["label"], m["source"], m["flow_id"]) for m in report["markers"]
             if m["label"] in ("muted", "unmuted")]
    assert marks == [("muted", "name:webex-ca-diagnostic-events", "f3"),
                     ("unmuted", "name:webex-ca-diagnostic-events", "f6")]
    assert flows["f3"]["events"][0]["name_trigger"]["marks"] == ["muted"]
    assert [p["name"] for p in report["phases"]].count("mute") == 1
    assert (_levels(flows["f2"]), _levels(flows["f4"]), _levels(flows["f5"]),
            _levels(flows["f7"])) == (["medium"], ["high"], ["high"], ["medium"])
    assert (flows["f3"]["trigger"], flows["f3"]["trigger_source"]) == ("in_meeting", "name")


def test_the_rule_named_mute_marks_once_and_a_name_without_a_mute_word_not_at_all(
        auditor: Auditor) -> None:
    report = _report(auditor, [
        (300.0, "POST", f"{LOCUS}/call", {"correlationId": "c1"}),
        (400.0, "POST", METRICS, _ca("client.muted", mediaType="audio")),
        (410.0, "POST", METRICS, _ca("muteChat", "client_mute_failed")),
        (500.0, "POST", METRICS, _ca("client.unmuted", mediaType="audio")),
    ])
    marks = [(m["label"], m["source"]) for m in report["markers"]
             if m["label"] in ("muted", "unmuted")]
    assert marks == [("muted", "rule:webex-ca-diagnostic-events"),
                     ("unmuted", "rule:webex-ca-diagnostic-events")]
    assert all("marks" not in (e.get("name_trigger") or {})
               for e in report["flows"][2]["events"])


def test_a_rule_app_start_during_setup_is_the_first_launch(auditor: Auditor) -> None:
    report = _report(auditor, [
        # the first-launch batch: the launch respelled, the startup named by the webex pack
        (0.0, "POST", METRICS, _ca("client-webexapp-launched", "client.startup.start")),
        (1.0, "POST", "https://wdm-a.wbx2.com/wdm/api/v1/devices", {"name": "d"}),
        (5.0, "POST", METRICS, _ca("client.sign-in.start")),
        (12.0, "POST", METRICS, _ca("client.startup.end")),
        (90.0, "GET", "https://u2c.wbx2.com/u2c/api/v1/limited/catalog?format=hostmap", None),
    ])
    first, later, catalog = (report["flows"][i] for i in (0, 3, 4))
    assert (first["trigger"], first["trigger_source"], first["trigger_confidence"]) == (
        "setup", "rule", "medium")
    assert "first launch" in first["trigger_reason"]
    assert first["events"][1]["trigger"] == "app_start"  # the rule's own word is kept
    assert (later["trigger"], later["trigger_source"], later["trigger_confidence"]) == (
        "app_start", "rule", "high")
    assert (catalog["trigger"], catalog["trigger_source"]) == ("app_start", "rule")
