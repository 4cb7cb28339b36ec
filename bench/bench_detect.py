"""Detector benchmark: payloads/s and MB/s for DetectionEngine.detect, the persistent-id
candidates (`DetectionEngine.identifiers`), and the identity search with pyahocorasick
against a plain loop of `in` over the same needles.

The engine memoizes per place and per text, so a payload repeated verbatim is the best
case; the "new ids" rows give every call a payload whose event ids it has never seen,
as live traffic does.

    PYTHONPATH=addons python bench/bench_detect.py [--seconds 1.0]

Prints a small table. `json.loads` of the same body is printed as a yardstick for
how fast this machine is right now; no figure is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "addons"))

from phonehome.detect import DetectionEngine, Identity  # noqa: E402
from phonehome.detect.identity import IdentityIndex  # noqa: E402
from phonehome.model import Leaf, Payload  # noqa: E402

IDENTITY = {
    "email": "jane.roe@example.org",
    "name": "Jane Roe",
    "phone": "+1 415 555 2671",
    "username": "jroe",
    "hostname": "janes-mbp.local",
    "ip": "203.0.113.42",
    "mac": "a4:83:e7:12:34:56",
    "meeting_titles": ["Q3 budget review"],
}


def _event(i: int, flow: int = 0) -> dict[str, Any]:
    """A Webex Call-Analyzer client event shaped like the JS SDK's (telemetry-facts §2)."""
    uuid = f"2f1e5a1c-8a7b-{flow % 10000:04d}-9c1d-12345678{i:04d}"
    return {
        "eventPayload": {
            "eventId": uuid, "version": 1,
            "originTime": {"triggered": "2024-05-09T10:00:00.000Z",
                           "sent": "2024-05-09T10:00:00.500Z"},
            "senderCountryCode": "US",
            "origin": {
                "name": "endpoint", "networkType": "wifi", "buildType": "prod",
                "upgradeChannel": "gold",
                "userAgent": "webex-js-sdk/prod-3.0.0 "
                             "(browser=chrome/120; client=webex; os=mac/14)",
                "clientInfo": {
                    "clientType": "WEBEX_SDK", "subClientType": "WEB_APP",
                    "clientVersion": "43.8.0.26", "majorVersion": 43, "minorVersion": 8,
                    "os": "mac", "osVersion": "14.4.1", "browser": "chrome",
                    "browserVersion": "120.0.6099.109", "publicNetworkPrefix": "203.0.113.0",
                    "localNetworkPrefix": "192.168.1.80"}},
            "event": {
                "name": "client.call.initiated", "canProceed": True,
                "trigger": "user-interaction", "userType": "host", "loginType": "login-ci",
                "isConvergedArchitectureEnabled": False,
                "webexSubServiceType": "ScheduledMeeting",
                "eventData": {"webClientDomain": "web.webex.com"},
                "identifiers": {
                    "correlationId": "8c1d0f3e-1111-4b8e-9c1d-1234567890ab",
                    "userId": "0f1e5a1c-8a7b-4b8e-9c1d-1234567890ab",
                    "deviceId": "https://wdm-a.wbx2.com/wdm/api/v1/devices/"
                                "5f1e5a1c-8a7b-4b8e-9c1d-1234567890ab",
                    "orgId": "1eb65fdf-9643-417f-9974-ad72cae0e10f",
                    "locusId": "9f1e5a1c-8a7b-4b8e-9c1d-1234567890ab",
                    "locusStartTime": "2024-05-09T09:59:00.000Z",
                    "machineId": "7a1e5a1c-8a7b-4b8e-9c1d-1234567890ab",
                    "webexConferenceIdStr": "2634987123", "globalMeetingId": "ab12cd34ef56"},
                "joinTimes": {"meetingInfoReqResp": 312, "clickToInterstitial": 40,
                              "totalJmt": 2440}}},
        "type": ["diagnostic-event"]}


def _content() -> dict[str, Any]:
    """Telemetry that leaks: identity in hashed and plain form, chat, a crash stack."""
    email = IDENTITY["email"]
    return {"metrics": [_event(1), {
        "user": {"email": email, "displayName": "Jane Roe",
                 "emailHash": hashlib.sha256(email.encode()).hexdigest(),
                 "comments": "Audio kept dropping while I presented the Q3 budget review"},
        "crashReport": {"crashStack": "TypeError: x\n at f (/Users/jroe/app/main.js:1:2)\n" * 8},
        "intervals": [{"audioLevel": [0.1, 0.3, 0.0, 0.8] * 4,
                       "peerReflexiveIP": "203.0.113.42"}]}]}


