"""`phonehome store migrate DSN`: create or upgrade a shared store's schema (as its owner)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console

from ..exitcodes import ExitCode

__all__ = ["register", "run_store"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "store", help="manage a shared (postgresql://) store",
        description="Create or upgrade a shared store's schema. Sensors can then run with a "
        "role that may only insert and select.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    migrate = actions.add_parser("migrate", help="create or upgrade the schema")
    migrate.add_argument("dsn", metavar="postgresql://…")
    parser.set_defaults(func=run_store)


def run_store(args: argparse.Namespace) -> int:
    from ..audit.pg_schema import SCHEMA_VERSION, check_shared_store, mask_dsn
    from ..audit.store import StoreError, is_postgres_url

    console = Console(soft_wrap=True, markup=False, highlight=False)
    errors = Console(file=sys.stderr, soft_wrap=True, markup=False, highlight=False)
    if not is_postgres_url(args.dsn):
        errors.print("phonehome store: give a postgresql:// URL (a file store needs no setup)")
        return ExitCode.USAGE
    try:
        check_shared_store(args.dsn)
    except StoreError as e:
        errors.print(f"phonehome store: {e}")
        return ExitCode.USAGE
    console.print(f"{mask_dsn(args.dsn)}: schema version {SCHEMA_VERSION}")
    return ExitCode.OK
