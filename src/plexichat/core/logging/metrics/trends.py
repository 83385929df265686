"""Trends over a metric's points: summary, least-squares slope and direction, EWMA anomalies.

A point is ``(timestamp, value)``: the mean of one time slot for histograms and gauges, the
increase of one slot for counters. ``trend()`` answers three questions about a window:
is it going up or down (the slope of a least-squares line, in units per second, and a
direction that ignores changes smaller than ``flat_fraction`` of the mean over the window), and
which points are unusual (more than ``threshold`` standard deviations from an exponentially
weighted moving average baseline of the points before them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

__all__ = ["Direction", "ewma_anomalies", "least_squares_slope", "trend"]

Direction = Literal["increasing", "decreasing", "stable"]


def least_squares_slope(points: Sequence[tuple[float, float]]) -> float:
    """The slope (value units per second) of the least-squares line through ``points``.

    0.0 for fewer than two points or when every point has the same timestamp.

    Example:
        >>> least_squares_slope([(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)])
        0.1
    """
    n = len(points)
    if n < 2:
        return 0.0
    mean_t = math.fsum(t for t, _ in points) / n
    mean_v = math.fsum(v for _, v in points) / n
    sxx = math.fsum((t - mean_t) ** 2 for t, _ in points)
    if sxx == 0.0:
        return 0.0
    sxy = math.fsum((t - mean_t) * (v - mean_v) for t, v in points)
    return sxy / sxx


def ewma_anomalies(
    points: Sequence[tuple[float, float]],
    *,
    alpha: float = 0.3,
    threshold: float = 3.0,
    warmup: int = 5,
) -> list[dict[str, float]]:
    """Points far from the exponentially weighted baseline of the points before them.

    The baseline mean and variance are updated with weight ``alpha`` after each point; from
    point ``warmup`` on, a point whose distance from the baseline exceeds ``threshold``
    baseline standard deviations is flagged (with a flat baseline, any change is flagged).

    Returns:
        ``[{"timestamp", "value", "baseline", "score"}]`` where ``score`` is the distance in
        standard deviations (``inf`` against a flat baseline).
    """
    out: list[dict[str, float]] = []
    if not points:
        return out
    mean = points[0][1]
    var = 0.0
    for i, (t, v) in enumerate(points):
        if i >= warmup:
            dev = abs(v - mean)
            std = math.sqrt(var)
            tolerance = 1e-12 * max(1.0, abs(mean))
            flat = math.inf if dev > tolerance else 0.0
            score = dev / std if std > tolerance else flat
            if score > threshold:
                out.append({"timestamp": t, "value": v, "baseline": mean, "score": score})
        if i:
            diff = v - mean
            incr = alpha * diff
            mean += incr
            var = (1.0 - alpha) * (var + diff * incr)
    return out


def trend(
    points: Sequence[tuple[float, float]],
    *,
    flat_fraction: float = 0.05,
    alpha: float = 0.3,
    threshold: float = 3.0,
) -> dict[str, Any]:
    """Slope, direction and anomalies of ``points`` (oldest first).

    Args:
        points: ``(timestamp, value)`` pairs.
        flat_fraction: a change over the window (slope x time span) smaller than this
            fraction of the mean absolute value counts as ``"stable"``.
        alpha: EWMA weight of the newest point.
        threshold: anomaly threshold in standard deviations.

    Returns:
        ``{"slope": float, "direction": "increasing" | "decreasing" | "stable",
        "points": int, "anomalies": [...]}`` (see :func:`ewma_anomalies`).

    Example:
        >>> trend([(0.0, 1.0), (10.0, 2.0), (20.0, 3.0)])["direction"]
        'increasing'
    """
    slope = least_squares_slope(points)
    direction: Direction = "stable"
    if len(points) >= 2:
        span = points[-1][0] - points[0][0]
        scale = math.fsum(abs(v) for _, v in points) / len(points)
        change = slope * span
        if abs(change) > flat_fraction * scale and change != 0.0:
            direction = "increasing" if change > 0 else "decreasing"
    return {
        "slope": slope,
        "direction": direction,
        "points": len(points),
        "anomalies": ewma_anomalies(points, alpha=alpha, threshold=threshold),
    }
