"""System collector: psutil gauges, rates, the sampling thread and its lifecycle."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from plexichat.core.logging import configure_logging, shutdown_logging
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.metrics import collector as collector_module
from plexichat.core.logging.metrics.alerts import AlertEngine, PerformanceAlert, get_alert_engine
from plexichat.core.logging.metrics.collector import SystemCollector, get_collector
from plexichat.core.logging.metrics.notifiers import get_dispatcher
from plexichat.core.logging.metrics.registry import MetricsRegistry

THREAD = "plexichat-system-metrics"
PRIMED = {
    "memory_usage",
    "memory_used_bytes",
    "process_rss_bytes",
    "threads",
    "open_fds",
    "disk_usage",
}
RATES = {
    "cpu_usage",
    "process_cpu_percent",
    "disk_read_bytes_per_second",
    "disk_write_bytes_per_second",
    "network_sent_bytes_per_second",
    "network_received_bytes_per_second",
}


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def _cpu_tick() -> None:
    """Wait until the machine's CPU time counters move (they tick every 10 ms or so)."""
    start = sum(psutil.cpu_times())
    while sum(psutil.cpu_times()) == start:
        pass


def _threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == THREAD]


@pytest.fixture
def registry() -> MetricsRegistry:
    """A registry of the test's own."""
    return MetricsRegistry()


def test_first_sample_primes_and_second_has_every_figure(
    registry: MetricsRegistry, tmp_path: Path
) -> None:
    """The first sample sets the instantaneous gauges; the second adds CPU and rates."""
    clock = FakeClock()
    collector = SystemCollector(registry, 30, directory=tmp_path, clock=clock)
    first = collector.collect()
    _cpu_tick()
    clock.now += 2.0
    second = collector.collect()
    assert set(first) == PRIMED
    assert set(second) - PRIMED <= RATES
    assert {"cpu_usage", "process_cpu_percent", "network_sent_bytes_per_second"} <= set(second)
    assert collector.samples == 2


def test_values_are_plausible_floats(registry: MetricsRegistry, tmp_path: Path) -> None:
    """Every value is a finite float in its range; percentages stay within 0..100."""
    clock = FakeClock()
    collector = SystemCollector(registry, 30, directory=tmp_path, clock=clock)
    collector.collect()
    _cpu_tick()
    clock.now += 1.0
    values = collector.collect()
    for name, value in values.items():
        assert type(value) is float, name
        assert math.isfinite(value), name
        assert value >= 0, name
    for name in ("cpu_usage", "memory_usage", "disk_usage"):
        assert values[name] <= 100, name
    assert values["threads"] >= 1
    assert values["open_fds"] >= 1
    assert 0 < values["process_rss_bytes"] <= psutil.virtual_memory().total
    assert values["memory_used_bytes"] <= psutil.virtual_memory().total


def test_gauges_carry_units(registry: MetricsRegistry, tmp_path: Path) -> None:
    """The registry holds each figure as a gauge with its unit and last value."""
    collector = SystemCollector(registry, 30, directory=tmp_path)
    values = collector.collect()
    series = {s.name: s for s in registry.series()}
    assert series["memory_usage"].unit == "percent"
    assert series["process_rss_bytes"].unit == "bytes"
    assert series["threads"].unit == "count"
    assert series["threads"].kind == "gauge"
    assert series["disk_usage"].last == values["disk_usage"]


def test_rates_are_counter_differences_per_second() -> None:
    """Rates divide counter growth by elapsed time; a counter that went back is skipped."""
    before = {
        "t": 10.0,
        "cpu_total": 100.0,
        "cpu_busy": 40.0,
        "proc_cpu": 1.0,
        "net_sent": 1_000.0,
        "net_received": 5_000.0,
        "disk_read": 800.0,
    }
    after = {
        "t": 12.0,
        "cpu_total": 104.0,
        "cpu_busy": 41.0,
        "proc_cpu": 1.5,
        "net_sent": 3_000.0,
        "net_received": 4_000.0,
        "disk_read": 1_800.0,
    }
    rates = collector_module._differences(before, after)
    assert rates == {
        "cpu_usage": 25.0,
        "process_cpu_percent": 25.0,
        "network_sent_bytes_per_second": 1_000.0,
        "disk_read_bytes_per_second": 500.0,
    }


def test_no_elapsed_time_gives_no_rates() -> None:
    """Two samples at the same instant give no rates (no division by zero)."""
    sample = {"t": 5.0, "cpu_total": 1.0, "cpu_busy": 1.0, "proc_cpu": 0.0}
    assert collector_module._differences(sample, dict(sample)) == {}


