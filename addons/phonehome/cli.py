"""The `phonehome` command line. Each subcommand lives in `phonehome.commands.*`."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from . import __version__
from .exitcodes import ExitCode

__all__ = ["main", "build_parser"]

# name → one-line help. Only the chosen command's module is imported, so
# `phonehome mark` and `phonehome --help` start fast.
COMMANDS = {
    "demo": "audit a simulated Webex-like session through a real mitmdump (offline)",
    "audit": "audit saved captures (.mitm flow files, .har)",
    "report": "rebuild reports from a findings store (even one left by a killed run)",
    "diff": "what changed between two audits (audit.json files)",
    "rules": "check, test and list rule packs",
    "claims": "test vendor claims files",
    "mark": "mark a moment in a running live audit",
    "store": "manage a shared (postgresql://) store",
    "simulate": "run the meeting-app simulator through a proxy",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with ExitCode.USAGE and one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="phonehome",
        description="Audit what a desktop app sends home: capture, classify, detect, report.",
    )
    parser.add_argument("--version", action="version", version=f"phonehome {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        if name == chosen:
            importlib.import_module(f"phonehome.commands.{name}").register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("phonehome: interrupted", file=sys.stderr)
        return 130
