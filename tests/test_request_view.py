"""The request rule filters see is rebuilt from the Observation alone, so the inline
audit, the live worker and `audit --jobs` give every filter the same answer."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from mitmproxy import flowfilter

from builders import ROOT, http_flow, write_flows
from phonehome.capture.observe import observations_from_flow, observe_request
from phonehome.capture.request_view import request_flow, request_line
from phonehome.decode import decode
from phonehome.rules import load_rules

PACK = """\
pack: transparent
vendor: Transparent Test
rules:
  - id: raw-address
    title: Sent to the raw address
    purpose: telemetry
    match: {filter: '~d "^10[.]20[.]30[.]40$"'}
  - id: named-host
    title: Named by its Host header
    purpose: service
    match: {filter: '~d "^metrics[.]example[.]com$"'}
"""


def _transparent(address: str, when: float = 1_700_000_000.0) -> object:
    """A flow as transparent mode records it: the raw address, the name in Host."""
    flow = http_flow(host=address, port=443, scheme=b"https", path=b"/metrics/v1",
                     method=b"POST", content=b'{"a": 1}',
                     headers=((b"host", b"metrics.example.com"),
                              (b"content-type", b"application/json")))
    flow.request.timestamp_start = when  # reports list flows by time
    return flow


@pytest.fixture()
def pack(tmp_path: Path) -> Path:
    path = tmp_path / "transparent.yaml"
    path.write_text(PACK)
    return path


def test_the_raw_address_and_the_named_host_both_reach_the_filters(pack: Path) -> None:
    ruleset = load_rules([pack], include_builtin=False)
    seen = []
    # the same URL and Host header, two addresses: the memo must tell them apart
    for address in ("10.20.30.40", "192.0.2.7", "10.20.30.40"):
        obs = observe_request(_transparent(address))
        obs = pickle.loads(pickle.dumps(obs))  # what the worker and --jobs receive
        assert obs.host == "metrics.example.com" and obs.server_host == address
        seen.append(ruleset.classify(obs, decode(obs)).rule_ids)
    assert seen == [["raw-address", "named-host"], ["named-host"],
                    ["raw-address", "named-host"]]


def test_the_rebuilt_request_answers_as_the_captured_flow() -> None:
    flow = _transparent("10.20.30.40")
    flow.response = None
    view = request_flow(observe_request(flow))
    for expression in ('~d "^10[.]20"', '~d "^metrics"', '~u "metrics[.]example"',
                       "~m POST", '~hq "content-type"', "~bq a", "~websocket", "~http"):
        matches = flowfilter.parse(expression)
        assert bool(matches(view)) == bool(matches(flow)), expression
    assert request_line(observe_request(flow)) == request_line(
        pickle.loads(pickle.dumps(observe_request(flow))))


def test_a_websocket_message_is_seen_as_a_websocket(tmp_path: Path) -> None:
    from builders import FLOWS

    messages = list(observations_from_flow(FLOWS["websocket"](), source="t"))
    assert [o.kind for o in messages] == ["http", "websocket", "websocket"]
    matches = flowfilter.parse("~websocket")
    assert [bool(matches(request_flow(o))) for o in messages] == [False, True, True]


def _audit(capture: Path, pack: Path, out: Path, jobs: str) -> list[list[str]]:
    result = subprocess.run(
        [sys.executable, "-m", "phonehome", "audit", str(capture), "--rules", str(pack),
         "--no-builtin-rules", "-o", str(out), "--format", "json", "-q", "--jobs", jobs],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "audit.json").read_text())
    return [flow["rule_ids"] for flow in report["flows"]]


def test_transparent_captures_classify_the_same_with_jobs(tmp_path: Path, pack: Path) -> None:
    capture = write_flows(tmp_path / "transparent.mitm",
                          [_transparent("10.20.30.40"), _transparent("192.0.2.7", 1_700_000_001.0)])
    inline = _audit(capture, pack, tmp_path / "one", "1")
    parallel = _audit(capture, pack, tmp_path / "two", "2")
    assert inline == [["raw-address", "named-host"], ["named-host"]]
    assert parallel == inline