def _leaves(node: Any, loc: str = "$", path: tuple = ()) -> list[Leaf]:
    out: list[Leaf] = []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _leaves(v, f"{loc}.{k}" if k.isidentifier() else f"{loc}['{k}']", path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _leaves(v, f"{loc}[{i}]", path + (i,))
    else:
        out.append(Leaf(loc, path, node))
    return out


def _payload(tree: Any) -> tuple[Payload, bytes]:
    body = json.dumps(tree).encode()
    leaves = _leaves(tree) + [
        Leaf("header:trackingid", ("trackingid",),
             "webex-js-sdk_0f1e5a1c-8a7b-4b8e-9c1d-1234567890ab_12", "header"),
        Leaf("url", ("url",), "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics", "url"),
    ]
    payload = Payload("json", tree, leaves, len(body), len(body), hashlib.sha256(body).hexdigest())
    return payload, body


def _rate(fn: Callable[[], Any], seconds: float) -> float:
    """Best seconds per call over a few rounds of about `seconds` in total."""
    fn()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - start
        if took > 0.05:
            break
        n *= 2
    best = took / n
    for _ in range(max(1, int(seconds / 0.05 / 2))):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args(argv)

    identity = Identity.from_entries([(field, value) for field, values in IDENTITY.items()
                                      for value in (values if isinstance(values, list)
                                                    else [values])])
    plain = DetectionEngine()
    with_identity = DetectionEngine(identity)
    cases = {
        "webex event (1 event)": _payload({"metrics": [_event(0)]}),
        "webex batch (8 events)": _payload({"metrics": [_event(i) for i in range(8)]}),
        "leaky content": _payload(_content()),
    }
    rows = []
    for name, (payload, body) in cases.items():
        yard = _rate(lambda body=body: json.loads(body), args.seconds)
        for label, engine in (("detectors", plain), ("+ identity", with_identity)):
            per = _rate(lambda e=engine, p=payload: e.detect(p), args.seconds)
            rows.append((name, label, len(body), len(payload.leaves), per, yard,
                         len(engine.detect(payload))))
        per = _rate(lambda p=payload: with_identity.identifiers(p), args.seconds)
        rows.append((name, "identifiers", len(body), len(payload.leaves), per, yard,
                     len(with_identity.identifiers(payload))))
    # New event ids in every call (8 per payload; more flows than the text memo holds).
    fresh = [_payload({"metrics": [_event(i, flow) for i in range(8)]}) for flow in range(3000)]
    body = fresh[0][1]
    yard = _rate(lambda: json.loads(body), args.seconds)
    for label, call in (("+ identity", with_identity.detect),
                        ("identifiers", with_identity.identifiers)):
        cycle = itertools.cycle([p for p, _ in fresh])
        per = _rate(lambda c=cycle, f=call: f(next(c)), args.seconds)
        rows.append(("webex batch, new ids", label, len(body), len(fresh[0][0].leaves), per,
                     yard, len(call(fresh[0][0]))))

    print(f"{'payload':24} {'engine':11} {'bytes':>6} {'leaves':>6} {'us/payload':>10} "
          f"{'payloads/s':>10} {'MB/s':>6} {'x json.loads':>12} {'findings':>8}")
    for name, label, size, leaves, per, yard, count in rows:
        print(f"{name:24} {label:11} {size:6d} {leaves:6d} {per * 1e6:10.1f} {1 / per:10.0f} "
              f"{size / per / 1e6:6.2f} {per / yard:12.1f} {count:8d}")

    # The identity search alone: one automaton pass against `needle in text` per needle.
    index = IdentityIndex(identity)
    needles = [form.needle for form in identity.forms]
    print(f"\nidentity search: {len(needles)} needles from {len(identity.values)} values")
    print(f"{'payload':24} {'chars':>6} {'aho-corasick us':>15} {'`in` loop us':>12} "
          f"{'speed-up':>8} {'hits':>5}")
    for name, (payload, _) in cases.items():
        text = "\n".join(str(leaf.value) for leaf in payload.leaves
                         if isinstance(leaf.value, str))
        aho = _rate(lambda t=text: index.matches(t), args.seconds)
        loop = _rate(lambda t=text: [n for n in needles if n in t], args.seconds)
        hits = len(index.matches(text))
        print(f"{name:24} {len(text):6d} {aho * 1e6:15.1f} {loop * 1e6:12.1f} "
              f"{loop / aho:7.1f}x {hits:5d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
