"""Where `phonehome audit` spends its time, stage by stage, in one process.

    python bench/profile_audit.py CAPTURE [--identity FILE] [--jobs N] [-- extra audit args]

Each stage function is wrapped with a wall-clock timer (no cProfile, whose
overhead distorts a per-flow loop) and the shares print as Markdown. With
--jobs above 1 the per-flow stages run in the workers and show as "wait".
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "addons"))

SPENT: dict[str, float] = defaultdict(float)
CALLS: dict[str, int] = defaultdict(int)
RSS: dict[str, float] = {}
"""Peak RSS (MiB) of this process and of its largest reaped child (a worker), when
the report phase starts: the audit phase's memory."""


def _mark_audit_phase_end(function: Any) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        RSS["main"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        RSS["worker"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        RSS["audit phase seconds"] = time.perf_counter() - START[0]
        return function(*args, **kwargs)
    return wrapper


START = [0.0]


def _timed(stage: str, function: Any, *, consume: bool = False) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            result = function(*args, **kwargs)
            if consume:
                result = list(result)
            return result
        finally:
            SPENT[stage] += time.perf_counter() - start
            CALLS[stage] += 1
    return wrapper


def _wrap(owner: Any, name: str, stage: str, **options: Any) -> None:
    if hasattr(owner, name):
        setattr(owner, name, _timed(stage, getattr(owner, name), **options))


def instrument() -> None:
    from phonehome.audit import pipeline, session, store
    from phonehome.capture import files, observe
    from phonehome.detect.engine import DetectionEngine
    from phonehome.report import write
    from phonehome.rules import RuleSet

    _wrap(files, "read_flow", "read (mitm_reader)")
    _wrap(observe, "observations_from_flow", "observe", consume=True)
    _wrap(pipeline, "decode", "decode")
    _wrap(RuleSet, "classify", "classify")
    _wrap(DetectionEngine, "detect", "detect")
    _wrap(DetectionEngine, "identifiers", "identifiers")
    _wrap(pipeline, "flow_record", "flow record")
    _wrap(pipeline, "encode_record", "flow record")
    _wrap(store.FindingsStore, "append", "store append")
    _wrap(store.FindingsStore, "append_encoded", "store append")
    session.report_from_store = _mark_audit_phase_end(session.report_from_store)
    _wrap(session, "report_from_store", "report build")
    _wrap(write, "write_report", "report write")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("capture", type=Path)
    parser.add_argument("--identity", type=Path)
    parser.add_argument("--jobs", type=int, help="default: as `phonehome audit` chooses")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()
    instrument()
    from phonehome.cli import main as cli

    with tempfile.TemporaryDirectory(prefix="phonehome-profile-") as tmp:
        argv = ["audit", str(args.capture), "-o", tmp, "--format", "json", "-q",
                *(["--jobs", str(args.jobs)] if args.jobs else []), *args.extra]
        if args.identity:
            argv += ["--identity", str(args.identity)]
        start = START[0] = time.perf_counter()
        code = cli(argv)
        total = time.perf_counter() - start
    if code:
        return code
    print("| stage | seconds | share | calls |\n| --- | ---: | ---: | ---: |")
    accounted = 0.0
    for stage, seconds in sorted(SPENT.items(), key=lambda item: -item[1]):
        accounted += seconds
        print(f"| {stage} | {seconds:.2f} | {seconds / total:.0%} | {CALLS[stage]} |")
    rest = total - accounted
    print(f"| other (loop, set-up, wait for workers) | "
          f"{rest:.2f} | {rest / total:.0%} | |")
    print(f"| **total** | {total:.2f} | 100% | |")
    print("RESULT " + json.dumps({"total": total, **RSS}))
    if RSS:
        print(f"\nAudit phase (until the report starts): {RSS['audit phase seconds']:.2f} s; "
              f"peak RSS {RSS['main']:.0f} MiB in the main process, "
              f"{RSS['worker']:.0f} MiB in the largest worker")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
