"""Small captures and stores, built the same way every time, for the report tests.

Each case is audited (or reported from its store) through the `phonehome` CLI with a
fixed fingerprint key, so two runs of one case write the same reports.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy.test import tflow, tutils

from builders import phonehome, write_flows

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXPECTED = FIXTURES / "streaming"
FIXED_KEY = "5e" * 32
T0 = 1_780_000_000.0

IDENTITY = """\
email: jane.roe@example.org
name: Jane Roe
username: jroe
hostname: janes-mbp.local
ip: 198.51.100.23
"""


def fixed_key(folder: Path) -> None:
    """The fingerprint key an audit written to `folder` uses: fixed, so fingerprints are."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(folder / ".phonehome-key", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(FIXED_KEY + "\n")


def telemetry_body(rng: random.Random, index: int) -> bytes:
    """A Webex-like metrics batch with ids, an address and a counter."""
    return json.dumps({"metrics": [{
        "eventPayload": {
            "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
            "event": {"name": rng.choice(["client.mediaquality.event", "client.muted",
                                          "client.share.initiated", "client.call.leave"]),
                      "identifiers": {"userId": "0f2a9b1c-9c2f-4e61-8d25-6b8f1e1d2c3a",
                                      "deviceId": "https://wdm-a.wbx2.com/wdm/api/v1/dev/5d1c",
                                      "orgId": "1eb65fdf-9643-417f-9974-ad72cae0e10f"},
                      "eventData": {"counter": index, "email": "jane.roe@example.org",
                                    "localIp": "198.51.100.23"}},
            "origin": {"userAgent": "webex-js-sdk/3.4.0",
                       "clientInfo": {"os": "mac", "hostname": "janes-mbp.local"}},
        },
    }]}).encode()


def telemetry_flows(count: int, *, seed: int = 11, step: float = 7.5) -> list[Any]:
    rng = random.Random(seed)
    flows = []
    for index in range(count):
        host = ("metrics-a.wbx2.com", "locus-a.wbx2.com", "www.google-analytics.com")[index % 3]
        request = tutils.treq(
            method=b"POST", host=host, port=443, scheme=b"https", authority=host.encode(),
            path=b"/metrics/api/v1/clientmetrics?n=%d" % (index % 5),
            headers=((b"content-type", b"application/json"),),
            content=telemetry_body(rng, index),
            timestamp_start=T0 + index * step, timestamp_end=T0 + index * step + 0.1)
        flow = tflow.tflow(req=request, resp=True)
        flow.id = str(uuid.UUID(int=rng.getrandbits(128)))
        flow.timestamp_created = T0 + index * step
        flows.append(flow)
    return flows


HOSTILE_HOSTS = ["[", "]", "1]", "\x1b[2J", "[::1", "a]b[", "[]", "x:99999", "\u202egoogle.com",
                 "%", "", " ", "a b", "host:-1", "[1:2::3]:8080"]


def hostile_flows() -> list[Any]:
    flows = []
    for index, host in enumerate(HOSTILE_HOSTS):
        for repeat in range(4):
            when = T0 + 30.0 * repeat + index / 10
            request = tutils.treq(
                host=host or "127.0.0.1", port=443, scheme=b"https", method=b"POST",
                authority=b"", path=b"/v1/metrics?a=1&email=jane.roe@example.org",
                headers=((b"content-type", b"application/json"), (b"host", host.encode())),
                content=json.dumps({"k": repeat, "user": "jroe"}).encode(),
                timestamp_start=when, timestamp_end=when + 0.1)
            flow = tflow.tflow(req=request, resp=True)
            flow.id = f"hostile-{index:02d}-{repeat}"
            flow.timestamp_created = when
            flows.append(flow)
    return flows


