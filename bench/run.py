"""phonehome benchmarks, run by hand: `python bench/run.py [--quick]`.

Everything is measured side by side in one run on this machine, interleaved,
and reported as medians and ratios (these machines are noisy):

- live: plain mitmdump vs mitmdump + a no-op script vs mitmdump + phonehome
  (Webex pack, identity file, every detector, observe mode), 2 KB JSON telemetry
  over keep-alive, 1 and 8 concurrent clients: throughput and added latency;
- offline: `phonehome audit` vs `mitmdump -nr` (no addon) on 20,000-flow captures,
  synthetic and simulated (the simulator's session repeated), with the audit phase
  (until the report starts) apart;
- memory: peak RSS of `phonehome audit` at 20k and 100k flows.

`--baseline DIR` (another checkout, e.g. a `git worktree` of main) runs its
`phonehome audit` in the same rounds, for before/after ratios.

Results print as Markdown; paste them into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "addons"))

from phonehome.proxy_process import ADDON_SCRIPT, MitmdumpProcess  # noqa: E402

# Subprocesses find this checkout's phonehome even when it is not installed.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(ROOT / "addons"), os.environ.get("PYTHONPATH", "")) if p)}

IDENTITY = """\
email: jane.roe@example.org
name: Jane Roe
username: jroe
hostname: janes-mbp.local
ip: 198.51.100.23
mac: "3c:22:fb:12:34:56"
meeting_titles: ["Quarterly planning"]
"""


def telemetry_body(rng: random.Random) -> bytes:
    """A ~2 KB Webex-like Call Analyzer batch."""
    events = []
    for _ in range(3):
        events.append({
            "eventPayload": {
                "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
                "version": 1,
                "originTime": {"triggered": "2026-11-29T08:00:00.000Z",
                               "sent": "2026-11-29T08:00:00.100Z"},
                "senderCountryCode": "US",
                "origin": {"name": "endpoint", "networkType": "wifi",
                           "userAgent": "webex-js-sdk/3.4.0",
                           "clientInfo": {"os": "mac", "osVersion": "14.4.1",
                                          "clientType": "WEBEX_JS_SDK",
                                          "subClientType": "WEB_APP",
                                          "browser": "chrome", "browserVersion": "131.0",
                                          "localNetworkPrefix": "192.168.1.0",
                                          "publicNetworkPrefix": "198.51.100.16"}},
                "event": {"name": rng.choice(["client.mediaquality.event", "client.muted",
                                              "client.share.initiated"]),
                          "canProceed": True, "state": "ready",
                          "identifiers": {
                              "correlationId": str(uuid.UUID(int=rng.getrandbits(128))),
                              "userId": "0f2a9b1c-9c2f-4e61-8d25-6b8f1e1d2c3a",
                              "deviceId": "https://wdm-a.wbx2.com/wdm/api/v1/devices/5d1c",
                              "orgId": "1eb65fdf-9643-417f-9974-ad72cae0e10f",
                              "locusUrl": "https://locus-a.wbx2.com/locus/api/v1/loci/8a1",
                          },
                          "eventData": {"webClientDomain": "web.webex.com",
                                        "counter": rng.randint(0, 10_000)}},
            },
            "type": ["diagnostic-event"],
        })
    return json.dumps({"metrics": events}).encode()


# --- a fast upstream --------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.send_response(204)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def start_upstream() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- live -------------------------------------------------------------------


def drive(proxy_url: str, upstream_port: int, clients: int, seconds: float,
          bodies: list[bytes]) -> tuple[float, float]:
    """(requests per second, median latency ms) over `seconds` with `clients` threads."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    stop_at = time.monotonic() + seconds
    url = f"http://127.0.0.1:{upstream_port}/metrics/api/v1/clientmetrics"

    def worker(index: int) -> None:
        try:
            with httpx.Client(proxy=proxy_url, trust_env=False, timeout=30) as client:
                n = 0
                while time.monotonic() < stop_at and n < 1_000_000:
                    body = bodies[(index * 7919 + n) % len(bodies)]
                    start = time.perf_counter()
                    client.post(url, content=body,
                                headers={"content-type": "application/json"})
                    latencies[index].append(time.perf_counter() - start)
                    n += 1
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    all_latencies = [x for per in latencies for x in per]
    if not all_latencies:
        raise RuntimeError(f"no request completed: {errors[:3]}")
    return len(all_latencies) / elapsed, statistics.median(all_latencies) * 1000


