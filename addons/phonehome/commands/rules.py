"""`phonehome rules check|test|list`: validate packs, run their embedded tests, list rules."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..exitcodes import ExitCode
from ..rules import RuleLoadError, RuleSet, load_rules, run_rule_tests
from .actions import action_parsers, print_test_result, print_test_totals

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


def _with_rules(body: Callable[[RuleSet, Console], int]
                ) -> Callable[[argparse.Namespace, Console | None], int]:
    """An action over the loaded packs; a pack that does not load exits with USAGE."""

    def action(args: argparse.Namespace, console: Console | None = None) -> int:
        console = console or Console()
        ruleset = _load(args, console)
        return ExitCode.USAGE if ruleset is None else body(ruleset, console)

    return action


@_with_rules
def check(ruleset: RuleSet, console: Console) -> int:
    console.print(f"ok: {len(ruleset.packs)} packs, {len(ruleset.rules)} rules",
                  highlight=False)
    return ExitCode.OK


@_with_rules
def test(ruleset: RuleSet, console: Console) -> int:
    results = run_rule_tests(ruleset)
    failed = 0
    for result in results:
        if not print_test_result(console, result.id, result.count, result.messages):
            failed += 1
    return print_test_totals(console, len(results) - failed, failed)


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


@_with_rules
def list_rules(ruleset: RuleSet, console: Console) -> int:
    console.print(rules_table(ruleset))
    return ExitCode.OK


def register(subparsers: Any) -> None:
    sub = action_parsers(subparsers, "rules", "check, test and list rule packs",
                         "Work with rule packs (the bundled ones plus any PATH given).")
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
