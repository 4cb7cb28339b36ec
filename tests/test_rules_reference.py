"""The fast rule evaluation (memos, tries, shapes) gives the plain reference's answers
(evaluate.py, whole filters) on generated documents, flow after flow."""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonehome.decode import decode
from phonehome.model import Observation
from phonehome.rules import Evaluation, RuleSet, load_rules
from phonehome.rules.party import default_resolver

PACK = """\
pack: gen
vendor: Generated Test
domains: [gen.example]
rules:
  - id: batch
    title: events in a batch
    purpose: telemetry
    match: {domains: [gen.example], filter: '~m POST'}
    each: $.events[*]
    event: [$.name, $.type]
    classify:
      - {name: "client.join*", trigger: meeting_join, marks: [meeting_join]}
      - {regex: "crash|fail", trigger: error, categories: [error_logs]}
      - {field: $.data.kind, equals: [share, 2], trigger: screen_share}
      - {field: email, trigger: sign_in, categories: [identifiers]}
      - {field: "header:x-mode", matches: "^qa", trigger: setup}
      - {name: "*", trigger: unknown, categories: [usage_statistics]}
    fields:
      $.data: [usage_statistics]
      $..email: [personal_data]
      "re:^i[dt]": [identifiers]
      "query:uid": [identifiers]
  - id: deep
    title: items anywhere
    purpose: telemetry
    match: {filter: '~u "/v[0-9]/"'}
    each: $..items[*]
    event: $.value
    classify:
      - {field: $.kind, trigger: collaboration}
      - {trigger: periodic}
  - id: whole
    title: the whole body
    purpose: service
    match: {domains: [gen.example]}
    fields:
      "$.events[?(@.kind)]": [device_info]
      "cookie:sid*": [identifiers]
    marks: [app_start]
  - id: filtered-each
    title: events picked by a filter
    purpose: telemetry
    match: {filter: '~d gen & ~bq "type"'}
    each: "$.events[?(@.type)]"
    event: $.type
    classify:
      - {name: ["a*", "b?"], trigger: in_meeting}
      - {field: "$.data[?(@.kind)]", trigger: error}
  - id: numbered
    title: the first event only
    purpose: telemetry
    match: {domains: [gen.example], filter: '~u "/v1/"'}
    event: $.events[0].name
    action: block
"""

FALLBACK = """\
pack: gen-fallback
vendor: ""
fallback: true
rules:
  - id: anything-named
    title: a name anywhere
    purpose: unknown
    match: {filter: "~all"}
    each: $.events[*]
    event: $.name
"""

KEYS = ["events", "items", "name", "type", "data", "kind", "email", "id", "it", "value", "x"]
SCALARS = st.sampled_from(["client.join", "client.join.ok", "app.crash", "ab", "b1", "share",
                           "x", "", 2, 2.0, 0, True, None, "jane@example.org"])
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    max_leaves=20,
)
SHAPED = st.builds(  # one shape, changing values: what the memos must not mix up
    lambda events: {"events": events},
    st.lists(st.fixed_dictionaries({
        "name": st.sampled_from(["client.join", "app.x", "b1"]),
        "type": st.sampled_from(["ab", "x"]),
        "data": st.fixed_dictionaries({"kind": st.sampled_from(["share", 2, "other", None])}),
        "email": st.sampled_from(["", "j@example.org"]),
    }), min_size=1, max_size=2))
BODIES = st.one_of(
    SHAPED, SHAPED,
    st.fixed_dictionaries({"events": st.lists(TREES, max_size=4)}, optional={"x": TREES}),
    TREES,
    st.sampled_from([b"\x1f\x8b not gzip", b"", b"plain text"]),
)
FLOWS = st.tuples(
    st.sampled_from(["POST", "GET"]),
    st.sampled_from(["https://gen.example/v1/m", "https://a.gen.example/v2/x",
                     "https://other.example/v1/", "http://127.0.0.1:8080/v3/"]),
    st.sampled_from([[], [("x-mode", "qa-1")], [("X-Mode", "prod")]]),
    st.sampled_from(["", "uid=7", "uid=7&id=1", "it=2"]),
    st.sampled_from(["", "sid=1", "sidx=2; other=3"]),
    BODIES,
)


def _observation(method: str, url: str, headers: list[tuple[str, str]], query: str,
                 cookie: str, body: Any, number: int) -> Observation:
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url + (f"?{query}" if query else ""))
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = [*headers, ("content-type", "application/json")]
    if cookie:
        hdrs.append(("cookie", cookie))
    if raw.startswith(b"\x1f\x8b"):
        hdrs.append(("content-encoding", "gzip"))
    return Observation(
        id=f"g{number}", timestamp=float(number), method=method, url=parts.geturl(),
        scheme=parts.scheme, host=parts.hostname or "", port=parts.port or 443,
        path=parts.path + (f"?{parts.query}" if parts.query else ""), headers=hdrs,
        query=parse_qsl(parts.query, keep_blank_values=True), body=raw,
        content_type="application/json",
        content_encoding="gzip" if raw.startswith(b"\x1f\x8b") else "")


