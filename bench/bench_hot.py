"""The per-flow hot loops phonehome hands to compiled code, each side by side with
the Python it replaced, on the simulator's session (examples/webex-session.mitm):

- record encoding: orjson over the record as built, against the JSON-safe copy
  walked in Python first and then orjson (the old path), and the stdlib encoder;
- reading a .mitm file: phonehome's reader, mitmproxy's FlowReader, and the
  framing alone (all the main process does when workers read the flows).

    PYTHONPATH=addons python bench/bench_hot.py [--rounds 5]

Medians of interleaved rounds, per flow, with ratios to the first row of each group.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "addons"))

import orjson  # noqa: E402
from mitmproxy.io import FlowReader  # noqa: E402

from phonehome.audit.pipeline import Auditor, AuditSettings, encode_record, json_text  # noqa: E402
from phonehome.audit.store import record_default  # noqa: E402
from phonehome.capture.mitm_reader import read_flow, read_frame  # noqa: E402
from phonehome.capture.observe import observations_from_flow  # noqa: E402

SAMPLE = ROOT / "examples" / "webex-session.mitm"


def _old_encode(record: dict[str, Any]) -> str:
    return orjson.dumps(json_text(record), default=record_default,
                        option=orjson.OPT_NON_STR_KEYS).decode()


def _stdlib_encode(record: dict[str, Any]) -> str:
    return json.dumps(json_text(record), default=record_default, separators=(",", ":"))


def _read_all(data: bytes, read: Callable[[Any], Any]) -> int:
    fo = io.BytesIO(data)
    count = 0
    while fo.tell() < len(data):
        read(fo)
        count += 1
    return count


def _flow_reader(data: bytes) -> int:
    return sum(1 for _ in FlowReader(io.BytesIO(data)).stream())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = SAMPLE.read_bytes() * 10
    flows = _read_all(data, read_flow)
    auditor = Auditor(AuditSettings(identity_path=ROOT / "examples" / "identity.yaml"))
    observations = [o for flow in FlowReader(io.BytesIO(SAMPLE.read_bytes())).stream()
                    for o in observations_from_flow(flow, source="bench")]
    records = [auditor.audit_result(o, text_safe=False).record for o in observations] * 10
    groups: dict[str, dict[str, Callable[[], Any]]] = {
        f"encode a flow record ({len(records)} records)": {
            "orjson, the record as built (now)": lambda: [encode_record(r) for r in records],
            "Python JSON-safe copy, then orjson (before)": lambda: [_old_encode(r)
                                                                   for r in records],
            "Python JSON-safe copy, then stdlib json": lambda: [_stdlib_encode(r)
                                                                for r in records],
        },
        f"read a .mitm file ({flows} flows)": {
            "phonehome reader (read_flow)": lambda: _read_all(data, read_flow),
            "mitmproxy FlowReader": lambda: _flow_reader(data),
            "framing only (read_frame, the main process with workers)":
                lambda: _read_all(data, read_frame),
        },
    }
    samples: dict[str, dict[str, list[float]]] = {g: {n: [] for n in v} for g, v in groups.items()}
    for _ in range(args.rounds):
        for group, variants in groups.items():
            for name, run in variants.items():
                start = time.perf_counter()
                run()
                samples[group][name].append(time.perf_counter() - start)
    sizes = {next(iter(groups)): len(records), list(groups)[1]: flows}
    for group, variants in samples.items():
        print(f"\n### {group}\n\n| variant | µs per item | × first row |\n| --- | ---: | ---: |")
        first = None
        for name, values in variants.items():
            per = statistics.median(values) / sizes[group] * 1e6
            first = first or per
            print(f"| {name} | {per:.1f} | {per / first:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