def live_benchmark(workdir: Path, rounds: int, seconds: float,
                   store_dsn: str | None = None) -> list[dict]:
    rng = random.Random(7)
    bodies = [telemetry_body(rng) for _ in range(64)]
    identity = workdir / "identity.yaml"
    identity.write_text(IDENTITY)
    noop = workdir / "noop.py"
    noop.write_text("class Noop:\n    def request(self, flow):\n        pass\n\n"
                    "addons = [Noop()]\n")
    upstream = start_upstream()
    port = upstream.server_address[1]
    variants = {
        "plain": ([], {}),
        "noop": ([noop], {}),
        "phonehome": ([ADDON_SCRIPT], {"phonehome_identity": str(identity),
                                       "phonehome_report_dir": str(workdir / "reports"),
                                       "phonehome_quiet": "true",
                                       "phonehome_formats": "json"}),
    }
    if store_dsn:
        variants["phonehome, PostgreSQL store"] = (
            [ADDON_SCRIPT], {**variants["phonehome"][1], "phonehome_store": store_dsn,
                             "phonehome_sensor": "bench"})
    results = []
    for clients in (1, 8):
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for _ in range(rounds):
            for name, (scripts, options) in variants.items():
                with MitmdumpProcess(workdir / "conf", scripts=scripts, options=options,
                                     extra_args=["--flow-detail", "0"]) as proxy:
                    drive(proxy.url, port, clients, 1.0, bodies)  # warm-up
                    samples[name].append(drive(proxy.url, port, clients, seconds, bodies))
        base_rps = statistics.median(s[0] for s in samples["plain"])
        base_lat = statistics.median(s[1] for s in samples["plain"])
        for name, values in samples.items():
            rps = statistics.median(v[0] for v in values)
            lat = statistics.median(v[1] for v in values)
            results.append({"clients": clients, "variant": name, "rps": rps,
                            "ratio": rps / base_rps, "latency_ms": lat,
                            "added_ms": lat - base_lat})
    upstream.shutdown()
    return results


# --- offline ----------------------------------------------------------------


def write_capture(path: Path, flows: int) -> Path:
    from mitmproxy import io
    from mitmproxy.test import tflow, tutils

    rng = random.Random(11)
    with path.open("wb") as fo:
        writer = io.FlowWriter(fo)
        for i in range(flows):
            request = tutils.treq(
                method=b"POST", host="metrics-a.wbx2.com", port=443, scheme=b"https",
                authority=b"metrics-a.wbx2.com", path=b"/metrics/api/v1/clientmetrics",
                headers=((b"content-type", b"application/json"),),
                content=telemetry_body(rng))
            flow = tflow.tflow(req=request, resp=True)
            flow.request.timestamp_start = 1_780_000_000 + i * 0.5
            writer.add(flow)
    return path


SAMPLE = ROOT / "examples" / "webex-session.mitm"
SAMPLE_IDENTITY = ROOT / "examples" / "identity.yaml"


