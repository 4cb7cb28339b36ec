"""Accuracy on simulated sessions no pack was tuned to: `python bench/accuracy.py`.

Each seed plays the meeting-app simulator through a real mitmdump (capture
only), with some event names respelled (`simulate.spelling`) and extra events
from the public Webex event list sent under names the webex pack's globs do not
cover. The capture is then audited offline by `phonehome audit` (this
checkout's code) and the report is scored against the simulator's ground truth.

Prints trigger and purpose accuracy, detector precision and recall, the
category F1 of the findings, and the share of the app's periodic streams whose
cadence the report finds. `--reuse` audits the captures of an earlier run
again, so two versions of the code can be compared on the same traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "addons"))
sys.path.insert(0, str(ROOT / "tests"))

from ground_truth import matches  # noqa: E402
from phonehome.model import TRIGGERS  # noqa: E402
from phonehome.simulate import ALL_LEAKS  # noqa: E402
from phonehome.simulate.spelling import STYLES, respell, respeller  # noqa: E402

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(ROOT / "addons"), os.environ.get("PYTHONPATH", "")) if p)}
EVENTS_JSON = Path("/work/shared/webex/events.json")
SPEED = 400.0
SEEDS = (7, 8, 9)

# Finding type → the category it reports (DESIGN.md: personal data and meeting content),
# for the category F1 of the findings against the planted and service values.
_CONTENT = {"meeting_title", "chat_message", "transcript", "file_name", "participant_list",
            "audio_level"}


def _category(finding_type: str) -> str:
    if finding_type == "persistent_id":
        return "identifiers"
    return "meeting_content" if finding_type in _CONTENT else "personal_data"


# Events the simulator itself sends in another phase than the public list's guess.
_NOT_EXTRA = {"client.startup.start", "client.startup.end"}


def extra_events(path: Path) -> dict[str, list[str]]:
    """Per trigger, the public list's client events with that trigger."""
    data = json.loads(path.read_text())
    by_trigger: dict[str, list[str]] = {}
    for entry in data:
        trigger = {"in_meeting_periodic": "in_meeting"}.get(entry["trigger"], entry["trigger"])
        if (entry["channel"] != "call_analyzer_client_event" or trigger not in TRIGGERS
                or entry["event"] in _NOT_EXTRA):
            continue
        by_trigger.setdefault(trigger, []).append(entry["event"])
    return by_trigger


def _play(workdir: Path, seed: int, fraction: float, events_json: Path | None) -> None:
    from phonehome.simulate.harness import run_through_proxy

    spell = respeller(seed, fraction)
    # extra events are always respelled: names no glob of the webex pack covers
    extras = {trigger: [respell(name, STYLES[(seed + i) % len(STYLES)])
                        for i, name in enumerate(names)]
              for trigger, names in (extra_events(events_json) if events_json else {}).items()}
    workdir.mkdir(parents=True, exist_ok=True)
    run_through_proxy(workdir, workdir / "live-report", seed=seed, speed=SPEED,
                      leaks=ALL_LEAKS, spell=spell, extra_events=extras)


def _audit(workdir: Path, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "phonehome", "audit", str(workdir / "session.mitm"),
               "--identity", str(workdir / "identity.yaml"), "--time-scale", str(SPEED),
               "-o", str(out), "--format", "json", "--quiet"]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"phonehome audit failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads((out / "audit.json").read_text())


def _pairs(report: dict[str, Any], truth: dict[str, Any]) -> list[tuple[dict, dict]]:
    """Report flows matched to the requests the simulator sent, in order."""
    flows = sorted(report["flows"], key=lambda f: (f["timestamp"], f["id"]))
    sent = truth["sent"]
    pairs, i = [], 0
    for request in sent:
        while i < len(flows):
            flow = flows[i]
            i += 1
            path = flow["url"].split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
            if (flow["method"], flow["host"], "/" + path) == (
                    request["method"], request["host"], request["path"]):
                pairs.append((flow, request))
                break
    if len(pairs) != len(sent):
        raise SystemExit(f"matched {len(pairs)} of {len(sent)} requests to report flows")
    return pairs


def _matches(entry: dict[str, Any], finding: dict[str, Any]) -> bool:
    if "leak" in entry:
        return matches(entry, finding)
    return True  # personal data where the app does its job with it: a true finding


def _benign(finding: dict[str, Any], benign: list[dict[str, Any]]) -> bool:
    """A finding at a place the ground truth lists as noticed-but-by-design (not scored)."""
    location = finding["location"]
    if finding["type"] == "identity_match" or (
            finding["type"] == "audio_level" and finding["severity"] == "high"):
        return False  # your own value, or levels while muted: never by design
    if finding["type"] == "ip_address" and ".data[0].payload[" in location:
        return True  # rtcMetrics stats JSON: masked candidate prefixes
    last = location.replace("header:", ".").replace("query:", ".").rsplit(".", 1)[-1]
    last = last.split("[", 1)[0]
    for entry in benign:
        if finding["type"] != entry["finding_type"]:
            continue
        if last and last in entry["location"]:
            return True
        if finding["type"] in ("audio_level", "persistent_id"):
            return True  # levels outside the mute window; ids the SDK always sends
    return False


def _path(flow: dict[str, Any]) -> str:
    return "/" + flow["url"].split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]


def _at(entry: dict[str, Any], flow: dict[str, Any]) -> bool:
    return flow["host"] == entry["host"] and _path(flow) == entry["path"]


