"""Flow-less observations (the live audit worker's and `audit --jobs N`'s):
rule filters that read the request see what they see on the whole flow."""

from __future__ import annotations

import json

import pytest
from mitmproxy import flowfilter, http

from builders import FLOWS, full_flows, write_flows
from phonehome import cli
from phonehome.capture.observe import observe_request
from phonehome.capture.request_view import request_flow

REQUEST_FILTERS = [
    "~all", "~m POST", "~m PUT", "~u /m", "~u '^https://example[.]com/'", "~u 8443",
    "~d example", "~d '^2001:db8::1$'", "~d '^::1$'", "~d '^metrics'", "~hq user-agent",
    "~hq 'sid=abc'", "~bq email", "~bq binary", "~tq json", "~http", "~q",
    "~m POST & ~bq email", "!~d example | ~tq json",
]


@pytest.fixture(scope="module")
def plain_http_flows(tmp_path_factory: pytest.TempPathFactory) -> list[http.HTTPFlow]:
    path = write_flows(tmp_path_factory.mktemp("flowless") / "all.mitm",
                       [make() for make in FLOWS.values()])
    return [f for f in full_flows(path)
            if isinstance(f, http.HTTPFlow) and f.websocket is None]


def test_the_synthesized_request_line_is_the_flows_own(plain_http_flows):
    for flow in plain_http_flows:
        synthesized = request_flow(observe_request(flow)).request
        assert synthesized.pretty_url == flow.request.pretty_url
        assert synthesized.pretty_host == flow.request.pretty_host
        assert synthesized.method == flow.request.method
        assert synthesized.raw_content == flow.request.raw_content  # never re-encoded
        assert list(synthesized.headers.fields) == list(flow.request.headers.fields)


def test_request_filters_agree_with_the_whole_flow(plain_http_flows):
    without_response = [f.copy() for f in plain_http_flows]
    for flow in without_response:  # a flow-less observation carries no response
        flow.response = None
    assert len(without_response) >= 12
    for expression in REQUEST_FILTERS:
        matches = flowfilter.parse(expression)
        assert [bool(matches(request_flow(observe_request(f)))) for f in without_response] \
            == [bool(matches(f)) for f in without_response], expression


def test_ipv6_flows_audit_the_same_with_jobs(tmp_path):
    capture = write_flows(tmp_path / "ipv6.mitm",
                     [FLOWS["ipv6 host"](), FLOWS["ipv6 host header"](), FLOWS["http2"]()])
    reports = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs-{jobs}"
        assert cli.main(["audit", str(capture), "-o", str(out), "--format", "json", "-q",
                         "--jobs", jobs]) == 0
        reports[jobs] = json.loads((out / "audit.json").read_text())
    assert [f["audit_error"] for f in reports["2"]["flows"]] == [None, None, None]
    for report in reports.values():
        report.pop("generated_at")
        report.pop("inputs")
    assert reports["2"] == reports["1"]
