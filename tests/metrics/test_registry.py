"""The metrics registry: series by name and tags, quantiles, concurrency, bounds, bad input."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.metrics.model import MetricError, PerformanceMetric
from plexichat.core.logging.metrics.registry import MetricsRegistry, get_registry
from plexichat.core.logging.metrics.sketch import Sketch

from .conftest import FakeClock

finite = st.floats(min_value=1e-6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=2000), st.sampled_from([0.5, 0.95, 0.99]))
def test_quantiles_within_one_percent_of_numpy(values: list[float], q: float) -> None:
    """p50/p95/p99 are within 1% (relative) of numpy's nearest-rank percentile."""
    h = MetricsRegistry().histogram("latency")
    for v in values:
        h.observe(v)
    expected = float(np.percentile(values, q * 100, method="inverted_cdf"))
    assert h.quantile(q) == pytest.approx(expected, rel=0.01)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=500))
def test_quantiles_with_negative_and_zero_values(values: list[float]) -> None:
    """Gauge-like values of both signs and zero keep the 1% guarantee (plus a tiny zero band)."""
    s = Sketch()
    for v in values:
        s.add(v)
    for q in (0.0, 0.5, 0.95, 0.99, 1.0):
        expected = float(np.percentile(values, q * 100, method="inverted_cdf"))
        assert s.quantile(q) == pytest.approx(expected, rel=0.01, abs=1e-9)


def test_random_latencies_against_numpy() -> None:
    """100k log-normal latencies: every reported percentile is within 1% of numpy's."""
    rng = np.random.default_rng(7)
    data = rng.lognormal(mean=-4.0, sigma=1.5, size=100_000)
    h = MetricsRegistry().histogram("request_time")
    for v in data.tolist():
        h.observe(v)
    summary = h.summary()
    for key, q in (("p50", 50), ("p95", 95), ("p99", 99)):
        expected = float(np.percentile(data, q, method="inverted_cdf"))
        assert summary[key] == pytest.approx(expected, rel=0.01), key
    assert summary["count"] == 100_000
    assert summary["sum"] == pytest.approx(float(data.sum()), rel=1e-9)
    assert summary["min"] == float(data.min())
    assert summary["max"] == float(data.max())


def test_eight_threads_count_exactly() -> None:
    """8 threads x 100k observations and increments: no value is lost or counted twice."""
    registry = MetricsRegistry()
    h = registry.histogram("work", {"pool": "a"})
    c = registry.counter("jobs")
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(100_000):
            h.observe(0.5)
            c.inc()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert h.summary()["count"] == 800_000
    assert h.summary()["sum"] == 400_000.0
    assert c.value == 800_000.0


def test_ten_thousand_tag_values_overflow_is_counted() -> None:
    """Past the cap, new tag sets share one overflow series and every value is counted."""
    registry = MetricsRegistry(max_series=100)
    for i in range(10_000):
        registry.histogram("req", {"user": f"u{i}"}).observe(1.0)
    series = registry.series("req")
    assert len(series) == 101
    overflow = [s for s in series if dict(s.tags) == {"overflow": "true"}]
    assert len(overflow) == 1
    assert overflow[0].sketch().count == 9_900
    assert registry.overflowed == {"req": 9_900}
    assert sum(s.sketch().count for s in series) == 10_000
    assert error_reporter.counts["metrics.cardinality"] == 9_900


def test_same_name_and_tags_give_the_same_series() -> None:
    """Tag order and number-vs-text values do not create new series."""
    registry = MetricsRegistry()
    a = registry.histogram("q", {"a": "1", "b": "2"})
    assert registry.histogram("q", {"b": "2", "a": "1"}) is a
    assert registry.histogram("q", {"a": 1, "b": 2}) is a
    assert registry.histogram("q") is not a


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf])),
        min_size=1,
        max_size=50,
    )
)
def test_nan_and_infinity_are_dropped_and_counted(values: list[float]) -> None:
    """NaN and infinities never reach the series; each is counted in ``rejected``."""
    registry = MetricsRegistry()
    h = registry.histogram("v", unit="bytes")
    for v in values:
        h.observe(v)
    good = [v for v in values if math.isfinite(v)]
    assert h.summary()["count"] == len(good)
    assert registry.rejected == len(values) - len(good)
    if good:
        assert h.summary()["sum"] == pytest.approx(math.fsum(good))


@pytest.mark.parametrize("bad", ["12", None, [1.0], True, b"1"])
def test_non_numeric_value_raises_metric_error(bad: object) -> None:
    """A value that is not an int or float is a programming error: MetricError names it."""
    h = MetricsRegistry().histogram("v")
    with pytest.raises(MetricError, match="pass an int or float") as info:
        h.observe(bad)  # type: ignore[arg-type]
    assert repr(bad) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_negative_duration_is_dropped_negative_gauge_kept() -> None:
    """A negative value in seconds is rejected; a negative gauge or plain value is fine."""
    registry = MetricsRegistry()
    h = registry.histogram("took")
    h.observe(-0.5)
    assert h.summary()["count"] == 0
    assert registry.rejected == 1
    g = registry.gauge("temperature", unit="celsius")
    g.set(-4.0)
    assert g.value == -4.0
    registry.histogram("delta", unit="").observe(-3.0)
    assert registry.histogram("delta", unit="").summary()["min"] == -3.0


