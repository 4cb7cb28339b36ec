"""Cadence: endpoint templates, the period estimator and the beacon score."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phonehome.analysis.timeline import (
    TimelineSettings,
    endpoint_template,
    estimate_cadence,
)
from timeline_support import apply_timeline

T0 = 1_700_000_000.0


# --- endpoint templates -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        (
            "POST",
            "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics",
            "POST metrics-a.wbx2.com/metrics/api/v1/clientmetrics",
        ),
        (
            "post",
            "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics?x=1&y=2",
            "POST metrics-a.wbx2.com/metrics/api/v1/clientmetrics",
        ),
        (
            "PUT",
            "https://locus-a.wbx2.com/locus/api/v1/loci/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/leave",
            "PUT locus-a.wbx2.com/locus/api/v1/loci/{id}/leave",
        ),
        (
            "GET",
            "https://wdm-a.wbx2.com/wdm/api/v1/devices/12345/heartbeat",
            "GET wdm-a.wbx2.com/wdm/api/v1/devices/{id}/heartbeat",
        ),
        (
            "GET",
            "https://cdn.example/a/deadbeefdeadbeefcafe/b",
            "GET cdn.example/a/{id}/b",
        ),
        (
            "GET",
            "https://api.example/s/AbCdEf0123456789XyZ_-abcdefgh",
            "GET api.example/s/{id}",
        ),
        (
            "POST",
            "https://api.example/v2/session-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
            "POST api.example/v2/session-{id}",
        ),
        ("GET", "https://api.example/", "GET api.example/"),
        ("GET", "https://api.example", "GET api.example/"),
        ("GET", "https://api.example/v1/users/me", "GET api.example/v1/users/me"),
        ("GET", "https://api.example/cafe/beef", "GET api.example/cafe/beef"),
    ],
)
def test_endpoint_template(method: str, url: str, expected: str) -> None:
    assert endpoint_template(method, url) == expected


def test_endpoint_template_prefers_given_host() -> None:
    assert endpoint_template("GET", "https://10.0.0.1/x/7", "metrics.example") == (
        "GET metrics.example/x/{id}"
    )


# --- estimator: table of hand-made streams ----------------------------------


def _stream(
    period: float,
    beats: int,
    *,
    jitter: float = 0.0,
    missed: tuple[int, ...] = (),
    bursts: tuple[int, ...] = (),
    seed: int = 7,
) -> list[float]:
    rng = random.Random(seed)
    times = [
        T0 + k * period + rng.uniform(-jitter, jitter) * period
        for k in range(beats)
        if k not in missed
    ]
    return sorted(times + [times[i] + 0.01 * period for i in bursts])


@pytest.mark.parametrize(
    ("name", "times", "period"),
    [
        ("clean 60 s", _stream(60, 20), 60),
        ("clean 5 s", _stream(5, 40), 5),
        ("clean 300 s", _stream(300, 8), 300),
        ("jitter 5%", _stream(60, 30, jitter=0.05), 60),
        ("missed beats", _stream(30, 30, missed=(3, 4, 10, 17, 22, 23)), 30),
        ("bursts", _stream(30, 30, bursts=(2, 9, 15)), 30),
        ("everything", _stream(45, 40, jitter=0.04, missed=(5, 6, 20, 31), bursts=(1, 12)), 45),
        ("unsorted input", list(reversed(_stream(60, 12))), 60),
    ],
)
def test_estimator_finds_period(name: str, times: list[float], period: float) -> None:
    estimate = estimate_cadence(times, [800.0] * len(times))
    assert estimate is not None, name
    assert estimate.period_s == pytest.approx(period, rel=0.03), name
    assert estimate.regular, (name, estimate)
    assert estimate.count == len(times)


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([], None),
        ([T0], None),
        ([T0, T0 + 60, T0 + 120], None),  # three arrivals: below min_count=4
        ([T0] * 6, None),  # no interval at all
    ],
)
def test_estimator_declines_short_streams(times: list[float], expected: None) -> None:
    assert estimate_cadence(times) is expected


def test_estimator_min_count_is_a_parameter() -> None:
    times = [T0, T0 + 60, T0 + 120]
    estimate = estimate_cadence(times, min_count=3)
    assert estimate is not None
    assert estimate.period_s == pytest.approx(60)


def test_estimator_rejects_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        estimate_cadence([T0, T0 + 1, T0 + 2, T0 + 3], [1.0, 2.0])


def test_jitter_is_reported_in_seconds() -> None:
    clean = estimate_cadence(_stream(60, 30))
    jittery = estimate_cadence(_stream(60, 30, jitter=0.03, seed=3))
    assert clean is not None and jittery is not None
    assert clean.jitter_s == pytest.approx(0.0, abs=1e-6)
    assert 0.5 < jittery.jitter_s < 6.0


@pytest.mark.parametrize("seed", range(12))
def test_random_arrivals_are_not_regular(seed: int) -> None:
    rng = random.Random(seed)
    elapsed, times = 0.0, []
    for _ in range(40):
        elapsed += rng.expovariate(1 / 60)
        times.append(T0 + elapsed)
    estimate = estimate_cadence(times, [500.0] * len(times))
    assert estimate is not None
    assert not estimate.regular, estimate


@pytest.mark.parametrize("seed", range(6))
def test_wildly_varying_sizes_lower_the_score(seed: int) -> None:
    times = _stream(60, 30, jitter=0.01, seed=seed)
    rng = random.Random(seed)
    steady = estimate_cadence(times, [1000.0] * len(times))
    wild = estimate_cadence(times, [rng.choice((50.0, 200_000.0)) for _ in times])
    assert steady is not None and wild is not None
    assert wild.size_score < steady.size_score
    assert wild.score < steady.score


# --- estimator: properties ----------------------------------------------------


@st.composite
def periodic_streams(draw: st.DrawFn) -> tuple[float, list[float]]:
    period = draw(st.floats(min_value=5.0, max_value=300.0))
    beats = draw(st.integers(min_value=10, max_value=80))
    jitter = draw(st.floats(min_value=0.0, max_value=0.05))
    offsets = draw(
        st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=beats, max_size=beats)
    )
    missed = draw(st.sets(st.integers(min_value=0, max_value=beats - 1), max_size=int(0.2 * beats)))
    times = [
        T0 + k * period + offsets[k] * jitter * period for k in range(beats) if k not in missed
    ]
    burst_count = draw(st.integers(min_value=0, max_value=3))
    bursts = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=len(times) - 1),
                st.floats(min_value=0.0, max_value=0.02),
            ),
            min_size=burst_count,
            max_size=burst_count,
        )
    )
    times += [times[i] + gap * period for i, gap in bursts]
    return period, sorted(times)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(periodic_streams())
def test_property_period_within_ten_percent(stream: tuple[float, list[float]]) -> None:
    period, times = stream
    estimate = estimate_cadence(times)
    assert estimate is not None
    assert abs(estimate.period_s - period) <= 0.10 * period, (period, estimate)


def _flow(fid: str, at: float, event: str, size: int = 900) -> dict:
    return {
        "id": fid,
        "timestamp": at,
        "method": "POST",
        "url": "https://metrics-a.wbx2.com/metrics/api/v1/clientmetrics",
        "host": "metrics-a.wbx2.com",
        "purpose": "telemetry",
        "party": "first",
        "bytes_out": size,
        "rule_ids": ["webex-clientmetrics"],
        "events": [
            {"name": event, "rule_id": "webex-clientmetrics", "trigger": None, "categories": []}
        ],
        "trigger": "unknown",
        "trigger_source": "none",
        "categories": ["performance_metrics"],
        "findings": [],
        "marks": [],
        "phase": None,
    }


@settings(max_examples=60, deadline=None)
@given(
    st.floats(min_value=0.0, max_value=0.03),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.integers(min_value=20, max_value=40),
)
def test_property_two_streams_share_an_endpoint(jitter: float, seed: int, minutes: int) -> None:
    rng = random.Random(seed)
    flows = []
    for k in range(minutes):
        at = T0 + 60 * k + rng.uniform(-jitter, jitter) * 60
        flows.append(_flow(f"mqe{k}", at, "client.mediaquality.event", rng.randint(2400, 2600)))
    for k in range(2 * minutes):
        if rng.random() < 0.1:  # a missed beat now and then
            continue
        at = T0 + 7 + 30 * k + rng.uniform(-jitter, jitter) * 30
        flows.append(_flow(f"rtc{k}", at, "js_sdk_webrtc_stats", rng.randint(700, 760)))
    flows.sort(key=lambda f: f["timestamp"])
    timeline = apply_timeline(flows, [])
    found = {entry["event"]: entry for entry in timeline.cadence}
    assert set(found) == {"client.mediaquality.event", "js_sdk_webrtc_stats"}
    assert found["client.mediaquality.event"]["median_interval_s"] == pytest.approx(60, rel=0.1)
    assert found["js_sdk_webrtc_stats"]["median_interval_s"] == pytest.approx(30, rel=0.1)
    assert all(entry["regular"] for entry in found.values())
    assert {e["endpoint"] for e in found.values()} == {
        "POST metrics-a.wbx2.com/metrics/api/v1/clientmetrics"
    }


def test_batched_flow_counts_for_each_event() -> None:
    flows = []
    for k in range(10):
        flow = _flow(f"b{k}", T0 + 30 * k, "js_sdk_webrtc_stats")
        if k % 2 == 0:  # every other flush also carries the 60 s report
            flow["events"].append(
                {
                    "name": "client.mediaquality.event",
                    "rule_id": "r",
                    "trigger": None,
                    "categories": [],
                }
            )
        flows.append(flow)
    timeline = apply_timeline(flows, [])
    found = {entry["event"]: entry for entry in timeline.cadence}
    assert found["js_sdk_webrtc_stats"]["count"] == 10
    assert found["js_sdk_webrtc_stats"]["median_interval_s"] == pytest.approx(30)
    assert found["client.mediaquality.event"]["count"] == 5
    assert found["client.mediaquality.event"]["median_interval_s"] == pytest.approx(60)


@pytest.mark.parametrize(("count", "claimed"), [(3, False), (4, True), (8, True)])
def test_min_cadence_count_setting(count: int, claimed: bool) -> None:
    flows = [_flow(f"f{k}", T0 + 60 * k, "client.mediaquality.event") for k in range(count)]
    timeline = apply_timeline(flows, [], TimelineSettings(min_cadence_count=4))
    assert bool(timeline.cadence) is claimed


def test_cadence_entry_fields() -> None:
    flows = [_flow(f"f{k}", T0 + 60 * k, "client.mediaquality.event") for k in range(10)]
    (entry,) = apply_timeline(flows, []).cadence
    assert entry == {
        "endpoint": "POST metrics-a.wbx2.com/metrics/api/v1/clientmetrics",
        "event": "client.mediaquality.event",
        "median_interval_s": pytest.approx(60),
        "jitter_s": pytest.approx(0),
        "count": 10,
        "score": entry["score"],
        "regular": True,
        "phase": "idle",
    }
    assert 0.9 < entry["score"] <= 1.0
