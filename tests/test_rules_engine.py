"""The engine on Webex-shaped and third-party traffic: triggers, categories, party."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from builders import ca_batch, make_obs, payload_of
from phonehome.model import TRIGGERS, Classification
from phonehome.rules import TRIGGER_SPECIFICITY, RuleSet, load_rules, most_specific

METRICS = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules()


def classify(rs: RuleSet, url: str, body: Any = None, **kw: Any) -> Classification:
    obs = make_obs(url, body, **kw)
    return rs.classify(obs, payload_of(obs))


# (event dict, expected trigger, categories that must be present, marks)
CA_EVENTS = [
    ({"name": "client.meetinginfo.request"}, "meeting_join", set(), []),
    ({"name": "client.call.initiated"}, "meeting_join", set(), []),
    ({"name": "client.locus.join.response", "joinTimes": {"totalJmt": 900}}, "meeting_join",
     {"performance_metrics"}, []),
    ({"name": "client.locus.join.brand-new-step"}, "meeting_join", set(), []),
    ({"name": "client.ice.end"}, "meeting_join", set(), []),
    ({"name": "client.media.tx.start", "mediaType": "audio"}, "meeting_join", set(), []),
    ({"name": "client.lobby.entered"}, "meeting_join", set(), []),
    ({"name": "client.share.initiated", "mediaType": "share"}, "screen_share", set(),
     ["screen_share_start"]),
    ({"name": "client.share.floor-grant.something-new"}, "screen_share", set(), []),
    ({"name": "client.share.selected-app", "shareResourceName": "Budget.xlsx"}, "screen_share",
     {"meeting_content"}, []),
    ({"name": "client.share.stopped"}, "screen_share", set(), ["screen_share_stop"]),
    ({"name": "client.share.initiated", "mediaType": "whiteboard"}, "collaboration", set(), []),
    ({"name": "client.media.render.start", "mediaType": "share"}, "screen_share", set(), []),
    ({"name": "client.media.render.start", "mediaType": "video"}, "meeting_join", set(), []),
    ({"name": "client.media.rx.stop", "mediaType": "video"}, "in_meeting", set(), []),
    ({"name": "client.muted", "mediaType": "audio"}, "in_meeting", set(), ["muted"]),
    ({"name": "client.unmuted", "mediaType": "audio"}, "in_meeting", set(), ["unmuted"]),
    ({"name": "client.muted", "mediaType": "video"}, "in_meeting", set(), []),
    ({"name": "client.mediaquality.event", "intervals": [
        {"intervalMetadata": {"peerReflexiveIP": "203.0.113.9"},
         "audioReceive": [{"common": {"meanRtpJitter": 3}}]}]},
     "in_meeting", {"network_info", "performance_metrics"}, []),
    ({"name": "client.call.leave"}, "meeting_leave", set(), ["meeting_leave"]),
    ({"name": "client.call.remote-ended"}, "meeting_leave", set(), []),
    ({"name": "client.call.survey.trigger", "callSurveyTriggerData": {"callDuration": 60}},
     "meeting_leave", {"meeting_metadata"}, []),
    ({"name": "client.call.aborted"}, "error", {"error_logs"}, []),
    ({"name": "client.mercury.connection.lost"}, "error", {"error_logs"}, []),
    ({"name": "client.started-from-crash"}, "error", {"error_logs"}, []),
    ({"name": "client.locus.join.response", "errors": [{"errorCode": 2004}]}, "error",
     {"error_logs"}, []),
    ({"name": "client.login.end"}, "sign_in", set(), []),
    ({"name": "client.sign-in.whatever-next"}, "sign_in", set(), []),
    ({"name": "client.webexapp.launched"}, "setup", set(), []),
    ({"name": "client.wdm.device-registration.request"}, "setup", set(), []),
    ({"name": "client.startup.end"}, "app_start", set(), []),
    ({"name": "client.launcher.anything"}, "app_start", set(), []),
    ({"name": "client.exit.app"}, "shutdown", set(), []),
    ({"name": "client.scheduling.initiate"}, "meeting_create", set(), []),
    ({"name": "client.recording.started"}, "collaboration", set(), []),
    ({"name": "client.heartbeat.tick"}, "periodic", set(), []),
    ({"name": "client.network.changed"}, "unknown", set(), []),
]


@pytest.mark.parametrize(("event", "trigger", "categories", "marks"), CA_EVENTS,
                         ids=[f"{e['name']}-{i}" for i, (e, *_rest) in enumerate(CA_EVENTS)])
def test_call_analyzer_event_kinds(ruleset: RuleSet, event: dict[str, Any], trigger: str,
                                   categories: set[str], marks: list[str]) -> None:
    result = classify(ruleset, METRICS, ca_batch(event))
    assert result.rule_ids == ["webex-ca-diagnostic-events"]
    assert [e.name for e in result.events] == [event["name"]]
    assert result.trigger == trigger
    assert result.trigger_source == ("rule" if trigger != "unknown" else "none")
    assert categories <= set(result.categories)
    assert "usage_statistics" in result.categories  # the event name itself
    assert result.marks == marks
    assert (result.purpose, result.party, result.organization) == (
        "telemetry", "first", "Cisco Webex")


# (url, method, body, headers, rule id, trigger, purpose, categories that must be present)
ENDPOINTS = [
    (METRICS, "POST", {"metrics": [{"metricName": "js_sdk_join_failures",
                                    "fields": {"reason": "x", "stack": "at y"}}]}, None,
     "webex-legacy-client-metrics", "error", "telemetry", {"error_logs"}),
    (METRICS, "POST", {"metrics": [{"type": ["business"], "eventPayload": {"key": "callEnd"}}]},
     None, "webex-business-metrics", "meeting_leave", "telemetry", {"usage_statistics"}),
    ("https://metrics-a.wbx2.com/metrics/api/v1/metrics", "POST",
     {"metrics": [{"name": "callEnd", "data": {"clientCallDuration": 61}}]}, None,
     "webex-native-metrics", "meeting_leave", "telemetry", {"meeting_metadata"}),
    (METRICS + "-prelogin", "POST", ca_batch({"name": "client.login.end"}),
     {"x-prelogin-userid": "pre-1"}, "webex-ca-diagnostic-events", "sign_in", "telemetry",
     {"identifiers"}),
    (METRICS + "?alias=true", "POST", {}, {"x-prelogin-userid": "pre-1"},
     "webex-metrics-alias", "sign_in", "telemetry", {"identifiers"}),
    ("https://ut.example.net/metric/v2", "POST",
     {"metrics": [{"type": "webrtc", "userId": "u", "data": [{"name": "stats-report"}]}]},
     {"appId": "FFB51ED5-4319-4C55-8303-B1F2FCCDE231", "type": "webrtcMedia"},
     "webex-rtc-metrics", "in_meeting", "telemetry", {"identifiers"}),
    ("https://client-logs-a.wbx2.com/api/v1/logs/urls", "POST", {"file": "a.txt"}, None,
     "webex-log-upload-request", "meeting_leave", "telemetry", {"error_logs"}),
    ("https://client-logs-a.wbx2.com/api/v1/logs/meta", "POST",
     {"userId": "u", "data": [{"key": "callStart", "value": "1"}]}, None,
     "webex-log-upload-meta", "meeting_leave", "telemetry", {"meeting_metadata", "identifiers"}),
    ("https://wdm-a.wbx2.com/wdm/api/v1/devices", "POST", {"name": "Jane's Mac"}, None,
     "webex-wdm-device-register", "setup", "service", {"device_info"}),
    ("https://ds.ciscospark.com/v1/region", "GET", None, None,
     "webex-region-lookup", "setup", "service", {"network_info"}),
    ("https://u2c.wbx2.com/u2c/api/v1/limited/catalog?format=hostmap", "GET", None, None,
     "webex-u2c-catalog", "app_start", "service", set()),
    ("https://locus-a.wbx2.com/locus/api/v1/loci/l1/participant", "POST",
     {"correlationId": "c"}, None, "webex-locus-join", "meeting_join", "service",
     {"identifiers"}),
    ("https://locus-a.wbx2.com/locus/api/v1/loci/l1/participant/p1/leave", "PUT", None, None,
     "webex-locus-leave", "meeting_leave", "service", set()),
    ("https://conv-a.wbx2.com/conversation/api/v1/activities", "POST",
     {"verb": "post", "object": {"displayName": "secret plan"}}, None,
     "webex-conversation", "collaboration", "service", {"meeting_content"}),
    ("https://idbroker.webex.com/idb/oauth2/v1/access_token", "POST",
     {"grant_type": "authorization_code", "code": "x"}, None,
     "webex-identity", "sign_in", "auth", {"identifiers"}),
]


@pytest.mark.parametrize(("url", "method", "body", "headers", "rule_id", "trigger", "purpose",
                          "categories"), ENDPOINTS, ids=[e[4] + str(i) for i, e in
                                                         enumerate(ENDPOINTS)])
def test_webex_endpoints(ruleset: RuleSet, url: str, method: str, body: Any,
                         headers: dict[str, str] | None, rule_id: str, trigger: str,
                         purpose: str, categories: set[str]) -> None:
    result = classify(ruleset, url, body, method=method, headers=headers)
    assert result.rule_ids == [rule_id]
    assert result.trigger == trigger
    assert result.purpose == purpose
    assert categories <= set(result.categories)


def test_locus_marks(ruleset: RuleSet) -> None:
    join = classify(ruleset, "https://locus-a.wbx2.com/locus/api/v1/loci/l1/participant", {})
    leave = classify(ruleset, "https://locus-a.wbx2.com/locus/api/v1/loci/l1/participant/p/leave",
                     None, method="PUT")
    assert join.marks == ["meeting_join"] and leave.marks == ["meeting_leave"]


def test_every_trigger_is_reachable_in_the_webex_pack(ruleset: RuleSet) -> None:
    webex = [r for r in ruleset.rules if r.pack == "webex"]
    reachable = {case.trigger for rule in webex for case in rule.classify}
    assert reachable >= set(TRIGGERS) - {"unknown"}
    observed = {classify(ruleset, METRICS, ca_batch(event)).trigger
                for event, *_ in CA_EVENTS}
    assert observed == set(TRIGGERS)


def test_a_mixed_batch_takes_the_most_specific_trigger(ruleset: RuleSet) -> None:
    body = ca_batch({"name": "client.mediaquality.event"}, {"name": "client.share.initiated"},
                    {"name": "client.muted"})
    result = classify(ruleset, METRICS, body)
    assert [e.trigger for e in result.events] == ["in_meeting", "screen_share", "in_meeting"]
    assert [e.prefix for e in result.events] == [("metrics", 0), ("metrics", 1), ("metrics", 2)]
    assert result.trigger == "screen_share"
    assert result.marks == ["screen_share_start", "muted"]


def test_one_body_with_diagnostic_and_legacy_items_runs_both_rules(ruleset: RuleSet) -> None:
    body = {"metrics": [{"eventPayload": {"event": {"name": "client.call.leave"}}},
                        {"metricName": "js_sdk_upload_logs_success"}]}
    result = classify(ruleset, METRICS, body)
    assert result.rule_ids == ["webex-ca-diagnostic-events", "webex-legacy-client-metrics"]
    assert [e.name for e in result.events] == ["client.call.leave", "js_sdk_upload_logs_success"]
    assert result.trigger == "meeting_leave"


def test_flows_from_different_vendors_are_each_classified_by_their_own_pack(
        ruleset: RuleSet) -> None:
    batch = [
        (METRICS, ca_batch({"name": "client.share.initiated"}), "webex", "first",
         "Cisco Webex", "telemetry"),
        ("https://o7.ingest.sentry.io/api/1/store/", {"exception": {"values": [{"type": "E"}]}},
         "trackers", "third", "Sentry (Functional Software, Inc.)", "telemetry"),
        ("https://api2.amplitude.com/2/httpapi",
         {"events": [{"event_type": "session_start", "device_id": "d"}]},
         "trackers", "third", "Amplitude", "telemetry"),
        ("https://in.appcenter.ms/logs?api-version=1.0.0", {"logs": [{"type": "startSession"}]},
         "trackers", "third", "Microsoft", "telemetry"),
        ("https://stats.example.org/collect", {"os": "linux", "latency": 4},
         "generic", "third", None, "unknown"),
    ]
    results = [classify(ruleset, url, body, ident=f"f{i}")
               for i, (url, body, *_rest) in enumerate(batch)]
    for result, (url, _body, pack, party, org, purpose) in zip(results, batch, strict=True):
        packs = {r.pack for r in ruleset.rules if r.id in result.rule_ids}
        assert pack in packs, url
        assert "webex" not in packs or pack == "webex", url
        assert (result.party, result.organization, result.purpose) == (party, org, purpose), url
    # third-party flows also get the generic field-name heuristics
    assert "generic-key-heuristics" in results[2].rule_ids
    assert "generic-key-heuristics" not in results[0].rule_ids
    assert {"device_info", "performance_metrics"} <= set(results[4].categories)


@pytest.mark.parametrize(("host", "party", "organization"), [
    ("metrics-a.wbx2.com", "first", "Cisco Webex"),
    ("deep.sub.webex.com", "first", "Cisco Webex"),
    ("webex.com.evil-example.org", "third", None),
    ("firebaselogging-pa.googleapis.com", "third", "Google"),
    ("storage.googleapis.com", "third", None),
    ("sessions.bugsnag.com", "third", "Bugsnag (SmartBear)"),
    ("10.1.2.3", "unknown", None),
    ("localhost", "unknown", None),
    ("[::1]", "unknown", None),
])
def test_party_attribution(ruleset: RuleSet, host: str, party: str,
                           organization: str | None) -> None:
    result = classify(ruleset, f"https://{host}/x", {"a": 1})
    assert (result.party, result.organization) == (party, organization)


def test_a_vendor_rule_on_the_path_never_makes_an_ip_host_first_party(ruleset: RuleSet) -> None:
    result = classify(ruleset, "http://127.0.0.1:8080/metrics/api/v1/clientmetrics",
                      ca_batch({"name": "client.call.initiated"}))
    assert result.rule_ids[0] == "webex-ca-diagnostic-events"  # the rule still explains it
    assert (result.party, result.organization, result.vendor_pack) == ("unknown", None, None)


def test_absent_paths_never_match_and_nulls_are_present(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text("""\
pack: absent
vendor: A
rules:
  - id: absent-rule
    title: t
    purpose: telemetry
    match: {filter: "~all"}
    classify:
      - {field: $.flag, equals: null, trigger: error}
      - {field: $.missing, trigger: setup}
      - {field: "$.items[*].kind", matches: "^sh", trigger: screen_share}
    fields:
      $.missing: personal_data
      $.flag: device_info
      $.empty: meeting_content
