"""Phases, markers, trigger attribution, mute severity, opt-out and formatting."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from builders import ROOT
from phonehome.analysis.timeline import (
    LABEL_TRIGGERS,
    MARKER_LABELS,
    MUTED_AUDIO_REASON,
    Timeline,
    TimelineSettings,
    format_timeline,
    marker_from_dict,
    marker_to_dict,
)
from phonehome.model import Marker
from timeline_support import apply_timeline, collect_markers

T0 = 1_700_000_000.0
METRICS = "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics"


def flow(
    fid: str,
    at: float,
    *,
    trigger: str = "unknown",
    purpose: str = "telemetry",
    url: str = METRICS,
    method: str = "POST",
    events: tuple[str, ...] = (),
    marks: tuple[str, ...] = (),
    findings: tuple[str, ...] = (),
    categories: tuple[str, ...] = ("usage_statistics",),
    size: int = 500,
    rule: str = "webex-test",
) -> dict[str, Any]:
    return {
        "id": fid,
        "timestamp": T0 + at,
        "method": method,
        "url": url,
        "host": url.split("/")[2],
        "purpose": purpose,
        "party": "first",
        "organization": "Cisco",
        "bytes_out": size,
        "rule_ids": [rule],
        "events": [
            {"name": name, "rule_id": rule, "trigger": None, "categories": list(categories)}
            for name in events
        ],
        "trigger": trigger,
        "trigger_source": "rule" if trigger != "unknown" else "none",
        "categories": list(categories),
        "findings": [
            {
                "type": kind,
                "category": "personal_data" if kind != "audio_level" else "meeting_content",
                "severity": "medium",
                "location": "$.x",
                "encoding": None,
                "detector": kind,
                "evidence": "…",
            }
            for kind in findings
        ],
        "marks": list(marks),
        "source": "test.mitm",
        "phase": None,
    }


def auditor(at: float, label: str) -> Marker:
    return Marker(T0 + at, label)


def by_id(flows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["id"]: f for f in flows}


def phase_spans(timeline: Timeline) -> list[tuple[str, float, float]]:
    return [(p["name"], p["start"] - T0, p["end"] - T0) for p in timeline.phases]


# --- markers ------------------------------------------------------------------


def test_marker_labels_are_the_known_ones() -> None:
    assert MARKER_LABELS == (
        "setup",
        "sign_in",
        "idle",
        "meeting_join",
        "meeting_leave",
        "screen_share_start",
        "screen_share_stop",
        "muted",
        "unmuted",
        "opt_out",
    )


@pytest.mark.parametrize(
    ("label", "trigger"),
    [
        ("setup", "setup"),
        ("sign_in", "sign_in"),
        ("meeting_join", "meeting_join"),
        ("meeting_leave", "meeting_leave"),
        ("screen_share_start", "screen_share"),
        ("screen_share_stop", "screen_share"),
        ("muted", "in_meeting"),
        ("unmuted", "in_meeting"),
        ("meeting_create", "meeting_create"),
        ("collaboration", "collaboration"),
        ("idle", None),
        ("opt_out", None),
        ("opened_settings", None),
        ("unknown", None),
    ],
)
def test_label_triggers(label: str, trigger: str | None) -> None:
    assert LABEL_TRIGGERS.get(label) == trigger


def test_markers_from_rules_events_and_auditor() -> None:
    flows = [
        flow("join", 10, trigger="meeting_join", marks=("meeting_join",), rule="locus-join"),
        flow("mute", 20, trigger="in_meeting", events=("client.muted",), rule="ca-events"),
        # a rule that marks `muted` on the same flow whose event also says so: one marker
        flow("mute2", 30, events=("client.muted",), marks=("muted",), rule="ca-events"),
        flow("unmute", 40, events=("client.unmuted",), rule="ca-events"),
        flow("bad", 45, marks=("Not A Label!",)),
    ]
    markers = collect_markers(flows, [auditor(5, "meeting_join"), auditor(50, "free.label:1")])
    assert [(m.timestamp - T0, m.label, m.source, m.flow_id) for m in markers] == [
        (5, "meeting_join", "auditor", None),
        (10, "meeting_join", "rule:locus-join", "join"),
        (20, "muted", "rule:ca-events", "mute"),
        (30, "muted", "rule:ca-events", "mute2"),
        (40, "unmuted", "rule:ca-events", "unmute"),
        (50, "free.label:1", "auditor", None),
    ]


def test_marker_dict_round_trip() -> None:
    marker = Marker(T0 + 1.5, "meeting_join", "rule:locus-join", "f1")
    assert marker_from_dict(marker_to_dict(marker)) == marker
    assert marker_from_dict({"timestamp": 3, "label": "opt_out"}) == Marker(3.0, "opt_out")


@pytest.mark.parametrize(
    "data",
    [
        {"label": "x"},
        {"timestamp": 1},
        {"timestamp": 1, "label": "Bad Label"},
        {"timestamp": None, "label": "x"},
    ],
)
def test_marker_from_dict_rejects_bad_input(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        marker_from_dict(data)


# --- phases -------------------------------------------------------------------


def test_empty_input() -> None:
    timeline = apply_timeline([], [])
    assert timeline == Timeline()
    assert timeline.to_dict() == {"markers": [], "phases": [], "cadence": [], "after_opt_out": []}


def test_lifecycle_from_rule_triggers() -> None:
    flows = [
        flow("reg", 0, trigger="setup", purpose="service"),
        flow("x1", 3),
        flow("login", 10, trigger="sign_in", purpose="auth"),
        flow("x2", 15),
        flow("x3", 40),  # within 30 s of x2: still part of the sign-in flurry
        flow("hb", 200, trigger="periodic"),
        flow("hb2", 260, trigger="periodic"),
    ]
    timeline = apply_timeline(flows, [])
    assert phase_spans(timeline) == [("setup", 0, 10), ("sign_in", 10, 200), ("idle", 200, 260)]
    got = by_id(flows)
    assert [got[i]["phase"] for i in ("reg", "x1", "login", "x2", "x3", "hb")] == [
        "setup",
        "setup",
        "sign_in",
        "sign_in",
        "sign_in",
        "idle",
    ]
    assert (got["x1"]["trigger"], got["x1"]["trigger_source"]) == ("setup", "context")
    assert (got["x3"]["trigger"], got["x3"]["trigger_source"]) == ("sign_in", "context")


def test_lifecycle_from_auditor_markers() -> None:
    flows = [flow("a", 1), flow("b", 61), flow("c", 130), flow("d", 400)]
    markers = [auditor(0, "setup"), auditor(60, "sign_in"), auditor(120, "idle")]
    timeline = apply_timeline(flows, markers, TimelineSettings(marker_window_s=5))
    assert phase_spans(timeline) == [("setup", 0, 60), ("sign_in", 60, 120), ("idle", 120, 400)]
    assert [f["phase"] for f in flows] == ["setup", "sign_in", "idle", "idle"]
    assert [f["trigger_source"] for f in flows] == ["marker", "marker", "none", "none"]
    assert [f["trigger"] for f in flows] == ["setup", "sign_in", "unknown", "unknown"]


def test_capture_starting_mid_session_is_idle() -> None:
    flows = [flow("a", 0, trigger="periodic"), flow("b", 100)]
    timeline = apply_timeline(flows, [])
    assert phase_spans(timeline) == [("idle", 0, 100)]
    assert by_id(flows)["b"]["trigger"] == "unknown"


def test_meeting_share_and_mute_phases() -> None:
    flows = [
        flow("login", 0, trigger="sign_in", purpose="auth"),
        flow("hb", 50, trigger="periodic"),
        flow("join", 100, trigger="meeting_join", marks=("meeting_join",)),
        flow("m1", 150),
        flow("mute", 200, trigger="in_meeting", events=("client.muted",)),
        flow("m2", 230, findings=("audio_level",)),
        flow("unmute", 260, trigger="in_meeting", events=("client.unmuted",)),
        flow("m3", 290, findings=("audio_level",)),
        flow("share", 300, trigger="screen_share", marks=("screen_share_start",)),
        flow("m4", 330),
        flow("leave", 400, trigger="meeting_leave", marks=("meeting_leave",)),
        flow("after", 500, trigger="periodic"),
    ]
    timeline = apply_timeline(flows, [])
    assert phase_spans(timeline) == [
        ("sign_in", 0, 50),
        ("idle", 50, 100),
        ("meeting", 100, 400),
        ("mute", 200, 260),
        ("screen_share", 300, 400),  # never stopped: ends with the meeting
        ("idle", 400, 500),
    ]
    got = by_id(flows)
    assert {k: got[k]["phase"] for k in got} == {
        "login": "sign_in",
        "hb": "idle",
        "join": "meeting",
        "m1": "meeting",
        "mute": "mute",
        "m2": "mute",
        "unmute": "mute",
        "m3": "meeting",
        "share": "screen_share",
        "m4": "screen_share",
        "leave": "screen_share",
        "after": "idle",
    }
    assert (got["m1"]["trigger"], got["m1"]["trigger_source"]) == ("in_meeting", "context")
    assert (got["m4"]["trigger"], got["m4"]["trigger_source"]) == ("screen_share", "context")
    # audio level while muted is high; outside the mute phase it is left alone
    assert got["m2"]["findings"][0]["severity"] == "high"
    assert got["m2"]["findings"][0]["reason"] == MUTED_AUDIO_REASON
    assert got["m3"]["findings"][0]["severity"] == "medium"
    assert "reason" not in got["m3"]["findings"][0]


def test_repeated_join_marks_open_one_meeting() -> None:
    flows = [flow("join", 12, trigger="meeting_join", marks=("meeting_join",)), flow("x", 30)]
    markers = [
        auditor(10, "meeting_join"),
        auditor(100, "meeting_leave"),
        auditor(101, "meeting_leave"),
    ]
    timeline = apply_timeline(flows, markers)
    assert [p for p in phase_spans(timeline) if p[0] == "meeting"] == [("meeting", 10, 100)]


def test_two_meetings_split_idle() -> None:
    flows = [flow(f"hb{k}", 60 * k, trigger="periodic") for k in range(11)]
    markers = [
        auditor(100, "meeting_join"),
        auditor(200, "meeting_leave"),
        auditor(400, "meeting_join"),
        auditor(500, "meeting_leave"),
    ]
    timeline = apply_timeline(flows, markers)
    assert phase_spans(timeline) == [
        ("idle", 0, 100),
        ("meeting", 100, 200),
        ("idle", 200, 400),
        ("meeting", 400, 500),
        ("idle", 500, 600),
    ]


def test_mute_from_auditor_markers_and_unclosed_mute_ends_with_meeting() -> None:
    flows = [
        flow("join", 0, trigger="meeting_join", marks=("meeting_join",)),
        flow("a", 50, findings=("audio_level", "email")),
        flow("leave", 100, trigger="meeting_leave", marks=("meeting_leave",)),
        flow("b", 150, findings=("audio_level",)),
    ]
    timeline = apply_timeline(flows, [auditor(40, "muted")])
    assert ("mute", 40, 100) in phase_spans(timeline)
    got = by_id(flows)
    assert [f["severity"] for f in got["a"]["findings"]] == ["high", "medium"]
    assert got["b"]["findings"][0]["severity"] == "medium"


def test_phase_table_counts() -> None:
    flows = [
        flow(
            "join",
            0,
            trigger="meeting_join",
            marks=("meeting_join",),
            size=1000,
            categories=("meeting_metadata", "identifiers"),
        ),
        flow("q", 60, size=2000, categories=("performance_metrics",)),
        flow(
            "leave",
            120,
            trigger="meeting_leave",
            marks=("meeting_leave",),
            size=300,
            categories=("meeting_metadata",),
        ),
    ]
    timeline = apply_timeline(flows, [])
    (meeting,) = [p for p in timeline.phases if p["name"] == "meeting"]
    assert meeting == {
        "name": "meeting",
        "start": T0,
        "end": T0 + 120,
        "duration_s": 120.0,
        "opened_by": "rule:webex-test",
        "flows": 3,
        "bytes": 3300,
        "categories": ["identifiers", "meeting_metadata", "performance_metrics"],
        "triggers": {"in_meeting": 1, "meeting_join": 1, "meeting_leave": 1},
    }


# --- trigger attribution ----------------------------------------------------------


@pytest.mark.parametrize(
    ("markers", "at", "window", "expected"),
    [
        ([(100, "meeting_join")], 150, 120, ("meeting_join", "marker")),
        ([(100, "meeting_join")], 100, 120, ("meeting_join", "marker")),  # same instant
        # outside the window: the meeting the marker opened still gives context
        ([(100, "meeting_join")], 221, 120, ("in_meeting", "context")),
        ([(100, "meeting_create")], 221, 120, ("unknown", "none")),
        ([(100, "meeting_create")], 221, 300, ("meeting_create", "marker")),
        ([(100, "meeting_create")], 90, 120, ("unknown", "none")),  # marker after the flow
        # the latest marker names no trigger: no looking further back, the phase decides
        (
            [(100, "screen_share_start"), (140, "opened_settings")],
            150,
            120,
            ("screen_share", "context"),
        ),
        ([(100, "meeting_create"), (140, "opened_settings")], 150, 120, ("unknown", "none")),
        ([(100, "opt_out")], 150, 120, ("unknown", "none")),
        ([(100, "meeting_create"), (130, "sign_in")], 150, 120, ("sign_in", "marker")),
        ([(100, "collaboration")], 101, 120, ("collaboration", "marker")),
    ],
)
def test_marker_attribution(
    markers: list[tuple[float, str]], at: float, window: float, expected: tuple[str, str]
) -> None:
    flows = [flow("hb", 0, trigger="periodic"), flow("x", at)]
    apply_timeline(
        flows, [auditor(t, label) for t, label in markers], TimelineSettings(marker_window_s=window)
    )
    got = by_id(flows)["x"]
    assert (got["trigger"], got["trigger_source"]) == expected


def test_rule_markers_do_not_attribute_by_window() -> None:
    # only the auditor's markers lend their trigger; a rule's mark opens a phase instead
    flows = [flow("c", 0, trigger="meeting_create", marks=("meeting_create",)), flow("x", 10)]
    apply_timeline(flows, [])
    assert by_id(flows)["x"]["trigger"] == "unknown"


def test_rule_triggers_are_never_overridden() -> None:
    flows = [
        flow("join", 0, trigger="meeting_join", marks=("meeting_join",)),
        flow("e", 10, trigger="error"),
        *[flow(f"q{k}", 20 + 30 * k, trigger="collaboration") for k in range(8)],
    ]
    apply_timeline(flows, [auditor(5, "screen_share_start")])
    assert [f["trigger"] for f in flows] == ["meeting_join", "error"] + ["collaboration"] * 8
    assert {f["trigger_source"] for f in flows} == {"rule"}


@pytest.mark.parametrize(("in_meeting", "expected"), [(False, "periodic"), (True, "in_meeting")])
def test_periodic_stream_gets_cadence_trigger(in_meeting: bool, expected: str) -> None:
    flows = [flow(f"hb{k}", 60 * k, url="https://wdm.example/heartbeat") for k in range(10)]
    markers = [auditor(-1, "meeting_join")] if in_meeting else []
    # a share marker right before beats must not re-label the stream
    markers.append(auditor(119, "screen_share_start"))
    apply_timeline(flows, markers)
    assert {(f["trigger"], f["trigger_source"]) for f in flows} == {(expected, "cadence")}


def test_irregular_flows_are_not_periodic() -> None:
    rng = random.Random(5)
    flows, elapsed = [], 0.0
    for k in range(20):
        elapsed += rng.expovariate(1 / 90)
        flows.append(flow(f"r{k}", 1000 + elapsed, url="https://x.example/ping"))
    apply_timeline(flows, [])
    assert {f["trigger"] for f in flows} == {"unknown"}


# --- opt-out --------------------------------------------------------------------


def test_after_opt_out_lists_telemetry_only() -> None:
    flows = [
        flow("t1", 0),
        flow("t2", 100),
        flow("auth", 110, trigger="sign_in", purpose="auth"),
        flow("t3", 120, trigger="periodic"),
        flow("svc", 130, purpose="service"),
    ]
    timeline = apply_timeline(flows, [auditor(100, "opt_out"), auditor(115, "opt_out")])
    assert timeline.after_opt_out == ["t2", "t3"]
    assert ("opt_out", 100, 130) in phase_spans(timeline)
    assert by_id(flows)["t3"]["phase"] == "opt_out"


def test_no_opt_out_marker_no_list() -> None:
    flows = [flow("t1", 0), flow("t2", 100)]
    assert apply_timeline(flows, [auditor(50, "idle")]).after_opt_out == []


# --- a simulated 25-minute session ---------------------------------------------------


def simulated_session(seed: int) -> tuple[list[dict[str, Any]], list[Marker]]:
    """Setup, sign-in, idle heartbeats, a meeting with reports at 60 s and 30 s,
    a mute window, a screen share, leave with a log upload, idle, shutdown."""
    rng = random.Random(seed)
    flows: list[dict[str, Any]] = []

    def add(fid: str, at: float, **kw: Any) -> None:
        flows.append(flow(fid, at, **kw))

    add("register", 0, trigger="setup", purpose="service", url="https://wdm.example/devices")
    add("launched", 2, events=("client.webexapp.launched",))
    add("login", 10, trigger="sign_in", purpose="auth", url="https://idbroker.example/token")
    add("login-metric", 13, events=("client.login.end",))
    for k in range(1, 25):  # heartbeats every 60 s, all session long
        add(
            f"hb{k}",
            60 * k + rng.uniform(-2, 2),
            url="https://wdm.example/devices/42/hb",
            method="PUT",
            size=rng.randint(180, 200),
        )
    add("create", 290, trigger="meeting_create", purpose="service")
    add(
        "join",
        300,
        trigger="meeting_join",
        purpose="service",
        marks=("meeting_join",),
        url="https://locus.example/loci/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/participant",
    )
    for k in range(1, 15):  # media quality every 60 s while in the meeting
        at = 300 + 60 * k + rng.uniform(-1, 1)
        in_mute = 600 <= at <= 700
        add(
            f"mqe{k}",
            at,
            events=("client.mediaquality.event",),
            size=rng.randint(2400, 2700),
            findings=("audio_level",),
            categories=("performance_metrics",),
        )
        if in_mute:
            flows[-1]["in_mute"] = True
    for k in range(1, 30):  # WebRTC stats every 30 s, a few missed
        if k in (7, 19):
            continue
        add(
            f"rtc{k}",
            315 + 30 * k + rng.uniform(-1, 1),
            events=("js_sdk_webrtc_stats",),
            size=rng.randint(700, 760),
            categories=("performance_metrics",),
        )
    add("mute", 600, trigger="in_meeting", events=("client.muted",))
    add("unmute", 700, trigger="in_meeting", events=("client.unmuted",))
    add("share-ui", 805, events=("client.share.ui",))
    add("layout", 1100, events=("client.layout.changed",))
    add("leave", 1200, trigger="meeting_leave", marks=("meeting_leave",), purpose="service")
    add(
        "log-upload",
        1205,
        url="https://logs.example/upload",
        size=90_000,
        categories=("error_logs",),
    )
    add("bye", 1500, trigger="shutdown")
    markers = [
        auditor(795, "screen_share_start"),
        auditor(900, "screen_share_stop"),
        auditor(1199, "meeting_leave"),
    ]
    flows.sort(key=lambda f: f["timestamp"])
    return flows, markers


@pytest.mark.parametrize("seed", range(5))
def test_simulated_session(seed: int) -> None:
    flows, markers = simulated_session(seed)
    timeline = apply_timeline(flows, markers)
    got = by_id(flows)

    # every telemetry flow ends with a trigger
    unexplained = [
        f["id"] for f in flows if f["purpose"] == "telemetry" and f["trigger"] == "unknown"
    ]
    assert unexplained == []
    assert all(f["trigger_source"] != "none" for f in flows)

    # the 60 s and 30 s streams, each within 10%
    streams = {e["event"]: e for e in timeline.cadence if e["regular"]}
    assert streams["client.mediaquality.event"]["median_interval_s"] == pytest.approx(60, rel=0.1)
    assert streams["client.mediaquality.event"]["phase"] == "meeting"
    assert streams["js_sdk_webrtc_stats"]["median_interval_s"] == pytest.approx(30, rel=0.1)
    (heartbeat,) = [e for e in timeline.cadence if e["event"] is None and e["regular"]]
    assert heartbeat["endpoint"] == "PUT wdm.example/devices/{id}/hb"
    assert heartbeat["median_interval_s"] == pytest.approx(60, rel=0.1)

    # triggers by source
    assert (got["launched"]["trigger"], got["launched"]["trigger_source"]) == ("setup", "context")
    assert got["login-metric"]["trigger"] == "sign_in"
    assert (got["hb2"]["trigger"], got["hb2"]["trigger_source"]) == ("periodic", "cadence")
    assert (got["hb8"]["trigger"], got["hb8"]["trigger_source"]) == ("in_meeting", "cadence")
    assert (got["mqe3"]["trigger"], got["mqe3"]["trigger_source"]) == ("in_meeting", "cadence")
    assert (got["share-ui"]["trigger"], got["share-ui"]["trigger_source"]) == (
        "screen_share",
        "marker",
    )
    assert (got["layout"]["trigger"], got["layout"]["trigger_source"]) == ("in_meeting", "context")
    assert (got["log-upload"]["trigger"], got["log-upload"]["trigger_source"]) == (
        "meeting_leave",
        "marker",
    )

    # audio levels sent while muted, and only those, are high
    for f in flows:
        for finding in f["findings"]:
            assert (finding["severity"] == "high") is bool(f.get("in_mute")), f["id"]
    assert any(f.get("in_mute") for f in flows)

    names = [p["name"] for p in timeline.phases]
    assert names == ["setup", "sign_in", "idle", "meeting", "mute", "screen_share", "idle"]
    assert [m["label"] for m in timeline.markers] == [
        "meeting_join",
        "muted",
        "unmuted",
        "screen_share_start",
        "screen_share_stop",
        "meeting_leave",
        "meeting_leave",
    ]


def test_report_parts_validate_against_schema() -> None:
    schema = json.loads((ROOT / "addons/phonehome/report/report.schema.json").read_text())
    flows, markers = simulated_session(1)
    timeline = apply_timeline(flows, markers)
    for f in flows:
        f.pop("in_mute", None)
    props = schema["properties"]
    validator = jsonschema.Draft202012Validator
    for f in flows:
        validator(props["flows"]["items"]).validate(f)
    for part in ("markers", "phases", "cadence", "after_opt_out"):
        validator(props[part]).validate(timeline.to_dict()[part])


# --- formatting -------------------------------------------------------------------


def render(timeline: Timeline) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None).print(format_timeline(timeline))
    return buffer.getvalue()


def test_format_timeline_shows_triggers_phases_and_streams() -> None:
    flows, markers = simulated_session(2)
    markers.append(auditor(1300, "opt_out"))
    timeline = apply_timeline(flows, markers)
    text = render(timeline)
    for needle in (
        "per trigger",
        "Phases",
        "Regular streams",
        "in_meeting",
        "periodic",
        "screen_share",
        "client.mediaquality.event",
        "js_sdk_webrtc_stats",
        "performance_metrics",
        "after telemetry was disabled",
        "+25:00",
    ):
        assert needle in text, needle
    assert any(ch in text for ch in "▁▂▃▄▅▆▇█")
    trigger_rows = {row["trigger"]: row for row in timeline.triggers}
    assert sum(trigger_rows["in_meeting"]["strip"]) == trigger_rows["in_meeting"]["count"]
    assert trigger_rows["shutdown"]["strip"][-1] == 1


def test_format_timeline_empty() -> None:
    assert "no timeline" in render(apply_timeline([], []))


def test_format_timeline_from_a_report_dict() -> None:
    flows, markers = simulated_session(3)
    timeline = apply_timeline(flows, markers)
    report = {"flows": flows, **timeline.to_dict()}
    assert render(report) == render(timeline)
    # a minimal report (only the schema's required phase keys) still renders
    minimal = {"flows": flows, "phases": [{"name": "meeting", "start": T0, "end": T0 + 90}]}
    text = render(minimal)
    assert "meeting" in text and "1m30s" in text


def test_batched_mute_unmute_follow_event_order() -> None:
    flows = [
        flow("join", 0, trigger="meeting_join", marks=("meeting_join",)),
        # unmuted then muted in one batch; the rule lists its marks in its own order
        flow("batch", 10, events=("client.unmuted", "client.muted"), marks=("muted", "unmuted")),
        flow("a", 20, findings=("audio_level",)),
    ]
    timeline = apply_timeline(flows, [auditor(5, "muted")])
    assert ("mute", 5, 10) in phase_spans(timeline)
    assert ("mute", 10, 20) in phase_spans(timeline)
    assert by_id(flows)["a"]["findings"][0]["severity"] == "high"
