"""What the subcommands that print an audit share: their consoles and `--details`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from rich.console import Console

__all__ = ["add_details_argument", "consoles", "print_outcome"]


def add_details_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--details", action="store_true",
                        help="print every table, not the one-screen summary")


def consoles(out: IO[str] | None = None,
             err: IO[str] | None = None) -> tuple[Console, Console]:
    """The report's console and the errors' console (stdout and stderr by default)."""
    return (Console(file=out or sys.stdout, soft_wrap=True),
            Console(file=err or sys.stderr, soft_wrap=True))


def print_outcome(console: Console, report: Any, args: argparse.Namespace,
                  written: Sequence[Path]) -> None:
    """The reports written, alone with `--quiet`, else under the audit's summary."""
    from ..report.terminal import format_summary  # the report modules load only here

    if args.quiet:
        console.print(f"Reports: {', '.join(str(p) for p in written)}", markup=False,
                      highlight=False)
    else:
        console.print(format_summary(report, details=args.details, written=written))