def test_start_is_idempotent_and_stop_leaves_no_thread(
    registry: MetricsRegistry, tmp_path: Path
) -> None:
    """Two starts run one thread; stop joins it."""
    collector = SystemCollector(registry, 30, directory=tmp_path)
    collector.start()
    collector.start()
    try:
        assert _threads() == [THREAD]
        assert collector.running
        assert collector.samples == 1  # the priming sample, taken by start()
    finally:
        collector.stop()
        collector.stop()
    assert _threads() == []
    assert not collector.running


def test_thread_samples_every_interval(registry: MetricsRegistry, tmp_path: Path) -> None:
    """The thread keeps sampling until stopped; it can be started again."""
    collector = SystemCollector(registry, 0.01, directory=tmp_path)
    sampled = threading.Event()
    gauge = registry.gauge("threads", unit="count")

    def listener(metric: object) -> None:
        if collector.samples >= 3:
            sampled.set()

    registry.add_listener(listener)
    collector.start()
    try:
        assert sampled.wait(30)
    finally:
        collector.stop()
    assert gauge.value >= 1
    collector.start()
    collector.stop()
    assert _threads() == []


def test_a_failing_sample_is_reported_not_raised(
    registry: MetricsRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """psutil failing makes an empty sample, counted once by the error hook."""

    def broken() -> None:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "virtual_memory", broken)
    collector = SystemCollector(registry, 30, directory=tmp_path)
    assert collector.collect() == {}
    assert (collector.errors, error_reporter.counts["system-metrics"]) == (1, 1)


def test_missing_directory_skips_disk_usage(registry: MetricsRegistry, tmp_path: Path) -> None:
    """A directory that does not exist leaves disk_usage out; the rest is sampled."""
    values = SystemCollector(registry, 30, directory=tmp_path / "gone").collect()
    assert "disk_usage" not in values
    assert "memory_usage" in values


@pytest.mark.parametrize("interval", [0, -1, math.nan, "30", True])
def test_bad_interval_is_rejected(interval: object) -> None:
    """The interval must be a positive number."""
    with pytest.raises(ValueError, match="invalid interval"):
        SystemCollector(MetricsRegistry(), interval)  # type: ignore[arg-type]


# --- wiring into configure_logging / shutdown_logging -------------------------------------


def test_performance_enabled_starts_and_shutdown_stops(tmp_path: Path) -> None:
    """configure_logging(performance_enabled=True) starts it; shutdown_logging stops it."""
    configure_logging(performance_enabled=True, console_enabled=False, directory=tmp_path / "l")
    collector = get_collector()
    assert collector is not None
    assert collector.running
    assert collector.interval == 30.0
    assert collector.directory == tmp_path  # the log directory's nearest existing parent
    shutdown_logging()
    assert get_collector() is None
    assert _threads() == []


def test_performance_disabled_has_no_collector() -> None:
    """With performance monitoring off (the default) nothing samples."""
    configure_logging(console_enabled=False, file_enabled=False)
    assert get_collector() is None
    assert _threads() == []


def test_reconfiguring_follows_the_interval() -> None:
    """A new interval replaces the collector; turning monitoring off stops it."""
    configure_logging(performance_enabled=True, console_enabled=False, file_enabled=False)
    first = get_collector()
    configure_logging(performance_interval=5)
    second = get_collector()
    configure_logging(level="DEBUG")
    assert get_collector() is second
    configure_logging(performance_enabled=False)
    assert first is not None
    assert second is not None
    assert (first.running, second.running, second.interval) == (False, False, 5.0)
    assert get_collector() is None
    assert _threads() == []


@pytest.fixture
def engine() -> Iterator[AlertEngine]:
    """The process-wide alert engine, emptied afterwards."""
    engine = get_alert_engine()
    engine.clear()
    yield engine
    engine.clear()


def test_collector_values_feed_alert_rules(
    engine: AlertEngine, registry: MetricsRegistry, tmp_path: Path
) -> None:
    """An alert on a collected gauge fires from the collector's sample."""
    configure_logging(console_enabled=False, file_enabled=False)
    seen: list[tuple[str, str]] = []
    engine.add(
        PerformanceAlert("threads", 1, "gte", 0, callback=lambda m: seen.append((m.name, m.unit)))
    )
    SystemCollector(registry, 30, directory=tmp_path).collect()
    assert get_dispatcher().flush(10)
    assert seen == [("threads", "count")]