def _summary(evaluation: Evaluation) -> Any:
    hits = [(h.rule.id, h.events, sorted(h.categories), h.marks) for h in evaluation.hits]
    return evaluation.classification, hits


def _check_equal(fast: RuleSet, plain: RuleSet, flows: list[tuple]) -> None:
    for number, flow in enumerate(flows):
        obs = _observation(*flow, number)
        payload = decode(obs)
        assert _summary(fast.evaluate(obs, payload)) == _summary(plain.evaluate(obs, payload))


@functools.cache
def _rule_sets(name: str) -> tuple[RuleSet, RuleSet]:
    """(fast, reference) over the generated packs or the bundled ones, built once: the
    fast set keeps its memos from example to example, as a live proxy does."""
    if name == "generated":
        with tempfile.TemporaryDirectory() as tmp:
            paths = [Path(tmp) / "gen.yaml", Path(tmp) / "gen-fallback.yaml"]
            paths[0].write_text(PACK)
            paths[1].write_text(FALLBACK)
            fast = load_rules(paths, include_builtin=False)
    else:
        fast = load_rules(())
    return fast, RuleSet(fast.packs, default_resolver(), reference=True)


PROPERTY = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(PROPERTY, max_examples=300)
@given(flows=st.lists(FLOWS, min_size=1, max_size=6))
def test_the_fast_path_answers_as_the_reference(flows: list) -> None:
    _check_equal(*_rule_sets("generated"), flows)


def test_chosen_flows_reach_every_rule_and_agree() -> None:
    """The property is not vacuous: flows of its kind hit every rule of the pack."""
    fast, plain = _rule_sets("generated")
    events = [{"name": "client.join", "data": {"kind": "share"}, "email": "j@example.org"},
              {"type": "app.crash", "kind": 1}, {"name": 2, "items": [{"value": "b1"}]},
              {"type": "ab", "data": {"kind": 2}}]
    flows = [("POST", "https://gen.example/v1/m", [("x-mode", "qa-1")], "uid=7", "sid=1",
              {"events": events}),
             ("GET", "https://other.example/v1/", [], "", "", {"items": [{"value": "x"}]}),
             ("POST", "https://gen.example/v1/m", [], "", "", b"\x1f\x8b not gzip")]
    same_shape = [("POST", "https://gen.example/v1/m", [], "", "",
                   {"events": [{"name": "app.x", "data": {"kind": kind}, "email": ""}]})
                  for kind in ("share", "other", 2, None, "share")]
    _check_equal(fast, plain, flows + same_shape)
    hit = set()
    for number, flow in enumerate(flows):
        obs = _observation(*flow, number)
        hit.update(h.rule.id for h in fast.evaluate(obs, decode(obs)).hits)
    assert hit == {"batch", "deep", "whole", "filtered-each", "numbered"}


WEBEX_EVENTS = st.fixed_dictionaries({
    "name": st.sampled_from(["client.call.initiated", "client.share.initiated",
                             "client.media.tx.start", "client.call.leave", "login.ok", "x"]),
}, optional={"mediaType": st.sampled_from(["screen", "whiteboard", "share"]),
             "identifiers": st.fixed_dictionaries({"userId": st.just("u1")})})
WEBEX_FLOWS = st.tuples(
    st.sampled_from(["POST", "GET", "PUT"]),
    st.sampled_from(["https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics",
                     "https://client-logs-a.wbx2.com/api/v1/logs/meta",
                     "https://idbroker.webex.com/idb/token",
                     "https://teams.events.data.microsoft.com/OneCollector/1.0/",
                     "https://api.amplitude.com/2/httpapi"]),
    st.sampled_from([[], [("trackingid", "abc")]]),
    st.sampled_from(["", "email=jane@example.org"]),
    st.just(""),
    st.one_of(
        st.builds(lambda events: {"metrics": [{"eventPayload": {"event": e}} for e in events]},
                  st.lists(WEBEX_EVENTS, max_size=3)),
        st.builds(lambda events: {"events": [{"event_type": e["name"]} for e in events]},
                  st.lists(WEBEX_EVENTS, max_size=3)),
        TREES,
    ),
)


@settings(PROPERTY, max_examples=150)
@given(flows=st.lists(WEBEX_FLOWS, min_size=1, max_size=3))
def test_the_bundled_packs_answer_as_the_reference(flows: list) -> None:
    _check_equal(*_rule_sets("bundled"), flows)
