"""The engine's memo tables never change a result.

Every case is classified by a warm RuleSet (memo tables shared across the
whole table, each flow classified repeatedly, in both orders, and with a tiny
memo limit that keeps forgetting) and compared with a RuleSet whose memo limit
is 0, which works everything out again for every flow.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import flowfilter
from mitmproxy.test import tflow, tutils

from builders import ca_batch, make_obs, payload_of
from phonehome.capture.observe import observe_request
from phonehome.capture.request_view import request_flow
from phonehome.decode import decode
from phonehome.model import Observation, Payload
from phonehome.rules import Evaluation, RuleSet, load_rules
from phonehome.rules.filters import filter_inputs, partial_verdict
from phonehome.rules.memo import MemoPool, lookup_all
from phonehome.rules.party import default_resolver
from phonehome.rules.testing import observation_for_test

METRICS = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
PRELOGIN = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics-prelogin"

EXTRA_PACK = """\
pack: memo-extra
vendor: Example Vendor
domains: [example.org]
rules:
  - id: filtered-each
    title: items picked by a jsonpath filter (not compiled, evaluated per flow)
    purpose: telemetry
    match: {filter: '~m POST & ~u "/items"'}
    each: "$.items[?(@.kind == 'ev')]"
    event: $.name
    classify:
      - {name: "boot*", trigger: app_start}
      - {field: $.level, matches: "^err", trigger: error}
      - {field: $.level, trigger: periodic}
    fields:
      $.level: performance_metrics
      "$.tags[0:2]": usage_statistics
  - id: keyed
    title: key names, headers, queries, equals and matches
    purpose: telemetry
    match: {filter: '~u "/keyed" & ~hq "x-kind: keyed"'}
    each: $.batch[*]
    event: [$.evt, $.alt.name]
    classify:
      - {name: "join*", field: mode, equals: "audio", trigger: meeting_join}
      - {name: "join*", trigger: in_meeting}
      - {field: "query:debug", trigger: error}
      - {regex: "^share", trigger: screen_share, marks: [screen_share_start]}
    fields:
      "re:^(user|device)_?id$": identifiers
      email: personal_data
      "header:x-kind": device_info
      "query:session": identifiers
      $..latency: performance_metrics
