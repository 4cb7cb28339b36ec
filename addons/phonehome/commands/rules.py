"""`phonehome rules check|test|list`: validate packs, run their embedded tests, list rules."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..exitcodes import ExitCode
from ..rules import RuleLoadError, RuleSet, load_rules, run_rule_tests

__all__ = ["register", "check", "test", "list_rules", "rules_table"]


def _load(args: argparse.Namespace, console: Console) -> RuleSet | None:
    paths = [Path(p) for p in args.paths]
    try:
        return load_rules(paths, include_builtin=not args.no_builtin)
    except RuleLoadError as e:
        for error in e.errors:
            console.print(str(error), markup=False, highlight=False)
        n = len(e.errors)
        console.print(f"{n} error{'s' if n != 1 else ''}", style="bold red", highlight=False)
        return None


def check(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    ruleset = _load(args, console)
    if ruleset is None:
        return ExitCode.USAGE
    console.print(f"ok: {len(ruleset.packs)} packs, {len(ruleset.rules)} rules",
                  highlight=False)
    return ExitCode.OK


def test(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    ruleset = _load(args, console)
    if ruleset is None:
        return ExitCode.USAGE
    results = run_rule_tests(ruleset)
    failed = 0
    for result in results:
        if result.passed:
            console.print(f"PASS {result.id} ({result.count} tests)", highlight=False)
        else:
            failed += 1
            console.print(f"FAIL {result.id}", style="red", highlight=False)
            for message in result.messages:
                console.print(f"  {message}", markup=False, highlight=False)
    console.print(f"{len(results) - failed} passed, {failed} failed", highlight=False)
    return ExitCode.FAILED if failed else ExitCode.OK


def rules_table(ruleset: RuleSet) -> Table:
    table = Table(title="phonehome rules")
    for column in ("pack", "id", "purpose", "triggers", "match", "tests"):
        table.add_column(column)
    for rule in ruleset.rules:
        triggers = ", ".join(dict.fromkeys(c.trigger for c in rule.classify)) or "-"
        match = " ".join(filter(None, [
            ",".join(rule.domains) if rule.domains else "", rule.filter_text or ""]))
        table.add_row(rule.pack, rule.id, rule.purpose, triggers, match, str(len(rule.tests)))
    return table


def list_rules(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    ruleset = _load(args, console)
    if ruleset is None:
        return ExitCode.USAGE
    console.print(rules_table(ruleset))
    return ExitCode.OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rules", help="check, test and list rule packs",
        description="Work with rule packs (the bundled ones plus any PATH given).")
    sub = parser.add_subparsers(dest="rules_command", metavar="ACTION",
                                parser_class=type(parser))
    sub.required = True
    actions: Sequence[tuple[str, Any, str]] = (
        ("check", check, "validate packs; print every error as path:line:col: message"),
        ("test", test, "run every rule's embedded tests"),
        ("list", list_rules, "list the rules as a table"),
    )
    for name, handler, help_text in actions:
        action = sub.add_parser(name, help=help_text, description=help_text)
        action.add_argument("paths", nargs="*", metavar="PATH",
                            help="rule pack files or folders (in addition to the bundled ones)")
        action.add_argument("--no-builtin", action="store_true",
                            help="do not load the bundled packs")
        action.set_defaults(func=handler)