def repeat_capture(path: Path, flows: int, source: Path = SAMPLE) -> Path:
    """The simulator's session (`source`) repeated until `flows` flows, each repeat with
    fresh flow ids and its times moved on by the session's length: a long capture
    with the simulator's real mix of hosts, connections, bodies and leaks."""
    from mitmproxy.io import FlowReader, tnetstring

    with source.open("rb") as fo:
        states = [flow.get_state() for flow in FlowReader(fo).stream()]
    times = [s["request"]["timestamp_start"] for s in states if s.get("request")]
    span = max(times) - min(times) + 60.0
    with path.open("wb") as fo:
        for n in range(flows):
            repeat, state = divmod(n, len(states))
            shift = repeat * span
            state = {**states[state], "id": str(uuid.UUID(int=random.Random(n).getrandbits(128)))}
            state["timestamp_created"] += shift
            for part in ("request", "response"):
                if state.get(part):
                    message = state[part] = dict(state[part])
                    for key in ("timestamp_start", "timestamp_end"):
                        if message.get(key) is not None:
                            message[key] += shift
            tnetstring.dump(state, fo)
    return path


def timed(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB of the child) for one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=ENV)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(after, before)


def profiled(args: list[str], root: Path = ROOT) -> dict:
    """One `phonehome audit` run (of the checkout at `root`) through its
    bench/profile_audit.py: its total seconds, the audit phase's seconds (until the
    report starts) and peak RSS (MiB) of the main process and of the largest worker by
    then, and the whole run's peak RSS."""
    wrapper = Path("/usr/bin/time")
    command = [sys.executable, str(root / "bench" / "profile_audit.py"), *args]
    if wrapper.is_file():
        command = [str(wrapper), "-f", "%M", *command]
    env = {**ENV, "PYTHONPATH": os.pathsep.join(
        p for p in (str(root / "addons"), os.environ.get("PYTHONPATH", "")) if p)}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    result = next(json.loads(line[len("RESULT "):]) for line in out.stdout.splitlines()
                  if line.startswith("RESULT "))
    if wrapper.is_file():
        result["peak"] = int(out.stderr.strip().splitlines()[-1]) / 1024
    return result


def captures(workdir: Path, flows: int) -> dict[str, tuple[Path, Path]]:
    """(capture, identity file) of each kind: the synthetic Webex batches
    (`write_capture`) and the simulator's session repeated (`repeat_capture`)."""
    identity = workdir / "identity.yaml"
    identity.write_text(IDENTITY)
    return {
        "synthetic": (write_capture(workdir / f"synthetic-{flows}.mitm", flows), identity),
        "simulated": (repeat_capture(workdir / f"simulated-{flows}.mitm", flows),
                      SAMPLE_IDENTITY),
    }


def offline_benchmark(workdir: Path, flows: int, rounds: int,
                      baseline: Path | None = None) -> list[dict]:
    """`mitmdump -nr` against `phonehome audit` (default settings: one worker per core
    for a large capture) and `--jobs 1`, and the baseline checkout's default audit,
    interleaved, on each kind of capture."""
    mitmdump = str(Path(sys.executable).parent / "mitmdump")
    variants: list[tuple[str, list[str], Path]] = [
        ("phonehome audit", [], ROOT), ("phonehome audit --jobs 1", ["--jobs", "1"], ROOT)]
    if baseline is not None:
        variants.append(("baseline: phonehome audit", [], baseline))
    results = []
    for kind, (capture, identity) in captures(workdir, flows).items():
        audit = [str(capture), "--identity", str(identity)]
        times: dict[str, list[float]] = {"mitmdump -nr": [], **{v[0]: [] for v in variants}}
        phases: dict[str, list[float]] = {v[0]: [] for v in variants}
        for _ in range(rounds):
            times["mitmdump -nr"].append(
                timed([mitmdump, "-nr", str(capture), "--flow-detail", "0"])[0])
            for name, extra, root in variants:
                run = profiled([*audit, *extra], root)
                times[name].append(run["total"])
                phases[name].append(run["audit phase seconds"])
        base = statistics.median(times["mitmdump -nr"])
        rows = [{"variant": name, "seconds": statistics.median(v),
                 "speedup": base / statistics.median(v)} for name, v in times.items()]
        rows += [{"variant": f"{name}: audit phase (until the report starts)",
                  "seconds": statistics.median(v), "speedup": base / statistics.median(v)}
                 for name, v in phases.items()]
        results.append({"kind": kind, "flows": flows, "rows": rows})
        capture.unlink()
    return results


