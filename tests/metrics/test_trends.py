"""Trends: least-squares slope, direction, EWMA anomalies."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging.metrics.trends import ewma_anomalies, least_squares_slope, trend


@settings(max_examples=80, deadline=None)
@given(
    st.floats(-1e3, 1e3, allow_nan=False),
    st.floats(-1e3, 1e3, allow_nan=False),
    st.integers(2, 60),
)
def test_slope_of_a_line_is_exact(a: float, b: float, n: int) -> None:
    """Points on ``a + b*t`` give slope ``b``."""
    points = [(10.0 * i, a + b * 10.0 * i) for i in range(n)]
    assert least_squares_slope(points) == pytest.approx(b, rel=1e-6, abs=1e-6)


def test_slope_needs_two_distinct_times() -> None:
    """Fewer than two points, or one timestamp, give a zero slope."""
    assert least_squares_slope([]) == 0.0
    assert least_squares_slope([(1.0, 5.0)]) == 0.0
    assert least_squares_slope([(1.0, 5.0), (1.0, 9.0)]) == 0.0


@pytest.mark.parametrize(
    ("values", "direction"),
    [
        ([1.0, 2.0, 3.0, 4.0], "increasing"),
        ([4.0, 3.0, 2.0, 1.0], "decreasing"),
        ([2.0, 2.01, 1.99, 2.0], "stable"),
        ([0.0, 0.0, 0.0], "stable"),
    ],
)
def test_direction(values: list[float], direction: str) -> None:
    """Changes within 5% of the mean are stable; larger ones have a direction."""
    points = [(10.0 * i, v) for i, v in enumerate(values)]
    assert trend(points)["direction"] == direction


def test_a_spike_is_flagged_against_the_baseline() -> None:
    """One value far above a noisy-but-steady baseline is an anomaly; the others are not."""
    values = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 9.0, 1.0]
    points = [(10.0 * i, v) for i, v in enumerate(values)]
    anomalies = ewma_anomalies(points)
    assert [a["timestamp"] for a in anomalies] == [70.0]
    assert anomalies[0]["value"] == 9.0
    assert anomalies[0]["score"] > 3.0


def test_flat_baseline_flags_any_change() -> None:
    """Against a perfectly flat baseline, a change is an anomaly with an infinite score."""
    points = [(float(i), 5.0) for i in range(6)] + [(6.0, 6.0)]
    anomalies = ewma_anomalies(points)
    assert len(anomalies) == 1
    assert math.isinf(anomalies[0]["score"])


def test_constant_series_has_no_anomalies() -> None:
    """A constant series never raises a flag."""
    assert ewma_anomalies([(float(i), 3.0) for i in range(50)]) == []
    assert ewma_anomalies([]) == []


def test_trend_reports_point_count() -> None:
    """The trend says how many points it is based on."""
    result = trend([(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)])
    assert result["points"] == 3
    assert result["slope"] == pytest.approx(0.1)
