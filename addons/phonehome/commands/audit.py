"""`phonehome audit CAPTURE…`: the offline audit of saved captures."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exitcodes import ExitCode
from ..model import SEVERITIES, Observation, severity_rank
from .selection import store_target

__all__ = ["register", "run_audit"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "audit", help="audit saved captures (.mitm flow files, .har)",
        description="Audit saved captures with the same pipeline as the live addon.",
    )
    parser.add_argument("captures", nargs="+", type=Path, metavar="CAPTURE")
    parser.add_argument("--rules", action="append", type=Path, default=[], metavar="PATH",
                        help="extra rule pack file or folder (repeatable)")
    parser.add_argument("--no-builtin-rules", action="store_true",
                        help="use only the packs given with --rules")
    parser.add_argument("--identity", type=Path, metavar="FILE",
                        help="identity file with your own values to look for")
    parser.add_argument("-o", "--output", type=Path, default=Path("reports"), metavar="DIR",
                        help="where to write the reports (default: reports/)")
    parser.add_argument("--format", default="json,md,html,csv", metavar="LIST",
                        help="report formats: json,md,html,csv or all (default: all four)")
    parser.add_argument("--app", default="auto", metavar="NAME",
                        help="the audited app, whose vendor is the first party and whose claims "
                             "are checked: webex, teams (a first-party pack id) or auto, the "
                             "vendor whose domains carry most of the telemetry (default)")
    parser.add_argument("--fail-on", choices=SEVERITIES, metavar="SEVERITY",
                        help="exit 3 when a finding at or above this severity exists")
    parser.add_argument("--reveal", action="store_true",
                        help="show raw values in reports instead of redacted evidence")
    parser.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                        help="stretch timestamps by X (for time-compressed simulations)")
    parser.add_argument("--store", type=store_target, metavar="STORE",
                        help="findings store: a file (default: DIR/audit.sqlite) or a "
                        "postgresql:// URL shared by many sensors")
    parser.add_argument("--sensor", metavar="NAME",
                        help="this import's sensor name in a shared store (default: host name)")
    parser.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                        help="audit on N worker processes (for large captures)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run_audit)


def _fail(console: Console, message: str) -> int:
    console.print(f"phonehome audit: {message}", markup=False, highlight=False)
    return ExitCode.USAGE


def _observations(flow: Any, path: Path, problems: list[Any]) -> list[Observation]:
    """The flow's observations; a flow that cannot be read is a problem, not the end."""
    from ..capture.files import CaptureProblem
    from ..capture.observe import observations_from_flow

    try:
        return list(observations_from_flow(flow, source=path.name))
    except Exception as e:  # noqa: BLE001 - one unreadable flow must not stop the audit
        flow_id = getattr(flow, "id", "?")
        problems.append(CaptureProblem(path, f"flow {flow_id} skipped: "
                                             f"{type(e).__name__}: {e}"[:300]))
        return []


def _exit_on_signal(signum: int, frame: Any) -> None:
    # Unwinds like Ctrl-C does, so a report being written is removed, never left half-done.
    raise SystemExit(128 + signum)


def _stop_cleanly_on_signals() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _exit_on_signal)


def run_audit(args: argparse.Namespace, *, out: Any = None, err: Any = None) -> int:
    # Imported here so `phonehome --help` and the other commands start fast.
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn

    from ..analysis.session import highest_severity
    from ..audit.parallel import audit_in_parallel
    from ..audit.pipeline import Auditor, AuditSettings
    from ..audit.session import AuditSession
    from ..audit.store import StoreError, store_key, store_label
    from ..capture.files import CaptureError, CaptureProblem, check_capture, read_capture
    from ..report.terminal import format_summary
    from ..report.write import parse_formats, write_report

    console = Console(file=out or sys.stdout, soft_wrap=True)
    errors = Console(file=err or sys.stderr, soft_wrap=True)
    _stop_cleanly_on_signals()
    try:
        formats = parse_formats(args.format)
    except ValueError as e:
        return _fail(errors, str(e))
    if not args.time_scale > 0:
        return _fail(errors, "--time-scale must be greater than 0")
    if not 1 <= args.jobs <= 64:
        return _fail(errors, "--jobs must be between 1 and 64")
    for path in args.captures:
        try:
            check_capture(path)
        except CaptureError as e:
            return _fail(errors, str(e))
    store_path = args.store or args.output / "audit.sqlite"
    try:
        key = store_key(store_path)
    except (OSError, StoreError) as e:
        return _fail(errors, f"{store_label(store_path)}: cannot keep the fingerprint key "
                             f"({getattr(e, 'strerror', None) or e})")
    settings = AuditSettings(
        rule_paths=tuple(args.rules),
        include_builtin_rules=not args.no_builtin_rules,
        identity_path=args.identity,
        reveal=args.reveal,
        app=args.app,
        fingerprint_key=key,
    )
    try:
        auditor = Auditor(settings)
    except Exception as e:  # rules and identity errors carry path:line
        return _fail(errors, str(e))

    problems: list[CaptureProblem] = []
    try:
        session = AuditSession(
            settings, store_path, auditor=auditor, time_scale=args.time_scale,
            inputs={"captures": [str(p) for p in args.captures]},
            sensor=args.sensor, spool_dir=args.output,
        )
    except OSError as e:
        return _fail(errors, f"{store_label(store_path)}: cannot create the store "
                             f"({e.strerror or e})")
    except StoreError as e:
        return _fail(errors, str(e))

    total = sum(p.stat().st_size for p in args.captures)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
        TextColumn("{task.fields[flows]} flows"), TimeElapsedColumn(),
        console=errors, disable=args.quiet, transient=False,
    )
    def observations() -> Iterator[Observation]:
        """Every observation of every capture, with the markers saved on its flow
        recorded and its time scaled, advancing the progress bar."""
        done_bytes = 0
        for path in args.captures:
            progress.update(task, description=path.name)
            # A CaptureError (nothing in the file can be read) ends the audit: exit 2.
            for flow, position in read_capture(path, problems.append):
                for observation in _observations(flow, path, problems):
                    yield session.prepare(observation)
                progress.update(task, completed=done_bytes + position,
                                flows=session.flows)
            done_bytes += path.stat().st_size
            progress.update(task, completed=done_bytes)

    with progress:
        task = progress.add_task("auditing", total=total, flows=0)
        if args.jobs > 1:
            records = audit_in_parallel(settings, observations(), args.jobs)
        else:
            records = (session.auditor.audit(o) for o in observations())
        try:
            for record in records:
                session.commit(record)
        except CaptureError as e:
            session.close()
            return _fail(errors, str(e))

    session.note_inputs(capture_errors=[str(p) for p in problems])
    report = session.finish()
    try:
        written = write_report(report, args.output, formats)
    except OSError as e:
        return _fail(errors, f"{args.output}: cannot write reports ({e.strerror or e})")
    for problem in problems:
        errors.print(f"phonehome audit: warning: {problem}", markup=False, highlight=False)
    if not args.quiet:
        console.print(format_summary(report))
    console.print(f"Reports: {', '.join(str(p) for p in written)}", markup=False,
                  highlight=False)
    if args.fail_on:
        worst = highest_severity(report)
        if worst is not None and severity_rank(worst) >= severity_rank(args.fail_on):
            errors.print(f"phonehome audit: --fail-on {args.fail_on}: found {worst}",
                         markup=False, highlight=False)
            return ExitCode.FAIL_ON
    return ExitCode.OK
