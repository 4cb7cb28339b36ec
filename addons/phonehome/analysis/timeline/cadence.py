"""Cadence: how regularly one kind of request repeats (pure functions over timestamps
and sizes, robust to jitter, missed beats and bursts; see `estimate_cadence`).
"""

from __future__ import annotations

import functools
import itertools
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from ...urls import split_url

__all__ = [
    "CadenceEstimate",
    "estimate_cadence",
    "endpoint_template",
    "REGULAR_SCORE",
]

REGULAR_SCORE = 0.6
"""A stream whose beacon score is above this is called regular."""

_BURST_FRACTION = 0.5  # arrivals closer than this × the typical interval are one burst
_MAX_BEATS = 4  # an interval longer than this many periods is a pause, not missed beats
_FIT_TOLERANCE = 0.25  # |interval - k·period| within this × period counts as on the beat
_SPREAD_SCALE = 0.3  # relative MAD of this size scores 0 for intervals
_CLOSE_SCALE = 0.2  # an interval this far (× period) off the beat scores 0
_SIZE_SPREAD_SCALE = 1.0  # sizes vary more (batches), so be lenient
_MAD_TO_SIGMA = 1.4826

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LONG_HEX = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{16,}(?![0-9A-Za-z])")
_DIGITS = re.compile(r"(?<![A-Za-z])\d+(?![A-Za-z])")
_TOKEN = re.compile(r"^(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{24,}$")


def _template_segment(segment: str) -> str:
    if _TOKEN.match(segment) and not _UUID.search(segment):
        return "{id}"
    segment = _UUID.sub("{id}", segment)
    segment = _LONG_HEX.sub("{id}", segment)
    return _DIGITS.sub("{id}", segment)


@functools.lru_cache(maxsize=4096)  # one per endpoint, read by the timeline and the tally
def endpoint_template(method: str, url: str, host: str = "") -> str:
    """`POST host/path` with ids in the path replaced by `{id}`.

    UUIDs, hex runs of 16+ characters, digit runs and long opaque tokens
    become `{id}`; the query string is dropped.
    """
    parts = split_url(url)
    host = host or parts.host.lower()
    path = "/".join(_template_segment(segment) for segment in parts.path.split("/"))
    return f"{method.upper()} {host}{path or '/'}"


@dataclass(frozen=True, slots=True)
class CadenceEstimate:
    period_s: float
    """Estimated period (seconds)."""
    jitter_s: float
    """Robust spread of the on-beat intervals around k·period (1.4826 × MAD)."""
    count: int
    """Arrivals before folding bursts."""
    score: float
    """Beacon score, 0..1."""
    regular: bool
    interval_score: float
    size_score: float


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        pos = q * (n - 1)
        low = int(pos)
        high = min(low + 1, n - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)

    return at(0.25), at(0.5), at(0.75)


def _skew_score(values: Sequence[float]) -> float:
    """1 − |Bowley skewness|: 1 for symmetric, 0 for one-sided."""
    if len(values) < 3:
        return 1.0
    q1, q2, q3 = _quartiles(values)
    spread = q3 - q1
    if spread <= 1e-12 * max(1.0, abs(q2)):
        return 1.0
    return max(0.0, 1.0 - abs((q3 + q1 - 2 * q2) / spread))


def _mad(values: Sequence[float]) -> float:
    centre = median(values)
    return median(abs(v - centre) for v in values)


def _spread_score(values: Sequence[float], scale: float) -> float:
    """1 when the values sit on their median, falling to 0 at MAD = scale × median."""
    centre = median(values)
    if centre <= 0:
        return 1.0 if _mad(values) == 0 else 0.0
    return max(0.0, 1.0 - (_mad(values) / centre) / scale)


def _gaps(times: Sequence[float]) -> array:
    return array("d", (b - a for a, b in zip(times, itertools.islice(times, 1, None),
                                             strict=False)))


def _fold_bursts(times: array, sizes: array) -> tuple[array, array]:
    """Fold arrivals much closer than the typical interval into the one before."""
    kept_t, kept_s = times, sizes
    for _ in range(3):
        positive = array("d", (g for g in _gaps(kept_t) if g > 0))
        if not positive:
            return kept_t[:1], kept_s[:1]
        threshold = _BURST_FRACTION * median(positive)
        del positive
        new_t, new_s = array("d", kept_t[:1]), array("d", kept_s[:1])
        for t, s in zip(itertools.islice(kept_t, 1, None), itertools.islice(kept_s, 1, None),
                        strict=True):
            if t - new_t[-1] < threshold:
                continue
            new_t.append(t)
            new_s.append(s)
        if len(new_t) == len(kept_t):
            break
        kept_t, kept_s = new_t, new_s
    return kept_t, kept_s


