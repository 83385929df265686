"""timer, time_function and record_metric: what they record, with and without errors."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from plexichat.core.logging import LogCategory, configure_logging
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.metrics.alerts import PerformanceAlert, get_alert_engine
from plexichat.core.logging.metrics.model import MetricError, PerformanceMetric
from plexichat.core.logging.metrics.registry import Histogram, get_registry
from plexichat.core.logging.metrics.timing import record_metric, time_function, timer
from plexichat.core.logging.testing import capture_logs


def _series(name: str, **tags: str) -> Histogram:
    return get_registry().histogram(name, tags or None, "seconds")


def test_with_timer_records_seconds_under_its_tags() -> None:
    """One ``with timer`` block adds one non-negative duration in seconds to its series."""
    with timer("database_query", tags={"table": "users"}):
        pass
    summary = _series("database_query", table="users").summary()
    assert summary["count"] == 1
    assert 0.0 <= summary["max"] < 60.0


def test_exception_is_reraised_and_tagged() -> None:
    """A failing block is timed with ``error=<class>`` and the exception propagates."""
    with pytest.raises(KeyError), timer("lookup", tags={"table": "users"}):
        raise KeyError("x")
    assert _series("lookup", table="users", error="KeyError").summary()["count"] == 1
    assert _series("lookup", table="users").summary()["count"] == 0


def test_async_timer() -> None:
    """``async with timer`` records the awaited time."""

    async def main() -> None:
        async with timer("fetch", tags={"host": "db"}):
            await asyncio.sleep(0)

    asyncio.run(main())
    assert _series("fetch", host="db").summary()["count"] == 1


def test_timer_as_decorator_times_each_call() -> None:
    """``@timer(name)`` times every call of a sync function separately."""

    @timer("render")
    def render(x: int) -> int:
        return x * 2

    assert [render(1), render(2), render(3)] == [2, 4, 6]
    assert _series("render").summary()["count"] == 3


def test_time_function_on_async_function() -> None:
    """``@time_function`` wraps coroutine functions with an async wrapper."""

    @time_function("user_lookup")
    async def lookup(user: str) -> str:
        await asyncio.sleep(0)
        return user.upper()

    assert asyncio.iscoroutinefunction(lookup)
    assert asyncio.run(lookup("ann")) == "ANN"
    assert _series("user_lookup").summary()["count"] == 1


def test_time_function_async_exception_is_tagged() -> None:
    """An exception in an async timed function is re-raised and tagged."""

    @time_function("charge")
    async def charge() -> None:
        raise ValueError("declined")

    with pytest.raises(ValueError, match="declined"):
        asyncio.run(charge())
    assert _series("charge", error="ValueError").summary()["count"] == 1


def test_time_function_sync_exception_is_tagged() -> None:
    """An exception in a sync timed function is re-raised and tagged."""

    @time_function("user_authentication")
    def authenticate(user: str) -> None:
        raise PermissionError(user)

    with pytest.raises(PermissionError):
        authenticate("bob")
    assert _series("user_authentication", error="PermissionError").summary()["count"] == 1


def test_bare_time_function_names_the_metric_after_the_function() -> None:
    """``@time_function`` without arguments uses ``module.qualname``."""

    @time_function
    def tidy() -> int:
        return 1

    assert tidy() == 1
    names = [s.name for s in get_registry().series()]
    assert names == [
        f"{__name__}.test_bare_time_function_names_the_metric_after_the_function.locals.tidy"
    ]


def test_decorated_function_keeps_its_metadata() -> None:
    """The wrapper keeps the name and docstring of the wrapped function."""

    @time_function("doc")
    def documented() -> None:
        """Original docstring."""

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Original docstring."


def test_bad_timer_name_fails_at_construction() -> None:
    """An invalid name is reported where the timer is written, not later."""
    with pytest.raises(MetricError, match="invalid metric name"):
        timer("bad name")
    with pytest.raises(MetricError, match="invalid metric name"):
        time_function("bad name")


def test_record_metric_adds_to_the_distribution() -> None:
    """``record_metric`` keeps count, sum, last value and unit per name and tags."""
    record_metric("response_size", 2048, "bytes", tags={"endpoint": "/api/users"})
    record_metric("response_size", 1024, "bytes", tags={"endpoint": "/api/users"})
    series = get_registry().histogram("response_size", {"endpoint": "/api/users"}, "bytes")
    assert series.summary()["sum"] == 3072.0
    assert series.last == 1024.0


def test_record_metric_rejects_wrong_types_and_drops_nan() -> None:
    """Non-numbers raise MetricError; NaN is dropped and counted, the series unharmed."""
    record_metric("active_users", 1250, "count")
    with pytest.raises(MetricError):
        record_metric("active_users", "1250", "count")  # type: ignore[arg-type]
    record_metric("active_users", float("nan"), "count")
    series = get_registry().histogram("active_users", None, "count")
    assert series.summary()["count"] == 1
    assert get_registry().rejected == 1


def test_record_metric_with_another_unit_is_an_error() -> None:
    """A name keeps one unit: recording it in another unit raises."""
    record_metric("payload", 1, "bytes")
    with pytest.raises(MetricError, match="one kind and unit per name"):
        record_metric("payload", 1, "kilobytes")


def test_record_metric_feeds_alert_rules() -> None:
    """With an alert on the metric, each value reaches the engine and the callback fires."""
    fired = threading.Event()
    got: list[PerformanceMetric] = []

    def callback(metric: PerformanceMetric) -> None:
        got.append(metric)
        fired.set()

    engine = get_alert_engine()
    engine.add(PerformanceAlert("queue_depth", 10, "gt", 0, callback, notify={"callback"}))
    record_metric("queue_depth", 50, "count", tags={"queue": "mail"})
    assert fired.wait(10.0)
    assert got[0].value == 50.0
    assert dict(got[0].tags) == {"queue": "mail"}


def test_timer_failure_never_breaks_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """If recording fails inside the metrics code, the block's result is kept; it is reported."""

    def broken(self: Histogram, value: float) -> float:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Histogram, "_record", broken)
    with timer("safe"):
        result = 42
    assert result == 42
    assert error_reporter.counts["metrics.timer"] == 1


