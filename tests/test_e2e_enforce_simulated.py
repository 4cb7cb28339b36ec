"""The simulator's full leak set through a real mitmdump in redact mode.
The vendor stand-in must receive no planted personal value in any encoding, and the
simulated session must still complete."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

import pytest
import yaml

from phonehome.simulate.harness import run_through_proxy
from phonehome.simulate.leaks import ALL_LEAKS
from phonehome.simulate.vendor_server import read_record

pytestmark = pytest.mark.e2e


def _forms(value: str) -> set[str]:
    raw = value.encode()
    forms = {value, quote(value, safe=""), base64.b64encode(raw).decode().rstrip("=")}
    for text in (value, value.strip().lower()):
        for algorithm in ("md5", "sha1", "sha256"):
            forms.add(hashlib.new(algorithm, text.encode()).hexdigest())
    return {f for f in forms if len(f) >= 6}


def _wire_text(entry: dict) -> str:
    parts = [entry["path"], entry.get("query") or ""]
    parts += [f"{k}: {v}" for k, v in entry["headers"]]
    body = entry["body"]
    if body[:2] == b"\x1f\x8b":
        import gzip

        body = gzip.decompress(body)
    parts.append(body.decode("utf-8", errors="replace"))
    return "\n".join(parts)


def test_redact_mode_keeps_every_planted_leak_from_leaving(tmp_path):
    run = run_through_proxy(tmp_path, tmp_path / "reports", speed=300, leaks=ALL_LEAKS,
                            options={"phonehome_enforce": "redact",
                                     "phonehome_formats": "json"})
    truth = json.loads((tmp_path / "ground_truth.json").read_text())
    identity = yaml.safe_load((tmp_path / "identity.yaml").read_text())
    assert run.simulation.requests == truth["requests"]  # the session completed
    received = read_record(run.vendor_record)
    leaked = []
    checked = 0
    for entry in truth["planted"]:
        if entry["value_kind"] not in identity:  # audio levels: not a value of yours
            continue
        checked += 1
        values = identity[entry["value_kind"]]
        values = values if isinstance(values, list) else [values]
        forms = set().union(*(_forms(str(v)) for v in values))
        for request in received:
            if request["host"] == entry["host"] and request["path"] == entry["path"]:
                text = _wire_text(request)
                leaked += [(entry["leak"], entry["path"], f) for f in forms if f in text]
    assert checked >= 8 and leaked == []
    report = json.loads((tmp_path / "reports" / "audit.json").read_text())
    actions = report["summary"]["by_enforcement"]
    assert actions.get("redacted", 0) + actions.get("blocked_unsafe_redaction", 0) > 0
    # sign-in and chat (service) went through untouched, so the meeting kept working
    assert {r["host"] for r in received} >= {"idbroker.webex.com", "conv-a.wbx2.com",
                                             "locus-a.wbx2.com"}