def test_counter_rejects_negative_increments() -> None:
    """A counter only goes up: a negative amount is counted as rejected, not subtracted."""
    registry = MetricsRegistry()
    c = registry.counter("sent")
    c.inc(5)
    c.inc(-2)
    assert c.value == 5.0
    assert registry.rejected == 1


@pytest.mark.parametrize("name", ["", "1abc", "has space", "a-b", "x" * 201, 5, ["x"]])
def test_invalid_names_are_rejected(name: object) -> None:
    """Names must be letters, digits, '_', '.', ':' and not start with a digit."""
    with pytest.raises(MetricError, match="invalid metric name"):
        MetricsRegistry().histogram(name)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({"bad-key": "x"}, "invalid tag name"),
        ({"__x": "x"}, "invalid tag name"),
        ({"k": object()}, "invalid value"),
        ({"k": ["x"]}, "invalid value"),
        ("k=v", "invalid tags"),
    ],
)
def test_invalid_tags_are_rejected(tags: object, match: str) -> None:
    """Tag names follow Prometheus label rules; values are text or numbers."""
    with pytest.raises(MetricError, match=match):
        MetricsRegistry().histogram("ok", tags)  # type: ignore[arg-type]


def test_one_kind_and_unit_per_name() -> None:
    """Reusing a name as another kind or unit is an error that names both."""
    registry = MetricsRegistry()
    registry.histogram("size", unit="bytes")
    with pytest.raises(MetricError, match="histogram in 'bytes', not a counter"):
        registry.counter("size")
    with pytest.raises(MetricError, match="not a histogram in 'count'"):
        registry.histogram("size", unit="count")


def test_listeners_receive_each_value() -> None:
    """Listeners get a PerformanceMetric per value; removed ones no longer do."""
    clock = FakeClock()
    registry = MetricsRegistry(clock=clock)
    got: list[PerformanceMetric] = []
    registry.add_listener(got.append)
    registry.gauge("cpu", {"host": "a"}, "percent").set(12.5)
    registry.remove_listener(got.append)
    registry.gauge("cpu", {"host": "a"}, "percent").set(13.0)
    assert got == [PerformanceMetric("cpu", 12.5, "percent", clock.now, {"host": "a"}, {})]


def test_a_failing_listener_is_reported_not_raised() -> None:
    """A listener that raises does not stop recording and is reported once."""
    registry = MetricsRegistry()

    def broken(metric: PerformanceMetric) -> None:
        raise RuntimeError("boom")

    registry.add_listener(broken)
    c = registry.counter("n")
    c.inc()
    c.inc()
    assert c.value == 2.0
    assert error_reporter.counts["metrics.listener"] == 2


def test_windows_follow_the_clock(clock: FakeClock) -> None:
    """Rolling windows hold the values of their span; older ones stay in the lifetime total."""
    registry = MetricsRegistry(clock=clock)
    h = registry.histogram("t")
    h.observe(1.0)
    clock.advance(400)  # the first value is now in a one-minute slot
    h.observe(2.0)
    clock.advance(30)
    h.observe(3.0)
    assert h.window(60).count == 2
    assert h.window(3600).count == 3
    clock.advance(3700)
    h.observe(4.0)
    assert h.window(3600).count == 1
    assert h.sketch().count == 4
    assert [s.count for _, s in h.points(3600)] == [1]


def test_clock_going_back_keeps_recording(clock: FakeClock) -> None:
    """A clock step backwards adds to the current slot instead of losing the value."""
    registry = MetricsRegistry(clock=clock)
    h = registry.histogram("t")
    h.observe(1.0)
    clock.advance(-100)
    h.observe(1.0)
    assert h.sketch().count == 2


def test_memory_is_bounded_for_extreme_ranges() -> None:
    """Values over 30 orders of magnitude stay within the bucket cap; high quantiles exact."""
    s = Sketch(max_buckets=256)
    values = [10.0**e for e in np.linspace(-8, 22, 5000)]
    for v in values:
        s.add(v)
    assert s.buckets <= 256
    assert s.quantile(0.99) == pytest.approx(
        float(np.percentile(values, 99, method="inverted_cdf")), rel=0.01
    )


def test_sketch_difference_is_exact_in_count_and_sum() -> None:
    """``minus`` returns exactly the values added since the earlier copy."""
    s = Sketch()
    for v in (1.0, 2.0, 3.0):
        s.add(v)
    before = s.copy()
    for v in (10.0, 20.0):
        s.add(v)
    delta = s.minus(before)
    assert (delta.count, delta.sum, delta.max) == (2, 30.0, 20.0)
    assert delta.min == pytest.approx(10.0, rel=0.01)
    assert s.minus(s.copy()).count == 0


def test_invalid_accuracy_and_quantile_are_rejected() -> None:
    """Accuracy and quantiles outside 0..1 raise with the allowed range."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        Sketch(accuracy=1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Sketch().quantile(99)
    assert math.isnan(Sketch().quantile(0.5))


def test_snapshot_lists_every_series() -> None:
    """``snapshot`` returns each series with kind, unit, tags and summary."""
    registry = get_registry()
    registry.counter("hits", {"path": "/"}).inc(3)
    registry.gauge("load").set(0.5)
    snap = {s.name: s for s in registry.snapshot()}
    assert snap["hits"].kind == "counter"
    assert snap["hits"].summary["sum"] == 3.0
    assert dict(snap["hits"].tags) == {"path": "/"}
    assert snap["load"].last == 0.5