""")
    rs = load_rules([pack], include_builtin=False)
    none_flag = classify(rs, "https://a.example.org/", {"flag": None, "empty": {}})
    assert (none_flag.trigger, none_flag.categories) == ("error", ["device_info"])
    nothing = classify(rs, "https://a.example.org/", {"other": 1, "empty": []})
    assert (nothing.trigger, nothing.trigger_source, nothing.categories) == (
        "unknown", "none", [])
    share = classify(rs, "https://a.example.org/", {"items": [{"kind": "x"}, {"kind": "share"}]})
    assert share.trigger == "screen_share"


def test_uncompiled_paths_use_jsonpath_ng_on_the_tree(ruleset: RuleSet) -> None:
    rule = next(r for r in ruleset.rules if r.id == "webex-log-upload-meta")
    fallback = [f for f in rule.fields if f.ref.path and f.ref.path.steps is None]
    assert fallback, "the pack should exercise the fallback"
    with_start = classify(ruleset, "https://client-logs-a.wbx2.com/api/v1/logs/meta",
                          {"data": [{"key": "callStart", "value": "1"}]})
    without = classify(ruleset, "https://client-logs-a.wbx2.com/api/v1/logs/meta",
                       {"data": [{"key": "locusId", "value": "1"}]})
    assert "meeting_metadata" in with_start.categories
    assert "meeting_metadata" not in without.categories


def test_filters_read_the_request_fields_not_the_url_text(ruleset: RuleSet) -> None:
    obs = make_obs("https://elsewhere.example.org/nothing", None, method="GET")
    obs.host = obs.server_host = "ds.ciscospark.com"
    obs.path = "/v1/region"  # filters see the request line capture kept, not `url`
    assert ruleset.classify(obs, payload_of(obs)).rule_ids == ["webex-region-lookup"]


def test_action_is_the_strongest_of_the_matched_rules(tmp_path: Path) -> None:
    pack = tmp_path / "p.yaml"
    pack.write_text("""\
pack: acts
vendor: A
rules:
  - {id: a1, title: t, purpose: telemetry, action: observe, match: {filter: "~all"}}
  - {id: a2, title: t, purpose: service, action: block, match: {filter: "~m POST"}}
  - {id: a3, title: t, purpose: auth, action: redact, match: {filter: "~all"}}
""")
    rs = load_rules([pack], include_builtin=False)
    post = classify(rs, "https://a.example.org/", {})
    get = classify(rs, "https://a.example.org/", None, method="GET")
    assert (post.action, post.purpose, post.rule_ids) == ("block", "telemetry", ["a1", "a2", "a3"])
    assert get.action == "redact"


def test_specificity_order_covers_the_vocabulary() -> None:
    assert sorted(TRIGGER_SPECIFICITY) == sorted(TRIGGERS)
    assert most_specific(["periodic", None, "in_meeting"]) == "in_meeting"
    assert most_specific(["meeting_join", "error"]) == "error"
    assert most_specific([None]) is None
