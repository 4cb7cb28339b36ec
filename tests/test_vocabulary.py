"""The event-name vocabulary: splitting names, verdicts, the pack section and its tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from phonehome.model import TRIGGER_SOURCES
from phonehome.rules import RuleLoadError, load_rules
from phonehome.rules.testing import run_rule_tests, run_vocabulary_tests
from phonehome.rules.vocabulary import Vocabulary, entries_from, split_words


@pytest.mark.parametrize(("name", "words"), [
    ("client.exit.app", ("client", "exit", "app")),
    ("JS_SDK_WDM_REGISTRATION_SUCCESSFUL", ("js", "sdk", "wdm", "registration", "successful")),
    ("clientShareFloorGrantRequest", ("client", "share", "floor", "grant", "request")),
    ("TfLSignInSuccessful", ("tf", "l", "sign", "in", "successful")),
    ("HTTPServerError", ("http", "server", "error")),
    ("web-calling-sdk-media", ("web", "calling", "sdk", "media")),
    ("app_crash2", ("app", "crash", "2")),
    ("rtcMetrics stats-report (webrtc)", ("rtc", "metrics", "stats", "report", "webrtc")),
    ("", ()),
    ("…·✓", ()),
])
def test_split_words(name, words):
    assert split_words(name) == words


def test_split_words_reads_a_bounded_prefix():
    assert len(split_words("aB" * 100_000)) <= 256


def _vocab(**triggers):
    spec = {t: dict(v) for t, v in triggers.items()}
    return Vocabulary(entries_from(spec), neutral=frozenset({"call", "end", "client", "app"}),
                      precedence=("error",))


VOCAB = _vocab(
    error={"strong": ["fail", "failures"]},
    screen_share={"strong": ["share"]},
    meeting_join={"strong": ["join"]},
    meeting_leave={"strong": ["leave", "call end"]},
    collaboration={"strong": ["chat", "leave chat"]},
    in_meeting={"weak": ["media"]},
    app_start={"weak": ["launched"]},
    unknown={"strong": ["share link"]},
)


@pytest.mark.parametrize(("name", "trigger", "confidence", "candidates"), [
    ("client.share.failures", "error", "high", ()),       # precedence: a failure of a share
    ("client_call_end", "meeting_leave", "high", ()),     # a phrase
    ("callend", "meeting_leave", "high", ()),              # run-together, split by known words
    ("leaveChat", "collaboration", "high", ()),            # the longer phrase speaks for "leave"
    ("shareLink", None, None, ()),                         # an unknown phrase silences "share"
    ("joinShareLink", "meeting_join", "high", ()),
    ("meetingJoinLeave", None, None, ("meeting_join", "meeting_leave")),  # a tie: unknown
    ("mediaLaunched", None, None, ("app_start", "in_meeting")),
    ("media.tx.start", "in_meeting", "medium", ()),        # weak only
    ("media.join", "meeting_join", "high", ()),            # strong beats weak
    ("client.network.changed", None, None, ()),
])
def test_judge(name, trigger, confidence, candidates):
    verdict = VOCAB.judge(name)
    assert (verdict.trigger, verdict.confidence, verdict.candidates) == (
        trigger, confidence, candidates)
    if candidates:
        assert "points to" in verdict.reason


def test_judge_remembers_a_bounded_number_of_names():
    for i in range(10_000):
        VOCAB.judge(f"event{i}.share")
    assert len(VOCAB._memo) <= 4096


def test_trigger_sources_include_name():
    assert "name" in TRIGGER_SOURCES


def _pack(tmp_path: Path, vocabulary: str) -> Path:
    path = tmp_path / "extra.yaml"
    path.write_text("pack: extra\nvendor: Example\nrules: []\n" + vocabulary)
    return path


def test_the_bundled_vocabulary_passes_its_inline_tests():
    results = run_vocabulary_tests(load_rules())
    assert [r.id for r in results] == ["generic:vocabulary"]
    assert results[0].passed, results[0].messages
    assert results[0].count >= 40


def test_a_pack_vocabulary_joins_the_bundled_one_and_a_wrong_test_fails(tmp_path):
    path = _pack(tmp_path, """\
vocabulary:
  triggers:
    meeting_join: {strong: [huddle]}
  tests:
    - {name: startHuddle, trigger: meeting_join}
    - {name: app_crash, trigger: shutdown}
""")
    ruleset = load_rules([path])
    assert ruleset.vocabulary.judge("startHuddle").trigger == "meeting_join"
    assert ruleset.vocabulary.judge("client.crash").trigger == "error"  # the bundled words
    results = {r.id: r for r in run_rule_tests(ruleset)}
    extra = results["extra:vocabulary"]
    assert not extra.passed
    assert extra.messages == (
        f"{path}: vocabulary ['app_crash', line 9]: trigger 'error', expected 'shutdown' "
        "(the name says crash)",)


_TESTS = "  tests: [{name: a, trigger: unknown}]\n"


@pytest.mark.parametrize(("section", "message"), [
    ("vocabulary:\n  triggers: {teatime: {strong: [tea]}}\n" + _TESTS,
     "'teatime' is not one of setup"),
    ("vocabulary:\n  triggers: {error: {strong: [Crash]}}\n" + _TESTS,
     "'Crash' must be lowercase words"),
    ("vocabulary:\n  triggers: {error: {loud: [crash]}}\n" + _TESTS,
     "unknown key 'loud' in vocabulary trigger 'error'"),
    ("vocabulary:\n  triggers: {error: {strong: [crash]}}\n", "missing required key 'tests'"),
    ("vocabulary:\n  triggers: {error: {strong: [crash]}}\n  tests: []\n",
     "the vocabulary has no tests"),
    ("vocabulary:\n  triggers: {error: {strong: [crash]}}\n  tests: [{name: a, trigger: late}]\n",
     "'trigger': 'late' is not one of"),
    ("vocabulary:\n  triggers: {error: {strong: [crash]}}\n  precedence: [soon]\n"
     + _TESTS, "'precedence': 'soon' is not one of"),
])
def test_bad_vocabulary_sections_are_load_errors_with_their_line(tmp_path, section, message):
    path = _pack(tmp_path, section)
    with pytest.raises(RuleLoadError) as info:
        load_rules([path])
    errors = [str(e) for e in info.value.errors]
    assert any(message in e and e.startswith(f"{path}:") for e in errors), errors