def _streams(truth: dict[str, Any], min_count: int = 4) -> list[tuple[str, float]]:
    """(endpoint, period in simulated seconds) of each stream the app sent repeatedly."""
    times: dict[str, list[float]] = defaultdict(list)
    for sent in truth["sent"]:
        first = sent["events"][0] if sent["events"] else ""
        times[f"{sent['method']} {sent['host']}{sent['path']}\n{first}"].append(sent["timestamp"])
    streams = []
    for key, stamps in times.items():
        if len(stamps) >= min_count:
            gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
            streams.append((key.split("\n", 1)[0], statistics.median(gaps) * truth["speed"]))
    return streams


def cadence_found(report: dict[str, Any], truth: dict[str, Any]) -> float:
    """The share of the app's periodic streams the report calls regular, within 10 %
    (each report entry stands for one stream)."""
    streams = _streams(truth)
    unused = [e for e in report["cadence"] if e["regular"]]
    found = 0
    for endpoint, period in streams:
        match = next((e for e in unused if e["endpoint"] == endpoint
                      and abs(e["median_interval_s"] - period) <= 0.1 * period), None)
        if match is not None:
            unused.remove(match)
            found += 1
    return found / len(streams) if streams else 1.0


def score(report: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    pairs = _pairs(report, truth)
    trigger_ok = [flow["trigger"] == request["trigger"] for flow, request in pairs]
    purpose_ok = [flow["purpose"] == request["purpose"] for flow, request in pairs]
    wrong = Counter((request["trigger"], flow["trigger"], flow.get("trigger_source"))
                    for flow, request in pairs if flow["trigger"] != request["trigger"])

    entries = truth["planted"] + truth["expected_service"]
    found_planted = 0
    for entry in truth["planted"]:
        if any(matches(entry, f) for flow in report["flows"] if _at(entry, flow)
               for f in flow["findings"] if f["location"] == entry["location"]):
            found_planted += 1
    tp = fp = 0
    false_alarms: Counter[tuple[str, str]] = Counter()
    truth_cats: set[tuple[str, str]] = set()
    found_cats: set[tuple[str, str]] = set()
    for flow in report["flows"]:
        here = [e for e in entries if _at(e, flow)]
        for entry in here:
            truth_cats.add((entry["host"], entry["path"], _category(entry["finding_type"])))
        for finding in flow["findings"]:
            if finding["severity"] not in ("medium", "high"):
                continue
            if _benign(finding, truth["benign"]):
                continue
            found_cats.add((flow["host"], _path(flow), finding["category"]))
            muted = finding["type"] == "audio_level" and any(
                e.get("leak") == "muted_audio" and matches(e, finding) for e in here)
            if muted or any(e["location"] == finding["location"] and _matches(e, finding)
                            for e in here):
                tp += 1
            else:
                fp += 1
                false_alarms[(finding["type"], finding["location"])] += 1
    hit = len(truth_cats & found_cats)
    precision_c = hit / len(found_cats) if found_cats else 0.0
    recall_c = hit / len(truth_cats) if truth_cats else 0.0
    return {
        "flows": len(pairs),
        "trigger": sum(trigger_ok) / len(pairs),
        "purpose": sum(purpose_ok) / len(pairs),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": found_planted / len(truth["planted"]) if truth["planted"] else 0.0,
        "category_f1": (2 * precision_c * recall_c / (precision_c + recall_c)
                        if precision_c + recall_c else 0.0),
        "cadence": cadence_found(report, truth),
        "wrong_triggers": wrong,
        "false_alarms": false_alarms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--respell", type=float, default=0.5, metavar="FRACTION",
                        help="share of the simulator's own event names to respell (0.5)")
    parser.add_argument("--events", type=Path, default=EVENTS_JSON,
                        help="the public Webex event list (events.json)")
    parser.add_argument("--no-extra", action="store_true",
                        help="send only the simulator's own events")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep captures here (default: a temporary folder)")
    parser.add_argument("--reuse", action="store_true",
                        help="audit the captures already in --workdir again")
    parser.add_argument("--details", action="store_true",
                        help="list wrong triggers and false alarms")
    args = parser.parse_args(argv)
    if args.reuse and args.workdir is None:
        parser.error("--reuse needs --workdir")
    base = args.workdir or Path(tempfile.mkdtemp(prefix="phonehome-accuracy-"))
    rows = []
    for seed in args.seeds:
        workdir = base / f"seed-{seed}"
        if not (args.reuse and (workdir / "session.mitm").exists()):
            _play(workdir, seed, args.respell, None if args.no_extra else args.events)
        truth = json.loads((workdir / "ground_truth.json").read_text())
        report = _audit(workdir, workdir / "audit")
        rows.append((seed, score(report, truth)))

    print(f"captures: {base}")
    print("| seed | flows | trigger | purpose | precision | recall | category F1 | cadence |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for seed, row in rows:
        print(f"| {seed} | {row['flows']} | {row['trigger']:.3f} | {row['purpose']:.3f} | "
              f"{row['precision']:.3f} | {row['recall']:.3f} | {row['category_f1']:.3f} | "
              f"{row['cadence']:.3f} |")
    total = sum(r["flows"] for _, r in rows)
    mean = {key: sum(r[key] * r["flows"] for _, r in rows) / total
            for key in ("trigger", "purpose", "precision", "recall", "category_f1", "cadence")}
    print(f"| all | {total} | {mean['trigger']:.3f} | {mean['purpose']:.3f} | "
          f"{mean['precision']:.3f} | {mean['recall']:.3f} | {mean['category_f1']:.3f} | "
          f"{mean['cadence']:.3f} |")
    if args.details:
        wrong: Counter[Any] = sum((r["wrong_triggers"] for _, r in rows), Counter())
        print("\nwrong triggers (truth, reported, source): count")
        for key, count in wrong.most_common():
            print(f"  {key}: {count}")
        alarms: Counter[Any] = sum((r["false_alarms"] for _, r in rows), Counter())
        print("\nfalse alarms (type, location): count")
        for key, count in alarms.most_common(20):
            print(f"  {key}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
