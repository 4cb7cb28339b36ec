"""parse_config without a proxy: a plain namespace of options in, AddonConfig or
one ConfigError line per bad value out."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mitmproxy import exceptions

from builders import ROOT
from phonehome.addon_config import (
    OPTION_NAMES,
    AddonConfig,
    ConfigError,
    OptionView,
    option_problem,
    parse_config,
)
from phonehome.decode import DecodeLimits


def _options(tmp_path: Path, **overrides) -> SimpleNamespace:
    values = {
        "phonehome_scope": "", "phonehome_rules": [], "phonehome_identity": "",
        "phonehome_reveal": False, "phonehome_report_dir": str(tmp_path / "reports"),
        "phonehome_store": "", "phonehome_formats": "json,md,html,csv",
        "phonehome_quiet": False, "phonehome_max_body": DecodeLimits().max_decompressed_bytes,
        "phonehome_max_depth": DecodeLimits().max_depth,
        "phonehome_max_leaves": DecodeLimits().max_leaves, "phonehome_time_scale": "1",
        "phonehome_marker_socket": "", "phonehome_enforce": "observe",
        "phonehome_enforce_dry_run": False, "phonehome_enforce_file": "",
        "phonehome_audit_process": True, "phonehome_sensor": "", "phonehome_app": "auto",
        "phonehome_details": False, "phonehome_total_interval": "30", "phonehome_mark_flows": True,
    }
    assert set(values) == OPTION_NAMES
    values.update(overrides)
    return SimpleNamespace(**values)


def test_defaults_give_a_config(tmp_path):
    config = parse_config(_options(tmp_path))
    assert isinstance(config, AddonConfig)
    assert config.scope is None
    assert config.formats == ("json", "md", "html", "csv")
    assert config.settings.limits == DecodeLimits()
    assert config.store_path == tmp_path / "reports" / "audit.sqlite"
    assert config.marker_socket == tmp_path / "reports" / ".phonehome-markers.sock"
    assert config.time_scale == 1.0
    assert config.identity is None
    assert config.policy.mode == "observe" and not config.inline
    assert {r.id for r in config.rules.rules}  # the bundled packs
    assert (tmp_path / "reports").is_dir()


def test_every_option_is_read(tmp_path):
    identity = tmp_path / "me.yaml"
    identity.write_text("email: jane.roe@example.org\n")
    enforce = tmp_path / "enforce.yaml"
    enforce.write_text("block_status: 403\n")
    config = parse_config(_options(
        tmp_path, phonehome_scope="~d wbx2.com", phonehome_formats="all",
        phonehome_max_body="1000", phonehome_max_depth=8, phonehome_max_leaves=50,
        phonehome_time_scale="60", phonehome_enforce="Block", phonehome_enforce_file=str(enforce),
        phonehome_enforce_dry_run="true", phonehome_identity=str(identity),
        phonehome_rules=[str(ROOT / "rules" / "webex.yaml")], phonehome_reveal=True,
        phonehome_quiet=True, phonehome_audit_process=False,
        phonehome_store=str(tmp_path / "s" / "a.sqlite"),
        phonehome_marker_socket=str(tmp_path / "m.sock")))
    assert config.scope is not None
    assert config.formats == ("json", "md", "html", "csv")
    assert config.settings.limits == DecodeLimits(max_decompressed_bytes=1000, max_depth=8,
                                                  max_leaves=50)
    assert config.time_scale == 60.0
    assert (config.policy.mode, config.policy.dry_run, config.policy.block_status) == (
        "block", True, 403)
    assert config.identity is not None and config.settings.identity_path == identity
    assert config.settings.rule_paths == (ROOT / "rules" / "webex.yaml",)
    assert config.settings.reveal and config.quiet and config.inline
    assert config.store_path == tmp_path / "s" / "a.sqlite"
    assert config.marker_socket == tmp_path / "m.sock"


def _problem_lines(tmp_path, **overrides) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(_options(tmp_path, **overrides))
    assert isinstance(info.value, exceptions.OptionsError)
    assert str(info.value).splitlines() == info.value.problems
    return info.value.problems


BAD = [
    ("phonehome_max_leaves", -5, "must be at least 1, not -5"),
    ("phonehome_max_depth", 0, "must be at least 1, not 0"),
    ("phonehome_max_body", "abc", "not a whole number: 'abc'"),
    ("phonehome_max_body", True, "not a whole number"),
    ("phonehome_audit_process", "maybe", "'maybe' is not true or false"),
    ("phonehome_reveal", "yes", "not true or false"),
    ("phonehome_formats", "xml", "unknown report format xml"),
    ("phonehome_formats", "", "unknown report format (empty)"),
    ("phonehome_scope", "~d (", ""),
    ("phonehome_enforce", "nuke", "'nuke' is not one of observe, redact, block"),
    ("phonehome_time_scale", "0", "must be above 0"),
    ("phonehome_time_scale", "nan", "must be above 0"),
    ("phonehome_time_scale", "fast", "not a number"),
    ("phonehome_identity", "/nonexistent/me.yaml", "cannot read identity file"),
    ("phonehome_rules", ["/nonexistent/pack.yaml"], "no such file or folder"),
    ("phonehome_enforce_file", "/nonexistent/enforce.yaml", "enforce.yaml"),
    ("phonehome_store", "/proc/phonehome-no-such-dir/audit.sqlite", "cannot write in"),
    ("phonehome_report_dir", "/proc/phonehome-no-such-dir", "cannot write in"),
]


@pytest.mark.parametrize(("option", "value", "reason"), BAD,
                         ids=[f"{o}={v}" for o, v, _ in BAD])
def test_each_bad_value_is_one_line_naming_its_option(tmp_path, option, value, reason):
    lines = _problem_lines(tmp_path, **{option: value})
    assert len(lines) == 1
    assert lines[0].startswith(f"{option}: ")
    assert reason in lines[0]


def test_a_store_that_is_a_folder_or_under_a_file(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert _problem_lines(tmp_path, phonehome_store=str(tmp_path)) == [
        f"phonehome_store: {str(tmp_path)!r} is a folder, not a file"]
    assert _problem_lines(tmp_path, phonehome_store=str(a_file / "audit.sqlite")) == [
        f"phonehome_store: {str(a_file)!r} is not a folder"]


def test_an_existing_store_is_checked_but_left_as_it_is(tmp_path):
    store = tmp_path / "audit.sqlite"
    store.write_bytes(b"kept")
    config = parse_config(_options(tmp_path, phonehome_store=str(store)))
    assert config.store_path == store
    assert store.read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".phonehome-probe")] == []


def test_several_bad_values_give_several_lines(tmp_path):
    broken = tmp_path / "pack.yaml"
    broken.write_text("pack: broken\nvendor: X\nrules:\n  - id: a\n    titel: typo\n")
    lines = _problem_lines(tmp_path, phonehome_max_depth=0, phonehome_max_body="12kb",
                           phonehome_enforce="nuke", phonehome_rules=[str(broken)],
                           phonehome_identity=str(tmp_path / "none.yaml"))
    assert [line.split(":", 1)[0] for line in lines] == [
        "phonehome_max_body", "phonehome_max_depth", "phonehome_enforce", "phonehome_rules",
        "phonehome_identity"]
    assert all("\n" not in line for line in lines)


def test_a_multi_error_enforce_file_is_still_one_line(tmp_path):
    enforce = tmp_path / "enforce.yaml"
    enforce.write_text("block_status: 42\nmin_severity: huge\nbogus: 1\n")
    lines = _problem_lines(tmp_path, phonehome_enforce_file=str(enforce))
    assert len(lines) == 1 and lines[0].startswith("phonehome_enforce_file: ")
    assert "more error" in lines[0]


def test_command_line_text_for_int_and_bool_options():
    assert option_problem("phonehome_max_body", "12") is None
    assert option_problem("phonehome_max_body", "12kb") == "not a whole number: '12kb'"
    assert option_problem("phonehome_quiet", None) is None  # `--set phonehome_quiet`
    assert option_problem("phonehome_quiet", "false") is None
    assert option_problem("phonehome_quiet", "maybe") == "'maybe' is not true or false"
    assert option_problem("phonehome_scope", "anything") is None


def test_option_view_overrides_only_what_it_holds(tmp_path):
    options = _options(tmp_path)
    view = OptionView(options, {"phonehome_max_body": "abc"})
    assert view.phonehome_max_body == "abc"
    assert view.phonehome_max_depth == options.phonehome_max_depth
    assert _problem_lines(tmp_path, phonehome_max_body=view.phonehome_max_body) == [
        "phonehome_max_body: not a whole number: 'abc'"]


def test_the_app_the_sensor_and_a_shared_store(tmp_path):
    config = parse_config(_options(tmp_path, phonehome_app="teams", phonehome_sensor="s7"))
    assert config.settings.app == "teams" and config.sensor == "s7"
    with pytest.raises(ConfigError) as bad:
        parse_config(_options(
            tmp_path, phonehome_app="zoom",
            phonehome_store="postgresql://u:hunter2@127.0.0.1:1/nowhere"))
    lines = str(bad.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["phonehome_app", "phonehome_store"]
    assert "zoom" in lines[0]
    assert "hunter2" not in str(bad.value) and "u:***@127.0.0.1:1/nowhere" in lines[1]
