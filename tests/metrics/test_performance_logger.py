"""The public facade: alerts delegate to the engine, metrics and summaries read the registry."""

from __future__ import annotations

import math

import pytest

from plexichat.core.logging import performance_logger as module
from plexichat.core.logging.metrics.alerts import get_alert_engine
from plexichat.core.logging.metrics.model import MetricError
from plexichat.core.logging.metrics.perf import PerformanceLogger, parse_window
from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.performance_logger import (
    PerformanceAlert,
    get_performance_logger,
    performance_logger,
    record_metric,
)

from .conftest import FakeClock


def test_module_logger_is_the_process_wide_one() -> None:
    """``performance_logger`` is what ``get_performance_logger()`` returns."""
    assert performance_logger is get_performance_logger()
    assert module.__all__ == sorted(module.__all__)


def test_add_and_remove_alert_delegate_to_the_engine() -> None:
    """The spec's alert is registered with the engine and removed by object or metric name."""
    alert = PerformanceAlert(
        metric_name="response_time",
        threshold=2.0,
        comparison="gt",
        duration=60,
        callback=lambda metric: None,
    )
    assert performance_logger.add_alert(alert) is alert
    assert get_alert_engine().alerts() == (alert,)
    assert performance_logger.alerts() == (alert,)
    assert performance_logger.remove_alert("response_time") is True
    assert performance_logger.remove_alert(alert) is False


def test_unknown_comparison_is_rejected_at_construction() -> None:
    """A comparison outside gt/gte/lt/lte/eq/ne fails with the allowed values."""
    with pytest.raises(ValueError, match="allowed are gt, gte, lt, lte, eq, ne"):
        PerformanceAlert(metric_name="x", threshold=1.0, comparison="above")  # type: ignore[arg-type]


def test_get_metrics_filters_by_name_and_tags() -> None:
    """``get_metrics`` lists one dict per series, filtered by name and by tag subset."""
    record_metric("response_size", 100, "bytes", tags={"endpoint": "/a", "method": "GET"})
    record_metric("response_size", 300, "bytes", tags={"endpoint": "/b", "method": "GET"})
    record_metric("active_users", 7, "count")
    everything = performance_logger.get_metrics()
    assert [m["name"] for m in everything] == ["response_size", "response_size", "active_users"]
    (only_b,) = performance_logger.get_metrics("response_size", tags={"endpoint": "/b"})
    assert (only_b["sum"], only_b["kind"], only_b["unit"]) == (300.0, "histogram", "bytes")
    assert only_b["tags"] == {"endpoint": "/b", "method": "GET"}
    assert len(performance_logger.get_metrics(tags={"method": "GET"})) == 2


def test_get_metrics_since_leaves_out_idle_series(clock: FakeClock) -> None:
    """With ``since``, only values recorded from then on are summarized."""
    perf = PerformanceLogger(MetricsRegistry(clock=clock))
    perf.registry.histogram("old").observe(1.0)
    clock.advance(600)
    perf.registry.histogram("new").observe(2.0)
    assert [m["name"] for m in perf.get_metrics(since=clock.now - 60)] == ["new"]
    assert len(perf.get_metrics()) == 2


def test_get_summary_merges_tag_sets_over_the_window(clock: FakeClock) -> None:
    """``get_summary`` merges every tag set of the name over the window and adds a trend."""
    perf = PerformanceLogger(MetricsRegistry(clock=clock))
    for i in range(30):
        perf.registry.histogram("latency", {"host": f"h{i % 2}"}).observe(0.1 + i * 0.01)
        clock.advance(10)
    summary = perf.get_summary("latency", "5m")
    assert summary["window"] == 300.0
    assert summary["count"] == 30
    assert summary["rate"] == pytest.approx(30 / 300)
    assert summary["trend"]["direction"] == "increasing"
    assert summary["trend"]["slope"] == pytest.approx(0.001, rel=0.05)
    assert perf.get_summary("latency", 60)["count"] == 6


def test_summary_of_a_counter_is_its_increase(clock: FakeClock) -> None:
    """For a counter, ``sum`` is the increase in the window and ``rate`` per second."""
    perf = PerformanceLogger(MetricsRegistry(clock=clock))
    perf.increment("requests", 5, tags={"code": "200"})
    perf.increment("requests", 5, tags={"code": "500"})
    summary = perf.get_summary("requests", "1m")
    assert (summary["kind"], summary["sum"]) == ("counter", 10.0)
    assert summary["rate"] == pytest.approx(10 / 60)


def test_summary_of_nothing_is_nan() -> None:
    """An unknown or idle metric gives a zero count and NaN statistics."""
    summary = performance_logger.get_summary("never_recorded", "1m")
    assert summary["count"] == 0
    assert math.isnan(summary["p99"])


def test_trends_cover_three_windows() -> None:
    """``get_trends`` reports the 1 m, 5 m and 1 h windows."""
    performance_logger.set_gauge("cpu_usage", 40.0, "percent")
    trends = performance_logger.get_trends("cpu_usage")
    assert list(trends) == ["1m", "5m", "1h"]
    assert trends["1h"]["window"] == 3600.0
    assert trends["1m"]["max"] == 40.0


@pytest.mark.parametrize("window", ["soon", 0, -5, "2h", None])
def test_bad_windows_are_rejected(window: object) -> None:
    """A window must be a positive duration of at most one hour."""
    with pytest.raises(MetricError, match="invalid window"):
        parse_window(window)  # type: ignore[arg-type]


def test_facade_exposes_the_recording_functions() -> None:
    """``performance_logger.timer`` etc. are the module functions."""
    with performance_logger.timer("op"):
        pass
    performance_logger.record_metric("x", 1.0, "count")
    assert {m["name"] for m in performance_logger.get_metrics()} == {"op", "x"}


def test_a_decorated_function_never_called_is_not_listed() -> None:
    """Decorating creates the series up front (to check the name); get_metrics lists it only
    once it has a value."""
    from plexichat.core.logging.performance_logger import performance_logger, time_function

    @time_function("never_called_yet")
    def work() -> int:
        return 1

    assert performance_logger.get_metrics("never_called_yet") == []
    work()
    (series,) = performance_logger.get_metrics("never_called_yet")
    assert series["count"] == 1