def store_from_report(fixture: str, store: Path, *, sensors: tuple[str, ...] = (),
                      damage: bool = False, opt_out_after: int | None = None) -> Path:
    """A SQLite store holding a saved report's flows and its auditor markers, written
    with the store's own writer; `sensors` tags the flows round-robin (a fleet's)."""
    from phonehome.audit.store import FindingsStore
    from phonehome.model import Marker

    report = json.loads((FIXTURES / fixture).read_text(encoding="utf-8"))
    writer = FindingsStore(store)
    writer.set_meta("inputs", report["inputs"])
    for index, record in enumerate(report["flows"]):
        if sensors:
            record = {**record, "sensor": sensors[index % len(sensors)]}
        writer.append(record)
    for marker in report["markers"]:
        if marker["source"] == "auditor":
            writer.add_marker(Marker(marker["timestamp"], marker["label"], marker["source"],
                                     marker["flow_id"]))
    if opt_out_after is not None:  # an opt-out marker just after that flow
        at = float(report["flows"][opt_out_after]["timestamp"]) + 0.5
        writer.add_marker(Marker(at, "opt_out", "auditor", None))
    writer.close()
    if damage:
        import sqlite3

        db = sqlite3.connect(store)
        rows = db.execute("SELECT seq, record FROM flows ORDER BY seq LIMIT 3").fetchall()
        harms = ({"purpose": 5, "marks": "x"}, {"events": 5, "host": None},
                 {"findings": [{"type": "email"}, 7], "bytes_out": -1})
        for (seq, text), harm in zip(rows, harms, strict=True):
            db.execute("UPDATE flows SET record = ? WHERE seq = ?",
                       (json.dumps({**json.loads(text), **harm}), seq))
        db.commit()
        db.close()
    return store


def _audit(capture: Path, out: Path, *extra: object) -> Path:
    fixed_key(out)
    done = phonehome("audit", capture, "-o", out, "--format", "json,csv", "-q", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _report(store: Path, out: Path, *extra: object) -> Path:
    done = phonehome("report", store, "-o", out, "--format", "json,csv", "-q", *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _identity(work: Path) -> Path:
    path = work / "identity.yaml"
    path.write_text(IDENTITY)
    return path


CASES: dict[str, Callable[[Path], Path]] = {
    "sample": lambda work: _audit(ROOT / "examples" / "webex-session.mitm", work / "out",
                                  "--identity", ROOT / "examples" / "identity.yaml"),
    "telemetry": lambda work: _audit(write_flows(work / "t.mitm", telemetry_flows(120)),
                                     work / "out", "--identity", _identity(work)),
    "hostile": lambda work: _audit(write_flows(work / "h.mitm", hostile_flows()), work / "out"),
    "session1": lambda work: _report(store_from_report(
        "report_webex_session1.json", work / "s.sqlite", opt_out_after=9), work / "out",
        "--app", "webex"),
    "session2-fleet": lambda work: _report(store_from_report(
        "report_webex_session2.json", work / "s.sqlite", sensors=("desk-1", "desk-2")),
        work / "out", "--app", "webex"),
    "session1-damaged": lambda work: _report(store_from_report(
        "report_webex_session1.json", work / "s.sqlite", damage=True), work / "out"),
}


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def comparable(out: Path) -> dict[str, Any]:
    """What a case's reports say, without what changes from run to run or checkout to
    checkout: the time written, the tool's versions, absolute paths. Decoded bodies
    are kept as digests (the fixture stays small; a change in one still shows)."""
    report = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    report.pop("generated_at")
    report.pop("tool")
    inputs = report["inputs"]
    inputs["captures"] = [Path(p).name for p in inputs.get("captures") or ()]
    for pack in inputs.get("rule_packs") or ():
        pack["path"] = Path(pack["path"]).name
    for flow in report["flows"]:
        if flow.get("decoded") is not None:
            flow["decoded"] = _digest(flow["decoded"])
    return {"json": report,
            "flows_csv": (out / "audit-flows.csv").read_text(encoding="utf-8"),
            "findings_csv": (out / "audit-findings.csv").read_text(encoding="utf-8")}


def expected(name: str) -> dict[str, Any]:
    with gzip.open(EXPECTED / f"{name}.json.gz", "rt", encoding="utf-8") as data:
        return json.load(data)


def save_expected(name: str, value: dict[str, Any]) -> None:
    EXPECTED.mkdir(parents=True, exist_ok=True)
    text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=False)
    with gzip.GzipFile(EXPECTED / f"{name}.json.gz", "wb", mtime=0) as out:
        out.write(text.encode("utf-8", "surrogatepass"))
