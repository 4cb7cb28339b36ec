"""Rule pack load time at 1k and 10k generated rules, and their ratio (linear is ~10x).

    python bench/bench_rules_load.py [--sizes 1000,10000] [--rounds 3] [--addons DIR]

Each load runs in a fresh interpreter (imports and the bundled packs first, not
timed) and reports CPU seconds, which shared machines disturb less than wall time.
`--addons` points at another checkout's addons/ to compare before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_MEASURE = """
import json, sys, time
from phonehome.rules import load_rules
load_rules([])
cpu, wall = time.process_time(), time.perf_counter()
ruleset = load_rules([sys.argv[1]], include_builtin=False)
print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                  "rules": len(ruleset.rules)}))
"""


def generated_pack(count: int) -> str:
    """`count` distinct rules: own domain, filter, event path, globs, fields and a test."""
    lines = ["pack: bulk", "vendor: Bulk Vendor", "version: 1", "domains: [bulk.example]",
             "rules:"]
    for i in range(count):
        lines += [
            f"  - id: bulk-rule-{i}",
            f"    title: Bulk rule {i}",
            "    purpose: telemetry",
            "    severity: low",
            f"    match: {{domains: [h{i}.bulk.example], "
            f"filter: '~m POST & ~u \"/api/v{i % 7}/e{i}\"'}}",
            "    event: $.events[*].name",
            "    classify:",
            f"      - {{name: 'ev{i}.*', trigger: in_meeting, categories: [usage_statistics]}}",
            f"      - {{field: '$.kind', equals: k{i}, trigger: periodic}}",
            "    fields:",
            f"      '$.device.os{i}': device_info",
            f"      'query:uid{i}': identifiers",
            "    tests:",
            f"      - request: {{method: POST, url: 'https://h{i}.bulk.example/api/v{i % 7}/e{i}',"
            f" body: {{events: [{{name: ev{i}.x}}]}}}}",
            "        expect: {match: true, trigger: in_meeting}",
        ]
    return "\n".join(lines) + "\n"


def measure(pack: Path, addons: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(addons)}
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(pack)], env=env, check=True,
                         capture_output=True, text=True, timeout=900).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--addons", type=Path, default=ROOT / "addons")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        packs = {}
        for size in sizes:
            packs[size] = Path(tmp) / f"bulk-{size}.yaml"
            packs[size].write_text(generated_pack(size))
        runs: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
        for _ in range(args.rounds):  # interleaved, so drift hits every size alike
            for size in sizes:
                runs[size].append(measure(packs[size], args.addons))
        for size in sizes:
            assert all(r["rules"] == size for r in runs[size])
            results[size] = (statistics.median(r["cpu"] for r in runs[size]),
                             statistics.median(r["wall"] for r in runs[size]))
    base = sizes[0]
    print(f"rule pack load ({args.addons}, median of {args.rounds})\n")
    print("| rules | CPU s | wall s | CPU vs first row |")
    print("|---:|---:|---:|---:|")
    for size in sizes:
        cpu, wall = results[size]
        print(f"| {size:,} | {cpu:.2f} | {wall:.2f} | {cpu / results[base][0]:.1f}x |")


if __name__ == "__main__":
    main()
