"""`phonehome mark LABEL [--socket PATH]`: mark a moment in a running audit.

Reaches the addon of a running mitmdump/mitmweb over a local Unix socket;
nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ..analysis.timeline.channel import DEFAULT_SOCKET, MarkerChannelError, send_marker
from ..analysis.timeline.markers import MARKER_LABELS
from ..exitcodes import ExitCode

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `mark` subcommand; its handler is `args.func(args) -> int`."""
    parser = subparsers.add_parser(
        "mark",
        help="mark a moment (meeting_join, muted, opt_out, …) in a running audit",
        description=(
            "Send a marker to the phonehome addon of a running mitmdump or mitmweb. "
            f"Phase labels: {', '.join(MARKER_LABELS)}. Any other label of 1-64 "
            "characters a-z 0-9 _ . : - is stored and shown."
        ),
    )
    parser.add_argument("label", help="the marker label, e.g. meeting_join")
    parser.add_argument(
        "--socket",
        type=Path,
        default=DEFAULT_SOCKET,
        help=f"the addon's marker socket (default: {DEFAULT_SOCKET})",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        send_marker(args.socket, args.label)
    except (ValueError, MarkerChannelError) as e:
        print(f"phonehome mark: {e}", file=err)
        return ExitCode.USAGE
    print(f"marked {args.label}", file=out)
    return ExitCode.OK