"""


def _payload(url: str, body: Any = None, **kw: Any) -> tuple[Observation, Payload]:
    obs = make_obs(url, body, **kw)
    return obs, payload_of(obs)


def _ca_event(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra}


HANDMADE: list[tuple[str, str, Any, dict[str, Any]]] = [
    ("ca-three-quality", METRICS, ca_batch(*[_ca_event("client.mediaquality.event")] * 3), {}),
    ("ca-mixed", METRICS, ca_batch(_ca_event("client.muted", mediaType="audio"),
                                   _ca_event("client.share.initiated", mediaType="share"),
                                   _ca_event("client.call.leave")), {}),
    # same shape, different values: value-dependent cases must not be remembered
    ("ca-share-whiteboard", METRICS,
     ca_batch(_ca_event("client.share.initiated", mediaType="whiteboard")), {}),
    ("ca-share-screen", METRICS,
     ca_batch(_ca_event("client.share.initiated", mediaType="screen")), {}),
    ("ca-muted-video", METRICS, ca_batch(_ca_event("client.muted", mediaType="video")), {}),
    ("ca-muted-audio", METRICS, ca_batch(_ca_event("client.muted", mediaType="audio")), {}),
    ("ca-media-share", METRICS, ca_batch(_ca_event("client.media.render.start",
                                                   mediaType="share")), {}),
    ("ca-media-video", METRICS, ca_batch(_ca_event("client.media.render.start",
                                                   mediaType="video")), {}),
    ("ca-errors", METRICS, ca_batch(_ca_event("client.locus.join.response",
                                              errors=[{"errorCode": 2004}])), {}),
    ("ca-empty-errors", METRICS, ca_batch(_ca_event("client.locus.join.response", errors=[])), {}),
    ("ca-numeric-name", METRICS, ca_batch(_ca_event(42)), {}),  # type: ignore[arg-type]
    ("ca-empty-name", METRICS, ca_batch(_ca_event(""), _ca_event("client.ice.end")), {}),
    ("ca-bool-name", METRICS, ca_batch(_ca_event(True)), {}),  # type: ignore[arg-type]
    ("ca-no-name", METRICS, {"metrics": [{"eventPayload": {"event": {"x": 1}}}]}, {}),
    ("ca-prelogin-header", PRELOGIN, ca_batch(_ca_event("client.login.end")),
     {"headers": {"x-prelogin-userid": "u-1", "TrackingID": "t-1"}}),
    ("ca-get", METRICS, None, {"method": "GET"}),
    ("ca-shared-batch", METRICS,
     {"metrics": [{"eventPayload": {"event": {"name": "client.call.initiated"}}},
                  {"metricName": "legacyThing", "tags": {"device_id": "d"}},
                  {"eventPayload": {"key": "biz.metric", "value": 3}}]}, {}),
    ("ca-query", METRICS + "?alias=true&x=1", ca_batch(_ca_event("client.ice.end")), {}),
    ("rtc-with-appid", "https://rtc.example.com/metric/v2",
     {"metrics": [{"type": "rtc", "data": [{"name": "jitter"}]}]},
     {"headers": {"appid": "FFB51ED5-4319-4C55-8303-B1F2FCCDE231"}}),
    ("rtc-without-appid", "https://rtc.example.com/metric/v2",
     {"metrics": [{"type": "rtc", "data": [{"name": "jitter"}]}]}, {}),
    ("identity", "https://idbroker.webex.com/idb/oauth2/v1/access_token",
     {"user_id": "x", "email": "a@b.c"}, {}),
    ("u2c", "https://u2c.wbx2.com/u2c/api/v1/user/catalog?email=a%40b.c&mode=x", None,
     {"method": "GET"}),
    ("log-meta-start", "https://client-logs-a.wbx2.com/api/v1/logs/meta",
     {"data": [{"key": "callStart", "value": "1"}]}, {}),
    ("log-meta-other", "https://client-logs-a.wbx2.com/api/v1/logs/meta",
     {"data": [{"key": "locusId", "value": "1"}]}, {}),
    ("sentry", "https://o1.ingest.sentry.io/api/5/envelope/",
     {"user": {"email": "a@b.c", "id": "7"}, "exception": {"values": [1]}}, {}),
    ("google-analytics", "https://www.google-analytics.com/g/collect?tid=G-1&cid=55&en=x",
     None, {"method": "POST"}),
    ("third-party", "https://collector.unknown-analytics.net/v1/track",
     {"userId": "u", "device_id": "d", "email": "x@y.z", "nested": {"ip": "1.2.3.4"}}, {}),
    ("ip-host", "http://127.0.0.1:8080/metrics/api/v1/clientmetrics",
     ca_batch(_ca_event("client.call.initiated")), {}),
    ("extra-filtered", "https://a.example.org/items",
     {"items": [{"kind": "ev", "name": "boot.start", "level": "x", "tags": ["a", "b", "c"]},
                {"kind": "other", "name": "ignored"},
                {"kind": "ev", "name": "tick", "level": "error-3"},
                {"kind": "ev", "name": "tick", "level": "ok"},
                {"kind": "ev", "name": "tock"}]}, {}),
    ("extra-filtered-none", "https://a.example.org/items",
     {"items": [{"kind": "other", "name": "boot.start"}]}, {}),
    ("extra-keyed", "https://a.example.org/keyed?session=s1&debug=1",
     {"batch": [{"evt": "join.call", "mode": "audio", "user_id": "u"},
                {"evt": "join.call", "mode": "video", "deviceId": "d", "x": {"latency": 3}},
                {"alt": {"name": "share.start"}, "email": "e@x.y"},
                {"evt": "", "alt": {"name": "other"}}]},
     {"headers": {"x-kind": "keyed"}}),
    ("extra-keyed-wrong-header", "https://a.example.org/keyed",
     {"batch": [{"evt": "join.call"}]}, {"headers": {"x-kind": "other"}}),
]


def _embedded_cases() -> list[tuple[str, Observation, Payload]]:
    decoder = decode
    cases = []
    for rule in load_rules().rules:
        for index, test in enumerate(rule.tests):
            obs = observation_for_test(test, index)
            cases.append((f"{rule.id}:{test.name}", obs, decoder(obs)))
    return cases


def _shape_cases(seed: int, count: int) -> list[tuple[str, Observation, Payload]]:
    """CA batches whose shapes vary: random fields, names, sizes and values."""
    rng = random.Random(seed)
    names = ["client.mediaquality.event", "client.muted", "client.unmuted",
             "client.share.initiated", "client.media.render.start", "client.call.leave",
             "client.login.end", "client.network.changed", "client.crash.report"]
    extras = {
        "mediaType": lambda: rng.choice(["audio", "video", "share", "whiteboard"]),
        "errors": lambda: rng.choice([[], [{"errorCode": 1}]]),
        "joinTimes": lambda: {"totalJmt": rng.randint(1, 900)},
        "identifiers": lambda: {"userId": "u", "orgId": "o"},
        "shareResourceName": lambda: "Budget.xlsx",
        "intervals": lambda: [{"intervalMetadata": {"peerReflexiveIP": "203.0.113.9"}}],
    }
    cases = []
    for i in range(count):
        events = []
        for _ in range(rng.randint(1, 4)):
            event: dict[str, Any] = {"name": rng.choice(names)}
            for key in rng.sample(sorted(extras), rng.randint(0, 3)):
                event[key] = extras[key]()
            events.append(event)
        batch = ca_batch(*events)
        if rng.random() < 0.3:
            batch["metrics"].insert(rng.randint(0, len(events)), {"metricName": "legacy"})
        obs, payload = _payload(METRICS, batch)
        cases.append((f"shape-{seed}-{i}", obs, payload))
    return cases


# (method, authority, path, headers): observations that carry their mitmproxy flow
REAL_FLOWS = [
    ("POST", "metrics-a.wbx2.com", "/metrics/api/v1/clientmetrics", {}),
    ("POST", "metrics-a.wbx2.com", "/metrics/api/v1/clientmetrics?alias=true", {}),
    ("GET", "metrics-a.wbx2.com", "/metrics/api/v1/clientmetrics", {}),
    ("POST", "elsewhere.example.net", "/metrics/api/v1/clientmetrics",
     {"host": "metrics-a.wbx2.com"}),
    ("POST", "idbroker.webex.com", "/idb/oauth2/v1/access_token", {}),
    ("POST", "rtc.example.com", "/metric/v2", {"appid": "FFB51ED5-4319-4C55-8303-B1F2FCCDE231"}),
    ("POST", "rtc.example.com", "/metric/v2", {}),
    ("POST", "a.example.org", "/keyed?session=s", {"x-kind": "keyed"}),
]


def _real_flow_cases() -> list[tuple[str, Observation, Payload]]:
    decoder = decode
    body = ca_batch(_ca_event("client.share.initiated", mediaType="whiteboard"),
                    _ca_event("client.call.initiated"))
    body["batch"] = [{"evt": "join.x", "user_id": "u"}]
    cases = []
    for i, (method, host, path, headers) in enumerate(REAL_FLOWS):
        all_headers = {"content-type": "application/json", **headers}
        request = tutils.treq(
            method=method.encode(), host=host, port=443, scheme=b"https",
            authority=host.encode(), path=path.encode(),
            headers=tuple((k.encode(), v.encode()) for k, v in all_headers.items()),
            content=json.dumps(body).encode())
        obs = observe_request(tflow.tflow(req=request, resp=True))
        cases.append((f"real-{i}-{method}-{host}{path}", obs, decoder(obs)))
    return cases


@pytest.fixture(scope="module")
def extra_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("memo") / "extra.yaml"
    path.write_text(EXTRA_PACK)
    return path


@pytest.fixture(scope="module")
def warm(extra_pack: Path) -> RuleSet:
    return load_rules([extra_pack])


@pytest.fixture(scope="module")
def reference(warm: RuleSet) -> RuleSet:
    """The same packs with a memo that remembers nothing."""
    return RuleSet(warm.packs, default_resolver(), memo_limit=0)


def _summary(evaluation: Evaluation) -> tuple[Any, ...]:
    hits = [(h.rule.id, h.events, sorted(h.categories), h.marks) for h in evaluation.hits]
    return evaluation.classification, hits


HANDMADE_CASES = [(cid, *_payload(url, body, **kw)) for cid, url, body, kw in HANDMADE]
EMBEDDED_CASES = _embedded_cases()
SHAPE_CASES = _shape_cases(7, 60)
ALL_CASES = HANDMADE_CASES + EMBEDDED_CASES + SHAPE_CASES + _real_flow_cases()


@pytest.mark.parametrize(("case_id", "obs", "payload"), ALL_CASES,
                         ids=[case[0] for case in ALL_CASES])
def test_memoized_equals_uncached(warm: RuleSet, reference: RuleSet, case_id: str,
                                  obs: Observation, payload: Payload) -> None:
    expected = _summary(reference.evaluate(obs, payload))
    for _ in range(3):  # the first call fills the memo, the others read it
        assert _summary(warm.evaluate(obs, payload)) == expected, case_id
    assert warm.classify(obs, payload) == expected[0]


def test_the_whole_table_in_both_orders_and_with_a_fresh_rule_set(extra_pack: Path,
                                                                  reference: RuleSet) -> None:
    expected = {cid: _summary(reference.evaluate(obs, p)) for cid, obs, p in ALL_CASES}
    shared = load_rules([extra_pack])
    for cases in (ALL_CASES, ALL_CASES[::-1], ALL_CASES):
        for cid, obs, p in cases:
            assert _summary(shared.evaluate(obs, p)) == expected[cid], cid
    for cid, obs, p in ALL_CASES[::7]:
        assert _summary(load_rules([extra_pack]).evaluate(obs, p)) == expected[cid], cid


@pytest.mark.parametrize("limit", [1, 7, 50, 400])
def test_a_small_memo_forgets_but_never_changes_a_result(reference: RuleSet,
                                                         limit: int) -> None:
    tiny = RuleSet(reference.packs, default_resolver(), memo_limit=limit)
    cases = ALL_CASES + _shape_cases(11, 30)
    for cid, obs, p in cases + cases[::-1]:
        assert _summary(tiny.evaluate(obs, p)) == _summary(reference.evaluate(obs, p)), cid


def test_one_shape_with_changing_values_keeps_value_tests_per_flow(warm: RuleSet) -> None:
    triggers = []
    for media in ["whiteboard", "screen", "whiteboard", "share", "whiteboard"]:
        obs, payload = _payload(METRICS, ca_batch(_ca_event("client.share.initiated",
                                                            mediaType=media)))
        triggers.append(warm.classify(obs, payload).trigger)
    assert triggers == ["collaboration", "screen_share", "collaboration", "screen_share",
                        "collaboration"]


@pytest.mark.parametrize("extra", [
    [], [("content-length", "12")], [("TrackingID", "abc"), ("x-other", "1")],
    [("cookie", "a=b"), ("authorization", "Bearer x")],
])
@pytest.mark.parametrize(("method", "url", "host"), [
    ("POST", "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics?x=1", None),
    ("GET", "https://idbroker.webex.com/idb/token", "identity.example.org"),
    ("PUT", "http://127.0.0.1:8080/logs/meta", "logs.example.org:8443"),
])
def test_a_synthesized_flow_takes_its_request_line_from_method_url_and_host(
        method: str, url: str, host: str | None, extra: list[tuple[str, str]]) -> None:
    """What filter verdicts of flow-less observations are remembered by."""
    def read(flow: Any) -> tuple[Any, ...]:  # what request-line filters read
        request = flow.request
        return request.data.method, request.pretty_url, request.host, request.pretty_host

    host_headers = [("Host", host)] if host else []
    plain = make_obs(url, method=method)
    plain.headers = host_headers
    busy = make_obs(url, {"a": 1}, method=method)
    busy.headers = extra + host_headers
    assert read(request_flow(busy)) == read(request_flow(plain))


# --- the memo pool ----------------------------------------------------------------


def test_the_pool_empties_every_table_past_its_limit() -> None:
    pool = MemoPool(3)
    first, second = pool.table(), pool.table()
    pool.remember(first, "a", 1)
    pool.remember(second, "b", 2)
    pool.remember(first, "c", 3)
    assert (first, second, pool.size) == ({"a": 1, "c": 3}, {"b": 2}, 3)
    pool.remember(second, "d", 4)
    assert (first, second, pool.size) == ({}, {}, 0)


@pytest.mark.parametrize(("keys", "known", "computed"), [
    (["a", "b", "c"], {}, [0, 1, 2]),
    (["a", "b", "c"], {"b": "B"}, [0, 2]),
    (["a", "b", "a"], {"a": "A"}, [1]),
    (["x", "x"], {}, [0, 1]),
    ([], {}, []),
])
def test_lookup_all_computes_only_the_missing_in_order(keys: list[str], known: dict[str, str],
                                                       computed: list[int]) -> None:
    pool = MemoPool(100)
    table = pool.table()
    table.update(known)
    seen: list[list[int]] = []

    def compute(missing: list[int]) -> list[str]:
        seen.append(missing)
        return [keys[i].upper() for i in missing]

    assert lookup_all(pool, table, keys, compute) == [k.upper() for k in keys]
    assert seen == ([computed] if computed else [])
    assert lookup_all(pool, table, keys, compute) == [k.upper() for k in keys]
    assert len(seen) == (1 if computed else 0)


def test_a_zero_limit_remembers_nothing_and_a_negative_one_is_refused() -> None:
    pool = MemoPool(0)
    table = pool.table()
    assert lookup_all(pool, table, ["a"], lambda missing: ["A"]) == ["A"]
    assert table == {}
    with pytest.raises(ValueError):
        MemoPool(-1)


# --- partial filter verdicts --------------------------------------------------------

FILTERS = [
    '~m POST & ~u "/clientmetrics(-prelogin)?([?]|$)"',
    '~u "/metric/v2([?]|$)" & ~hq "(?i)^appid: abc"',
    '~hq "appid" & ~m POST',
    '~hq "appid" | ~m GET',
    '!(~hq "appid" & ~m POST)',
    '!~u "/logs/(urls|meta)" & ~m PUT',
    '~d "^(idbroker|identity)[a-z0-9-]*[.]" | ~u "/idb/(oauth2|token)"',
    '~d "example" & (~b "secret" | ~u "/x")',
    "~all",
    "~q",
    '~m POST & ~t "json"',
    '(~m POST | ~m PUT) & !~d "internal"',
]

FLOWS = [
    ("POST", "metrics-a.wbx2.com", "/metrics/api/v1/clientmetrics", {"content-type": "json"}),
    ("GET", "metrics-a.wbx2.com", "/metrics/api/v1/clientmetrics?x=1", {}),
    ("POST", "rtc.example.com", "/metric/v2", {"appid": "abc"}),
    ("POST", "rtc.example.com", "/metric/v2", {}),
    ("PUT", "logs.example.com", "/logs/meta", {}),
    ("PUT", "logs.example.com", "/upload/file.txt", {}),
    ("POST", "idbroker.webex.com", "/idb/oauth2/v1/token", {}),
    ("GET", "www.example.org", "/x", {"appid": "1"}),
    ("POST", "internal.example.org", "/secret", {}),
]


def _flow(method: str, host: str, path: str, headers: dict[str, str]) -> Any:
    request = tutils.treq(method=method.encode(), host=host, port=443, scheme=b"https",
                          authority=host.encode(), path=path.encode(),
                          headers=tuple((k.encode(), v.encode()) for k, v in headers.items()),
                          content=b"a secret body")
    return tflow.tflow(req=request)


@pytest.mark.parametrize("text", FILTERS)
def test_partial_verdicts_agree_with_flowfilter_whenever_they_answer(text: str) -> None:
    node = flowfilter.parse(text)
    inputs, verdict = partial_verdict(node)
    for spec in FLOWS:
        flow = _flow(*spec)
        expected = bool(node(flow))
        got = verdict(flow) if verdict is not None else None
        assert got is None or got == expected, (text, spec)
        if filter_inputs(node) is not None:  # request-line filters always answer
            assert got == expected, (text, spec)


@pytest.mark.parametrize(("text", "inputs", "settled"), [
    ('~m POST & ~u "/x"', {"method", "url"}, True),
    ('~d "a" | ~u "/x"', {"host", "pretty_host", "url"}, True),
    ('~hq "a" & ~u "/x"', {"url"}, True),
    ('~hq "a"', set(), False),
    ('!~b "a"', set(), False),
    ("~all", set(), True),
])
def test_filter_inputs(text: str, inputs: set[str], settled: bool) -> None:
    used, verdict = partial_verdict(flowfilter.parse(text))
    assert (set(used), verdict is not None) == (inputs, settled)
