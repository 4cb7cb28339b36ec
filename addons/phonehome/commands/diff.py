"""`phonehome diff OLD.json NEW.json [-o FILE.md]`: what changed between two audits.

`phonehome diff STORE --old-… --new-…` compares two sensors or time windows of one store.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
from rich.console import Console

from ..exitcodes import ExitCode
from ..report.diff import diff_reports, format_diff_markdown, format_diff_table
from ..report.write import write_atomic
from .selection import add_selection_arguments, selection_from_args, store_target

__all__ = ["register", "run_diff", "load_report", "ReportInputError"]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "report" / "report.schema.json"


class ReportInputError(ValueError):
    """A report file that cannot be read or is not a `phonehome.report/1` report."""


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def load_report(path: Path) -> Mapping[str, Any]:
    """Read and validate an audit.json. Raises ReportInputError with a one-line reason."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ReportInputError(f"cannot read {path}: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise ReportInputError(f"cannot read {path}: not UTF-8 text") from e
    except json.JSONDecodeError as e:
        raise ReportInputError(f"{path}:{e.lineno}: not JSON: {e.msg}") from e
    if not isinstance(data, dict) or data.get("schema") != "phonehome.report/1":
        raise ReportInputError(f"{path}: not a phonehome report (schema phonehome.report/1)")
    error = jsonschema.exceptions.best_match(_validator().iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = " ".join(error.message.split())
        if len(message) > 160:
            message = message[:157] + "..."
        raise ReportInputError(f"{path}: invalid report at {where}: {message}")
    return data


def _inputs(args: argparse.Namespace) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """Two report files, or two selections of one store."""
    if len(args.sources) == 2:
        return load_report(Path(args.sources[0])), load_report(Path(args.sources[1]))
    if len(args.sources) != 1:
        raise ReportInputError("give two audit.json files, or one store")
    from ..audit.session import report_from_store
    from ..audit.store import StoreError

    old_side, new_side = selection_from_args(args, "old"), selection_from_args(args, "new")
    if old_side is None or new_side is None:
        raise ReportInputError("with one store, say what to compare: --old-sensor/--old-since/"
                               "--old-until and --new-sensor/--new-since/--new-until")
    target = store_target(args.sources[0])
    try:
        # a diff reads flows' events, findings and identifiers, never their bodies
        return (report_from_store(target, selection=old_side).to_dict(decoded=False),
                report_from_store(target, selection=new_side).to_dict(decoded=False))
    except StoreError as e:
        raise ReportInputError(str(e)) from e


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diff",
        help="compare two audit.json reports: new and gone endpoints, events, categories, "
        "findings, and the identifiers found in both",
    )
    parser.add_argument("sources", nargs="+", metavar="OLD.json NEW.json | STORE",
                        help="two audit.json files, or one store with --old-… and --new-…")
    add_selection_arguments(parser, "old")
    add_selection_arguments(parser, "new")
    parser.add_argument(
        "-o", "--output", type=Path, default=None, metavar="FILE.md",
        help="also write the diff as Markdown to this file",
    )
    parser.set_defaults(func=run_diff)


def run_diff(
    args: argparse.Namespace, console: Console | None = None, errors: Console | None = None
) -> int:
    console = console or Console(soft_wrap=True)
    errors = errors or Console(file=sys.stderr, soft_wrap=True)
    try:
        old, new = _inputs(args)
    except ReportInputError as e:
        errors.print(f"phonehome diff: {e}", markup=False, highlight=False)
        return ExitCode.USAGE
    diff = diff_reports(old, new)
    console.print(format_diff_table(diff))
    if args.output is not None:
        try:
            write_atomic(args.output, format_diff_markdown(diff))
        except OSError as e:
            errors.print(
                f"phonehome diff: cannot write {args.output}: {e.strerror or e}",
                markup=False, highlight=False,
            )
            return ExitCode.USAGE
        console.print(f"Markdown: {args.output}", markup=False, highlight=False)
    return ExitCode.OK