def memory_benchmark(workdir: Path, sizes: list[int],
                     baseline: Path | None = None) -> list[dict]:
    """Peak RSS of `phonehome audit` (default settings, identity file) on the simulated
    capture: the audit phase's main process and largest worker, and the whole run
    (and the baseline checkout's, on the same capture)."""
    rows = []
    for flows in sizes:
        capture = repeat_capture(workdir / f"memory-{flows}.mitm", flows)
        for name, root in [("this", ROOT)] + ([("baseline", baseline)] if baseline else []):
            run = profiled([str(capture), "--identity", str(SAMPLE_IDENTITY)], root)
            rows.append({"code": name, "flows": flows, "main": run["main"],
                         "worker": run["worker"], "peak": run.get("peak", float("nan")),
                         "seconds": run["total"], "phase": run["audit phase seconds"]})
        capture.unlink()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and flows")
    parser.add_argument("--skip", action="append", default=[],
                        choices=("live", "offline", "memory"))
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="offline, memory: also run this checkout's phonehome, side by side")
    parser.add_argument("--postgres", action="store_true",
                        help="live: also run with the store on a local PostgreSQL server")
    args = parser.parse_args()
    rounds = 2 if args.quick else 3
    seconds = 3.0 if args.quick else 6.0
    import mitmproxy.version

    print(f"# phonehome benchmark\n\nPython {sys.version.split()[0]}, mitmproxy "
          f"{mitmproxy.version.VERSION}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}\n")
    with tempfile.TemporaryDirectory(prefix="phonehome-bench-") as tmp:
        workdir = Path(tmp)
        if "live" not in args.skip:
            print("## Live: throughput and added latency (median of interleaved rounds)\n")
            print("| clients | variant | req/s | × plain | median latency ms | added ms |")
            print("| ---: | --- | ---: | ---: | ---: | ---: |")
            server = None
            if args.postgres:
                sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
                from pg_support import PostgresServer, find_pg_bin

                server = PostgresServer(find_pg_bin()).init()
                server.start()
                server.wait_ready()
            try:
                rows = live_benchmark(workdir, rounds, seconds,
                                      server.database() if server else None)
            finally:
                if server is not None:
                    server.destroy()
            for row in rows:
                print(f"| {row['clients']} | {row['variant']} | {row['rps']:.0f} | "
                      f"{row['ratio']:.2f} | {row['latency_ms']:.2f} | {row['added_ms']:+.2f} |")
            print()
        if "offline" not in args.skip:
            flows = 2_000 if args.quick else 20_000
            for result in offline_benchmark(workdir, flows, rounds, args.baseline):
                print(f"## Offline: {result['flows']} flows, {result['kind']} capture "
                      f"(median of {rounds} interleaved runs)\n")
                print("| variant | seconds | × mitmdump -nr |")
                print("| --- | ---: | ---: |")
                for row in result["rows"]:
                    print(f"| {row['variant']} | {row['seconds']:.2f} | {row['speedup']:.2f} |")
                print()
        if "memory" not in args.skip:
            sizes = [2_000, 10_000] if args.quick else [20_000, 100_000]
            print("## Memory: peak RSS of `phonehome audit` (simulated capture)\n")
            print("| code | flows | audit phase: main MiB | audit phase: largest worker MiB | "
                  "whole run MiB | audit phase s | total s |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for row in memory_benchmark(workdir, sizes, args.baseline):
                print(f"| {row['code']} | {row['flows']} | {row['main']:.0f} | "
                      f"{row['worker']:.0f} | {row['peak']:.0f} | {row['phase']:.1f} | "
                      f"{row['seconds']:.1f} |")
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
