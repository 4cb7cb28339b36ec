"""`phonehome audit CAPTURE…`: the offline audit of saved captures."""

from __future__ import annotations

import argparse
import io
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from ..exitcodes import ExitCode
from ..model import SEVERITIES, severity_rank
from .output import add_details_argument, consoles, print_outcome
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
    parser.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                        help="audit on N worker processes; 1: in this process (default: "
                             "one per core for captures over 8 MB, else 1)")
    add_details_argument(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    parser.set_defaults(func=run_audit)


def _fail(console: Console, message: str) -> int:
    console.print(f"phonehome audit: {message}", markup=False, highlight=False)
    return ExitCode.USAGE


# Below this much capture, starting workers costs more than they save.
PARALLEL_MIN_BYTES = 8 << 20


def default_jobs(captures: list[Path]) -> int:
    """One worker per core this process may use, for captures big enough to pay for them."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    total = sum(path.stat().st_size for path in captures)
    return max(1, min(cores, 64)) if total >= PARALLEL_MIN_BYTES else 1


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
    from ..audit.parallel import Done, InlinePool, Job, WorkerDied, WorkerPool, audited
    from ..audit.pipeline import Auditor, AuditSettings
    from ..audit.session import AuditSession
    from ..audit.store import StoreError, store_key, store_label
    from ..capture.files import (
        CaptureError,
        CaptureProblem,
        Frame,
        check_capture,
        read_capture,
        read_capture_frames,
    )
    from ..capture.mitm_reader import read_flow
    from ..capture.observe import observe_saved_flow
    from ..report.write import parse_formats, write_report

    console, errors = consoles(out, err)
    _stop_cleanly_on_signals()
    try:
        formats = parse_formats(args.format)
    except ValueError as e:
        return _fail(errors, str(e))
    if not args.time_scale > 0:
        return _fail(errors, "--time-scale must be greater than 0")
    if args.jobs is not None and not 1 <= args.jobs <= 64:
        return _fail(errors, "--jobs must be between 1 and 64")
    for path in args.captures:
        try:
            check_capture(path)
        except CaptureError as e:
            return _fail(errors, str(e))
    jobs = args.jobs or default_jobs(args.captures)
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
    # Workers read the flows themselves unless times are scaled (scaling starts
    # from the first flow, so it happens here, in order).
    frames = jobs > 1 and args.time_scale == 1.0
    noted: list[str] = []
    stopped = False

    def jobs_of(path: Path) -> Iterator[Job]:
        """The capture's flows as jobs; problems found while reading travel with
        them, so every problem is reported in capture order."""
        source = path.name
        read = read_capture_frames if frames else read_capture
        for item, position in read(path, lambda problem: noted.append(problem.message)):
            if stopped:
                return
            if isinstance(item, Frame):
                yield Job(source, position, frame=item)
            else:
                observations, problem = observe_saved_flow(item, source)
                yield Job(source, position, observations=tuple(observations),
                          problem=problem)
            while noted:
                yield Job(source, position, problem=noted.pop(0))
        while noted:
            yield Job(source, path.stat().st_size, problem=noted.pop(0))

    def in_order(job: Job) -> Done:
        """A flow workers leave to this process: read here, in capture order."""
        assert job.frame is not None
        data = job.frame.data
        try:
            flow = read_flow(io.BytesIO(b"%d:%s" % (len(data) - 1, data)))
        except Exception as e:  # noqa: BLE001 - the file breaks here
            return Done(problem=job.frame.broken(str(e)), broken=True)
        observations, problem = observe_saved_flow(flow, job.source)
        return Done(audited(session.auditor, observations), problem)

    def store(path: Path, results: list[tuple[Job, Done]], done_bytes: int) -> bool:
        """Store a chunk's records and problems in order; False once the file breaks."""
        for job, done in results:
            if done.in_order:
                done = in_order(job)
            for flow in done.records:
                session.submit(flow)
            if done.problem:
                problems.append(CaptureProblem(path, done.problem))
            if done.broken:
                break
        progress.update(task, completed=done_bytes + results[-1][0].position,
                        flows=session.flows)
        return not done.broken

    with progress:
        task = progress.add_task("auditing", total=total, flows=0)
        pool = WorkerPool(settings, jobs) if jobs > 1 else InlinePool(session.auditor)
        try:
            done_bytes = 0
            for path in args.captures:
                progress.update(task, description=path.name)
                stopped = False
                for results in pool.run(jobs_of(path)):
                    if not store(path, results, done_bytes):
                        stopped = True
                        break
                done_bytes += path.stat().st_size
                progress.update(task, completed=done_bytes)
        except CaptureError as e:
            session.close()
            return _fail(errors, str(e))
        except WorkerDied as e:
            session.close()  # what was audited before stays in the store
            errors.print(f"phonehome audit: {e}; the flows audited before it are in "
                         f"{store_label(store_path)} (`phonehome report` reports on them)",
                         markup=False, highlight=False)
            return ExitCode.FAILED
        finally:
            pool.close()

    session.note_inputs(capture_errors=[str(p) for p in problems])
    report = session.finish()
    try:
        written = write_report(report, args.output, formats)
    except OSError as e:
        return _fail(errors, f"{args.output}: cannot write reports ({e.strerror or e})")
    for problem in problems:
        errors.print(f"phonehome audit: warning: {problem}", markup=False, highlight=False)
    print_outcome(console, report, args, written)
    if args.fail_on:
        worst = highest_severity(report)
        if worst is not None and severity_rank(worst) >= severity_rank(args.fail_on):
            errors.print(f"phonehome audit: --fail-on {args.fail_on}: found {worst}",
                         markup=False, highlight=False)
            return ExitCode.FAIL_ON
    return ExitCode.OK
