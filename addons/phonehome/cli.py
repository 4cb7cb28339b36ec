"""The `phonehome` command line. Each subcommand lives in `phonehome.commands.*`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .exitcodes import ExitCode

__all__ = ["main", "build_parser"]

COMMAND_MODULES = ("audit", "report", "rules", "diff", "mark", "simulate", "demo")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with ExitCode.USAGE and one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="phonehome",
        description="Audit what a desktop app sends home: capture, classify, detect, report.",
    )
    parser.add_argument("--version", action="version", version=f"phonehome {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"phonehome.commands.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("phonehome: interrupted", file=sys.stderr)
        return 130
