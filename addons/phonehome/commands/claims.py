"""`phonehome claims test [FILE…]`: validate claims files and run their inline tests."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..analysis.claims import ClaimsError, load_claims, run_claim_tests
from ..bundled import builtin_rules_dir
from ..exitcodes import ExitCode
from .actions import action_parsers, print_test_result, print_test_totals

__all__ = ["register", "test"]


def test(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    paths = [Path(p) for p in args.paths] or sorted(
        (builtin_rules_dir() / "claims").glob("*.yaml"))
    failed = passed = 0
    for path in paths:
        try:
            claims = load_claims(path)
        except ClaimsError as e:
            for error in e.errors:
                console.print(error, markup=False, highlight=False)
            return ExitCode.USAGE
        for claim, failures in run_claim_tests(claims):
            if not claim.tests:
                failures = [f"{claim.id}: the claim has no tests"]
            if print_test_result(console, claim.id, len(claim.tests), failures):
                passed += 1
            else:
                failed += 1
    return print_test_totals(console, passed, failed)


def register(subparsers: Any) -> None:
    sub = action_parsers(
        subparsers, "claims", "test claims files",
        "Work with vendor claims files (the bundled ones unless FILEs are given).")
    action = sub.add_parser("test", help="validate claims files and run their inline tests",
                            description="validate claims files and run their inline tests")
    action.add_argument("paths", nargs="*", metavar="FILE",
                        help="claims files (default: every bundled rules/claims/*.yaml)")
    action.set_defaults(func=test)
