"""What the subcommands with actions share: their ACTION parsers and the lines that
report inline tests (`rules test`, `claims test`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console

from ..exitcodes import ExitCode

__all__ = ["action_parsers", "print_test_result", "print_test_totals"]


def action_parsers(subparsers: Any, name: str, help: str, description: str) -> Any:  # noqa: A002
    """The subcommand `name`, whose ACTION (stored as `{name}_command`) is required."""
    parser = subparsers.add_parser(name, help=help, description=description)
    sub = parser.add_subparsers(dest=f"{name}_command", metavar="ACTION",
                                parser_class=type(parser))
    sub.required = True
    return sub


def print_test_result(console: Console, name: str, count: int,
                      failures: Sequence[str]) -> bool:
    """PASS with the number of tests, or FAIL and each failure; True when it passed."""
    if failures:
        console.print(f"FAIL {name}", style="red", highlight=False)
        for message in failures:
            console.print(f"  {message}", markup=False, highlight=False)
        return False
    console.print(f"PASS {name} ({count} tests)", highlight=False)
    return True


def print_test_totals(console: Console, passed: int, failed: int) -> int:
    console.print(f"{passed} passed, {failed} failed", highlight=False)
    return ExitCode.FAILED if failed else ExitCode.OK
