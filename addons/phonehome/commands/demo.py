"""`phonehome demo`: the main job in one command, offline.

Starts the local vendor stand-in and a real mitmdump with the phonehome addon
on 127.0.0.1, drives the simulated meeting-app session through it, stops
everything, prints the audit and says where the reports are.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..exitcodes import ExitCode
from ..terms import ACTIONS
from .output import add_details_argument, consoles

__all__ = ["register", "run_demo"]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="audit a simulated Webex-like session through a real mitmdump (offline)",
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("reports"), metavar="DIR",
                        help="where to write the reports (default: reports/)")
    parser.add_argument("--seed", type=int, default=1, help="seed for the synthetic identity")
    parser.add_argument("--speed", type=float, default=100.0,
                        help="time compression of the ~25-minute session (default: 100×)")
    parser.add_argument("--leaks", default="all",
                        help="leaks to plant: all, none, or a comma list (see `simulate -h`)")
    parser.add_argument("--format", default="all", metavar="LIST",
                        help="report formats (default: all)")
    parser.add_argument("--enforce", choices=ACTIONS, default="observe",
                        help="enforce mode for the proxy (default: observe)")
    add_details_argument(parser)
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the temporary folder with the capture and server record")
    parser.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from ..report.terminal import format_summary
    from ..report.write import write_atomic
    from ..simulate.harness import HarnessError, run_through_proxy
    from ..simulate.leaks import parse_leaks

    console, errors = consoles()
    try:
        leaks = parse_leaks(args.leaks)
    except ValueError as e:
        errors.print(f"phonehome demo: {e}", markup=False, highlight=False)
        return ExitCode.USAGE
    if not args.speed > 0:
        errors.print("phonehome demo: --speed must be greater than 0", markup=False)
        return ExitCode.USAGE
    out_dir: Path = args.output
    if out_dir.exists() and not out_dir.is_dir():
        errors.print(f"phonehome demo: {out_dir}: not a folder", markup=False, highlight=False)
        return ExitCode.USAGE
    workdir = Path(tempfile.mkdtemp(prefix="phonehome-demo-"))
    try:
        console.print("[bold]phonehome demo[/]: starting the vendor stand-in and mitmdump "
                      "on 127.0.0.1 …")
        options = {"phonehome_formats": args.format}
        if args.enforce != "observe":
            options["phonehome_enforce"] = args.enforce
        try:
            run = run_through_proxy(
                workdir, out_dir, seed=args.seed, speed=args.speed, leaks=leaks,
                options=options,
                on_proxy_ready=lambda url: console.print(
                    f"Simulating a ~25-minute meeting-app session at {args.speed:g}× "
                    f"through {url} …"),
            )
        except HarnessError as e:
            errors.print(f"phonehome demo: {e}", markup=False, highlight=False)
            return ExitCode.FAILED
        report_path = out_dir / "audit.json"
        if not report_path.is_file():
            errors.print(f"phonehome demo: mitmdump wrote no report:\n{run.proxy_log[-2000:]}",
                         markup=False, highlight=False)
            return ExitCode.FAILED
        report = json.loads(report_path.read_text())
        console.print(format_summary(report, details=args.details))
        for name in ("identity.yaml", "ground_truth.json"):
            if (workdir / name).is_file():
                write_atomic(out_dir / name, (workdir / name).read_text())
        written = sorted(p.name for p in out_dir.iterdir() if p.name.startswith("audit"))
        console.print(f"\n{run.simulation.requests} requests simulated. "
                      f"Reports in [bold]{out_dir}/[/]: " + ", ".join(written))
        console.print(f"Open [bold]{out_dir / 'audit.html'}[/] in a browser for the full audit.")
        if args.keep_workdir:
            console.print(f"Work folder kept: {workdir}")
        return ExitCode.OK
    finally:
        if not args.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
