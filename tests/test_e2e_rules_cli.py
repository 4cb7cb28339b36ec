"""`phonehome rules check|test|list`, through the real command line."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from builders import ROOT
from phonehome.commands import rules as rules_command

BROKEN = """\
pack: broken
vendor: B
rules:
  - id: b1
    title: t
    purpose: nonsense
    match: {filter: "~u /x"}
  - id: b2
    title: t
    purpose: telemetry
    match: {filter: "~bogus"}
    event: $.name[
"""

FAILING_TEST = """\
pack: failing
vendor: F
rules:
  - id: f1
    title: t
    purpose: telemetry
    match: {filter: '~u "/x"'}
    classify: [{trigger: setup}]
    tests:
      - request: {method: GET, url: "https://f.example.org/x"}
        expect: {match: true, trigger: error}
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "addons"), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "phonehome", "rules", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.e2e
def test_check_bundled_packs_is_clean() -> None:
    proc = run("check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rules" in proc.stdout


@pytest.mark.e2e
def test_check_prints_every_error_with_path_and_line(tmp_path: Path) -> None:
    pack = tmp_path / "broken.yaml"
    pack.write_text(BROKEN)
    proc = run("check", str(pack))
    assert proc.returncode == 2
    lines = [line for line in proc.stdout.splitlines() if line.startswith(str(pack))]
    assert [line.split(":")[1] for line in lines] == ["6", "11", "12"]
    assert "'purpose': 'nonsense'" in lines[0]
    assert "3 errors" in proc.stdout


@pytest.mark.e2e
def test_test_reports_pass_and_fail_lines(tmp_path: Path) -> None:
    pack = tmp_path / "failing.yaml"
    pack.write_text(FAILING_TEST)
    proc = run("test", str(pack))
    assert proc.returncode == 1
    assert "PASS webex-ca-diagnostic-events" in proc.stdout
    assert "FAIL f1" in proc.stdout
    assert "trigger 'setup', expected 'error'" in proc.stdout


@pytest.mark.e2e
def test_list_shows_a_table() -> None:
    proc = run("list")
    assert proc.returncode == 0
    assert "webex-ca-diagnostic-events" in proc.stdout and "tracker-sentry" in proc.stdout


def _args(paths: list[str], *, no_builtin: bool = True) -> argparse.Namespace:
    return argparse.Namespace(paths=paths, no_builtin=no_builtin)


def test_handlers_write_to_an_injected_console(tmp_path: Path) -> None:
    pack = tmp_path / "failing.yaml"
    pack.write_text(FAILING_TEST)
    console = Console(record=True, width=200)
    assert rules_command.test(_args([str(pack)]), console) == 1
    assert rules_command.check(_args([str(pack)]), console) == 0
    text = console.export_text()
    assert "FAIL f1" in text and "0 passed, 1 failed" in text and "ok: 1 packs, 1 rules" in text


def test_register_adds_the_three_actions() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    rules_command.register(sub)
    for action in ("check", "test", "list"):
        args = parser.parse_args(["rules", action, "a.yaml", "--no-builtin"])
        assert args.paths == ["a.yaml"] and args.no_builtin and callable(args.func)