def test_timings_can_become_performance_records() -> None:
    """With ``metrics_log_timings`` each timing writes a PERFORMANCE record."""
    configure_logging(console_enabled=False, file_enabled=False, metrics_log_timings=True)
    with capture_logs() as events, timer("database_query", tags={"table": "users"}):
        pass
    records = [e for e in events if e.get("performance_data")]
    assert len(records) == 1
    assert records[0]["category"] == LogCategory.PERFORMANCE.value
    assert set(records[0]["performance_data"]) == {"database_query"}
    assert records[0]["metadata"]["tags"] == {"table": "users"}


def test_timing_records_are_sampled() -> None:
    """A sample rate of 0 writes no timing records, though every timing is still measured."""
    configure_logging(
        console_enabled=False,
        file_enabled=False,
        metrics_log_timings=True,
        metrics_log_sample_rate=0.0,
    )
    with capture_logs() as events:
        for _ in range(20):
            with timer("op"):
                pass
    assert [e for e in events if e.get("performance_data")] == []
    assert _series("op").summary()["count"] == 20


def test_timing_records_are_off_by_default() -> None:
    """Without the setting, timers write no records."""
    configure_logging(console_enabled=False, file_enabled=False)
    with capture_logs() as events, timer("op"):
        pass
    assert events == []


def test_one_timer_object_shared_by_overlapping_tasks_times_each_block() -> None:
    """A timer object used by two overlapping tasks records each task's own duration (the
    start time is kept per task, not on the object)."""
    shared = timer("shared_async")
    long_done, short_started = asyncio.Event(), asyncio.Event()

    async def long_block() -> None:
        async with shared:
            short_started.set()
            await asyncio.sleep(0.3)
        long_done.set()

    async def short_block() -> None:
        await short_started.wait()
        await asyncio.sleep(0.1)  # enters while the long block is a third through
        async with shared:
            await asyncio.sleep(0.01)

    async def main() -> None:
        await asyncio.gather(long_block(), short_block())

    asyncio.run(main())
    summary = _series("shared_async").summary()
    assert summary["count"] == 2
    assert summary["max"] >= 0.29  # the long block was not cut short by the second entry
    assert summary["min"] < 0.2


def test_one_timer_object_shared_by_threads_times_each_block() -> None:
    """Threads entering the same timer object each record their own block."""
    shared = timer("shared_threads")
    entered, done = threading.Event(), threading.Event()

    def slow() -> None:
        with shared:
            time.sleep(0.2)
            entered.set()  # the other thread enters now, inside this block
            done.wait(5)

    def fast() -> None:
        entered.wait(5)
        with shared:
            pass
        done.set()

    threads = [threading.Thread(target=slow), threading.Thread(target=fast)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    summary = _series("shared_threads").summary()
    assert summary["count"] == 2
    assert summary["max"] >= 0.19  # the slow block kept its own start
    assert summary["min"] < 0.1
