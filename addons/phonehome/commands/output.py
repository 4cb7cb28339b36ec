"""What the subcommands that print an audit share: their consoles and `--details`."""

from __future__ import annotations

import argparse
import sys
from typing import IO

from rich.console import Console

__all__ = ["add_details_argument", "consoles"]


def add_details_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--details", action="store_true",
                        help="print every table, not the one-screen summary")


def consoles(out: IO[str] | None = None,
             err: IO[str] | None = None) -> tuple[Console, Console]:
    """The report's console and the errors' console (stdout and stderr by default)."""
    return (Console(file=out or sys.stdout, soft_wrap=True),
            Console(file=err or sys.stderr, soft_wrap=True))