def _fit(gaps: Sequence[float], period: float) -> tuple[array, array]:
    """(intervals, their beats) of every interval that is a whole number of periods."""
    fitted, beats_of = array("d"), array("q")
    for gap in gaps:
        beats = max(1, round(gap / period))
        if beats <= _MAX_BEATS and abs(gap - beats * period) <= _FIT_TOLERANCE * period:
            fitted.append(gap)
            beats_of.append(beats)
    return fitted, beats_of


def _in_order(timestamps: Sequence[float], sizes: Sequence[float]) -> bool:
    """Whether the (time, size) pairs are sorted already (a stream read in time order)."""
    pairs = zip(timestamps, sizes, strict=True)
    following = zip(itertools.islice(timestamps, 1, None), itertools.islice(sizes, 1, None),
                    strict=False)
    return all(a <= b for a, b in zip(pairs, following, strict=False))


def estimate_cadence(
    timestamps: Sequence[float],
    sizes: Sequence[float] | None = None,
    *,
    min_count: int = 4,
    regular_score: float = REGULAR_SCORE,
) -> CadenceEstimate | None:
    """Period, jitter and beacon score of one stream, or None when too short.

    `timestamps` need not be sorted; `sizes` (bytes per arrival) default to 0.
    Built to survive what real telemetry does to a clean period:

    - jitter: each send drifts a little; the period is refined as total time over
      total beats across the clean intervals, so per-send jitter cancels out;
    - missed beats: an interval of about k periods counts as k beats (k <= 4);
      longer gaps (the stream paused, e.g. between two meetings) are left out;
    - bursts: arrivals much closer together than the typical interval (retries,
      duplicates) are folded into the arrival before them.

    The beacon score follows RITA's idea: regular intervals AND regular sizes.
    Intervals are judged by their spread around the median (MAD / median), by
    how close each lands to a whole number of periods, and by the symmetry
    (Bowley skew) of the on-beat jitter; sizes by spread and skew. The score is
    interval × (0.6 + 0.4 × size), so steady sizes alone never make a beacon.
    """
    if len(timestamps) < max(2, min_count):
        return None
    sizes = array("d", sizes) if sizes is not None else array("d", bytes(8 * len(timestamps)))
    if len(sizes) != len(timestamps):
        raise ValueError("timestamps and sizes differ in length")
    if _in_order(timestamps, sizes):
        times, folded_sizes = array("d", timestamps), sizes
    else:
        pairs = sorted(zip(timestamps, sizes, strict=True))
        times, folded_sizes = array("d", (t for t, _ in pairs)), array("d", (s for _, s in pairs))
        del pairs
    times, folded_sizes = _fold_bursts(times, folded_sizes)
    gaps = _gaps(times)
    if not gaps:
        return None

    period = median(gaps)
    if period <= 0:
        return None
    for _ in range(3):
        fitted, beats = _fit(gaps, period)
        if not fitted:
            break
        refined = sum(fitted) / sum(beats)
        if abs(refined - period) <= 1e-9 * period:
            period = refined
            break
        period = refined
    fitted, beats = _fit(gaps, period)

    residuals = array("d", (g - k * period for g, k in zip(fitted, beats, strict=True)))
    jitter = _MAD_TO_SIGMA * _mad(residuals or array("d", [0.0]))
    del residuals

    # interval regularity: the spread of the raw intervals (missed beats are
    # outliers the median ignores), how close each interval lands to a whole
    # number of periods, and how symmetric the on-beat jitter is
    not_paused = array("d", (g for g in gaps if round(g / period) <= _MAX_BEATS)) or gaps
    closeness = sum(
        max(0.0, 1.0 - abs(g - max(1, round(g / period)) * period) / (_CLOSE_SCALE * period))
        for g in not_paused
    )
    per_beat = array("d", (g / k for g, k in zip(fitted, beats, strict=True))) or not_paused
    interval_score = (
        _skew_score(per_beat)
        + 3 * _spread_score(not_paused, _SPREAD_SCALE)
        + 3 * closeness / len(not_paused)
    ) / 7
    positive_sizes = folded_sizes
    if any(positive_sizes):
        size_score = (
            _skew_score(positive_sizes) + _spread_score(positive_sizes, _SIZE_SPREAD_SCALE)
        ) / 2
    else:
        size_score = 1.0
    score = round(interval_score * (0.6 + 0.4 * size_score), 4)
    return CadenceEstimate(
        period_s=period,
        jitter_s=jitter,
        count=len(timestamps),
        score=score,
        regular=score > regular_score and len(fitted) >= 3,
        interval_score=round(interval_score, 4),
        size_score=round(size_score, 4),
    )
