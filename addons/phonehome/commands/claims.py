"""`phonehome claims test [FILE…]`: validate claims files and run their inline tests."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ..analysis.claims import ClaimsError, load_claims, run_claim_tests
from ..bundled import builtin_rules_dir
from ..exitcodes import ExitCode

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
            if failures:
                failed += 1
                console.print(f"FAIL {claim.id}", style="red", highlight=False)
                for message in failures:
                    console.print(f"  {message}", markup=False, highlight=False)
            else:
                passed += 1
                console.print(f"PASS {claim.id} ({len(claim.tests)} tests)", highlight=False)
    console.print(f"{passed} passed, {failed} failed", highlight=False)
    return ExitCode.FAILED if failed else ExitCode.OK


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "claims", help="test claims files",
        description="Work with vendor claims files (the bundled ones unless FILEs are given).")
    sub = parser.add_subparsers(dest="claims_command", metavar="ACTION",
                                parser_class=type(parser))
    sub.required = True
    action = sub.add_parser("test", help="validate claims files and run their inline tests",
                            description="validate claims files and run their inline tests")
    action.add_argument("paths", nargs="*", metavar="FILE",
                        help="claims files (default: every bundled rules/claims/*.yaml)")
    action.set_defaults(func=test)
