"""`phonehome report STORE`: rebuild every report format from a findings store.

STORE is a SQLite file or a shared postgresql:// store, narrowed by sensor and time.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..exitcodes import ExitCode
from .output import add_details_argument, consoles, print_outcome
from .selection import add_selection_arguments, selection_from_args, store_target

__all__ = ["register", "run_report"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report", help="rebuild reports from a findings store (even one left by a killed run)",
    )
    parser.add_argument("store", type=store_target, metavar="STORE",
                        help="a store file, or a postgresql:// URL")
    add_selection_arguments(parser)
    parser.add_argument("-o", "--output", type=Path, default=Path("reports"), metavar="DIR")
    parser.add_argument("--format", default="json,md,html,csv", metavar="LIST")
    parser.add_argument("--app", metavar="NAME",
                        help="the audited app (a first-party pack id, or auto); "
                             "default: the one the audit was run with")
    add_details_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true")
    parser.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from ..audit.session import report_from_store
    from ..audit.store import StoreError
    from ..report.write import parse_formats, write_report

    console, errors = consoles()
    try:
        formats = parse_formats(args.format)
        report = report_from_store(args.store, app=args.app,
                                   selection=selection_from_args(args))
    except (ValueError, StoreError) as e:
        errors.print(f"phonehome report: {e}", markup=False, highlight=False)
        return ExitCode.USAGE
    written = write_report(report, args.output, formats)
    print_outcome(console, report, args, written)
    return ExitCode.OK
