"""The enforce file and EnforcePolicy.from_options: parsing, validation, path:line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from builders import ROOT
from phonehome.enforce import (
    MODES,
    Action,
    EnforceError,
    EnforcePolicy,
    load_enforce_file,
)

EXAMPLE = ROOT / "rules" / "enforce" / "example.yaml"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "enforce.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def test_example_file_loads() -> None:
    loaded = load_enforce_file(EXAMPLE)
    by_rule, by_category, by_finding = loaded[:3]
    assert by_rule["webex-log-upload-file"].action == "block"
    assert by_rule["tracker-amplitude"] == Action(
        "block", 200, (), (), by_rule["tracker-amplitude"].where)
    assert by_category["error_logs"].action == "block"
    assert by_category["error_logs"].parties == ("third",)
    assert by_finding["identity_match"].action == "redact"
    assert by_finding["audio_level"].purposes == ("telemetry", "unknown")
    assert loaded.block_status == 204
    assert loaded.purposes == ("telemetry",)
    assert by_category["error_logs"].where.startswith(f"{EXAMPLE}:")


def test_example_rule_ids_exist_in_the_bundled_packs() -> None:
    text = "\n".join(p.read_text() for p in (ROOT / "rules").glob("*.yaml")
                     if p.name != EXAMPLE.name)
    for rule_id in load_enforce_file(EXAMPLE).by_rule:
        assert f"id: {rule_id}\n" in text


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("rules:\n  a: block\n", {"rules": {"a": Action("block")}}),
        ("rules:\n  a: {action: redact, party: [first, third]}\n",
         {"rules": {"a": Action("redact", None, ("first", "third"))}}),
        ("categories:\n  error_logs: {action: block, party: third, status: 403}\n",
         {"categories": {"error_logs": Action("block", 403, ("third",))}}),
        ("categories:\n  meeting_content: {action: block, purpose: service}\n",
         {"categories": {"meeting_content": Action("block", None, (), ("service",))}}),
        ("findings:\n  identity_match: redact\n  auth_token: observe\n",
         {"findings": {"identity_match": Action("redact"), "auth_token": Action("observe")}}),
        ("block_status: 403\n", {"block_status": 403}),
        ("purposes: []\n", {"purposes": ()}),
        ("purposes: [telemetry, unknown]\n", {"purposes": ("telemetry", "unknown")}),
        ("purposes: update\n", {"purposes": ("update",)}),
        ("min_severity: medium\n", {"min_severity": "medium"}),
        ("", {}),
        ("# only a comment\n", {}),
        ("rules:\n", {}),
    ],
)
def test_valid_files(tmp_path: Path, text: str, expect: dict) -> None:
    loaded = load_enforce_file(_write(tmp_path, text))
    sections = {"rules": loaded.by_rule, "categories": loaded.by_category,
                "findings": loaded.by_finding}
    for name, section in sections.items():
        want = expect.get(name, {})
        assert set(section) == set(want)
        for key, action in want.items():
            got = section[key]
            assert (got.action, got.status, got.parties, got.purposes) == (
                action.action, action.status, action.parties, action.purposes)
    assert loaded.block_status == expect.get("block_status", 204)
    assert loaded.purposes == expect.get("purposes", ("telemetry",))
    assert loaded.min_severity == expect.get("min_severity", "info")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("rulez:\n  a: block\n", 1, "unknown key 'rulez'"),
        ("rules:\n  a: blok\n", 2, "action 'blok' is not one of"),
        ("rules:\n  a: {action: block, stauts: 403}\n", 2, "unknown key 'stauts'"),
        ("rules:\n  a: {status: 403}\n", 2, "missing required key 'action'"),
        ("rules:\n  a: {action: redact, status: 403}\n", 2, "'status' only goes with block"),
        ("rules:\n  a: {action: block, status: 99}\n", 2, "must be an HTTP status"),
        ("rules:\n  a: {action: block, status: '204'}\n", 2, "must be an HTTP status"),
        ("rules:\n  a: {action: block, party: fourth}\n", 2, "'fourth' is not one of"),
        ("rules:\n  a: {action: block, purpose: [telemetry, chat]}\n", 2,
         "'chat' is not one of"),
        ("rules:\n  a: [block]\n", 2, "must be an action word or a mapping"),
        ("categories:\n  identity_match: redact\n", 2, "put it under 'findings'"),
        ("findings:\n  error_logs: block\n", 2, "put it under 'categories'"),
        ("findings:\n  emails: redact\n", 2, "'emails' is not one of"),
        ("categories: [error_logs]\n", 1, "must be a mapping of names to actions"),
        ("block_status: 1000\n", 1, "block_status 1000 must be an HTTP status"),
        ("min_severity: urgent\n", 1, "min_severity 'urgent' is not one of"),
        ("purposes: [service, chat]\n", 1, "'chat' is not one of"),
        ("protect: [service]\n", 1, "unknown key 'protect'"),
        ("rules:\n  a: block\n  a: redact\n", 3, "duplicate key 'a'"),
        ("- block\n", 1, "must be a mapping"),
        ("rules: {a: block\n", 2, "invalid YAML"),
    ],
)
def test_invalid_files(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(EnforceError) as info:
        load_enforce_file(path)
    first = info.value.errors[0]
    assert first.startswith(f"{path}:{line}:"), first
    assert message in first


def test_every_error_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, """
        rules:
          a: blok
        categories:
          nope: block
        findings:
          email: {action: redact, party: everyone}
        extra: 1
    """)
    with pytest.raises(EnforceError) as info:
        load_enforce_file(path)
    lines = [int(e.split(":")[1]) for e in info.value.errors]
    assert lines == [2, 4, 6, 7]
    assert [e.startswith(str(path)) for e in info.value.errors] == [True] * 4


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EnforceError, match="cannot read"):
        load_enforce_file(tmp_path / "absent.yaml")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dry_run", [False, True])
def test_from_options_without_file(mode: str, dry_run: bool) -> None:
    policy = EnforcePolicy.from_options(mode, dry_run, None)
    assert (policy.mode, policy.dry_run) == (mode, dry_run)
    assert policy.enabled == (mode != "observe")
    assert dict(policy.by_rule) == {} and policy.block_status == 204


def test_from_options_with_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "block_status: 403\nrules:\n  a: block\nmin_severity: low\n")
    policy = EnforcePolicy.from_options("Block", False, path)
    assert policy.mode == "block"
    assert policy.block_status == 403
    assert policy.by_rule["a"].action == "block"
    assert policy.min_severity == "low"
    assert policy.unknown_rules({"b"}) == ["a"]
    assert policy.unknown_rules({"a"}) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "delete"}, "enforce mode 'delete'"),
        ({"block_status": 42}, "block status 42"),
        ({"min_severity": "urgent"}, "min_severity 'urgent'"),
    ],
)
def test_policy_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(EnforceError, match=message):
        EnforcePolicy(**kwargs)


def test_policy_is_immutable() -> None:
    policy = EnforcePolicy(by_rule={"a": Action("block")})
    with pytest.raises(TypeError):
        policy.by_rule["b"] = Action("redact")  # type: ignore[index]
    with pytest.raises(AttributeError):
        policy.mode = "block"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("action", "purpose", "party", "named", "applies"),
    [
        (Action("block"), "telemetry", "third", False, True),
        (Action("block"), "service", "first", False, False),
        (Action("block"), "auth", "first", False, False),
        (Action("block"), "service", "first", True, True),
        (Action("block", purposes=("service",)), "service", "first", False, True),
        (Action("block", purposes=("telemetry",)), "service", "first", True, False),
        (Action("redact"), "service", "first", False, True),
        (Action("block", parties=("third",)), "telemetry", "first", False, False),
        (Action("block", parties=("third",)), "telemetry", "third", False, True),
        (Action("observe", parties=("unknown",)), "update", "unknown", False, True),
    ],
)
def test_action_scope(action: Action, purpose: str, party: str, named: bool,
                      applies: bool) -> None:
    assert action.applies(purpose, party, named=named) is applies
