"""Metric history: records per interval, written through the logger, read back from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import configure_logging, shutdown_logging
from plexichat.core.logging.metrics.history import HISTORY_LOGGER, HistoryFlusher
from plexichat.core.logging.metrics.registry import MetricsRegistry, get_registry
from plexichat.core.logging.metrics.runtime import current_flusher
from plexichat.core.logging.performance_logger import record_metric, timer
from plexichat.core.logging.store import LogStore, open_store
from plexichat.core.logging.store.indexer import Indexer
from plexichat.core.logging.store.metrics import metric_history
from plexichat.core.logging.testing import capture_logs
from tests.pg import server_url

from .conftest import FakeClock


def _history(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["performance_data"] for e in events if e.get("logger") == HISTORY_LOGGER]


def test_flush_writes_one_record_per_active_series(clock: FakeClock) -> None:
    """Each series with new values gets one PERFORMANCE record with its interval summary."""
    configure_logging(console_enabled=False, file_enabled=False)
    registry = MetricsRegistry(clock=clock)
    flusher = HistoryFlusher(registry, 60.0)
    for v in (0.1, 0.2, 0.3):
        registry.histogram("resp", {"endpoint": "/x"}).observe(v)
    registry.counter("hits").inc(4)
    registry.gauge("idle")  # created, never set: not active
    clock.advance(60)
    with capture_logs() as events:
        assert flusher.flush() == 2
    data = {d["metric"]: d for d in _history(events)}
    assert data["resp"]["count"] == 3
    assert data["resp"]["sum"] == pytest.approx(0.6)
    assert data["resp"]["max"] == 0.3
    assert data["resp"]["tags"] == {"endpoint": "/x"}
    assert data["resp"]["unit"] == "seconds"
    assert data["resp"]["end"] - data["resp"]["start"] == 60.0
    assert data["hits"]["sum"] == 4.0
    assert [e["category"] for e in events] == ["performance", "performance"]


def test_next_flush_writes_only_the_new_values(clock: FakeClock) -> None:
    """A second flush summarizes only what was recorded since the first; idle series skip."""
    configure_logging(console_enabled=False, file_enabled=False)
    registry = MetricsRegistry(clock=clock)
    flusher = HistoryFlusher(registry, 60.0)
    registry.histogram("resp").observe(1.0)
    registry.histogram("other").observe(1.0)
    flusher.flush()
    registry.histogram("resp").observe(5.0)
    registry.histogram("resp").observe(7.0)
    with capture_logs() as events:
        flusher.flush()
    (data,) = _history(events)
    assert (data["metric"], data["count"], data["sum"], data["max"]) == ("resp", 2, 12.0, 7.0)
    assert data["min"] == pytest.approx(5.0, rel=0.01)


def test_thread_flushes_and_stops() -> None:
    """The background thread can be started and stopped; stop writes the last interval."""
    configure_logging(console_enabled=False, file_enabled=False)
    registry = MetricsRegistry()
    flusher = HistoryFlusher(registry, 3600.0)
    flusher.start()
    flusher.start()  # idempotent
    assert _running(flusher)
    registry.histogram("resp").observe(1.0)
    with capture_logs() as events:
        flusher.stop(5.0)
    assert not _running(flusher)
    assert [d["count"] for d in _history(events)] == [1]


def test_configure_logging_starts_and_shutdown_stops_the_flusher(log_dir: Path) -> None:
    """``performance_enabled`` starts the flusher; shutdown stops it; turning it off stops it."""
    configure_logging(directory=str(log_dir), console_enabled=False, performance_enabled=True)
    first = current_flusher()
    assert _running(first)
    configure_logging(performance_enabled=False)
    assert current_flusher() is None
    assert not _running(first)
    configure_logging(performance_enabled=True, metrics_history_interval=30)
    second = current_flusher()
    assert second is not None
    assert second.interval == 30.0
    shutdown_logging()
    assert current_flusher() is None
    assert not _running(second)


def _running(flusher: HistoryFlusher | None) -> bool:
    return flusher is not None and flusher.running


def _run_app(log_dir: Path, values: list[float]) -> None:
    """One application run: configure, record, shut down (the registry starts empty)."""
    get_registry().clear()
    configure_logging(directory=str(log_dir), console_enabled=False, performance_enabled=True)
    for v in values:
        record_metric("response_time", v, "seconds", tags={"endpoint": "/api"})
    with timer("db_query"):
        pass
    shutdown_logging()


def _indexed(log_dir: Path, store: LogStore) -> LogStore:
    Indexer(log_dir, store).run_once()
    return store


def _check_history_after_restart(log_dir: Path, store: LogStore) -> None:
    _run_app(log_dir, [0.1, 0.2, 0.3])
    _run_app(log_dir, [0.4, 0.5])
    history = metric_history(_indexed(log_dir, store), ["response_time"], interval=3600)
    entry = history["response_time"]
    assert entry["unit"] == "seconds"
    assert entry["summary"]["count"] == 5
    assert entry["summary"]["sum"] == pytest.approx(1.5)
    assert entry["summary"]["max"] == pytest.approx(0.5)
    assert sum(p["count"] for p in entry["points"]) == 5
    assert set(entry["trend"]) == {"slope", "direction", "points", "anomalies"}


def test_history_survives_restarts_sqlite(log_dir: Path, tmp_path: Path) -> None:
    """Two runs write their history to the files; the SQLite store serves both after restart."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        _check_history_after_restart(log_dir, store)
    finally:
        store.close()


def test_history_survives_restarts_postgresql(log_dir: Path) -> None:
    """The same on PostgreSQL (skipped unless PLEXICHAT_TEST_POSTGRES_URL is set)."""
    url = server_url()
    try:
        store = open_store(url)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"PostgreSQL store backend unavailable: {exc}")
    store.clear()  # pragma: no cover - needs a server
    try:  # pragma: no cover
        _check_history_after_restart(log_dir, store)
    finally:  # pragma: no cover
        store.clear()
        store.close()


def test_history_filters_by_name_and_tags(log_dir: Path, tmp_path: Path) -> None:
    """Only the asked-for names and tags are returned; every metric when no names are given."""
    get_registry().clear()
    configure_logging(directory=str(log_dir), console_enabled=False, performance_enabled=True)
    record_metric("response_time", 1.0, "seconds", tags={"endpoint": "/a"})
    record_metric("response_time", 3.0, "seconds", tags={"endpoint": "/b"})
    record_metric("payload", 10, "bytes")
    shutdown_logging()
    store = _indexed(log_dir, open_store(f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        only_b = metric_history(store, ["response_time"], tags={"endpoint": "/b"})
        assert only_b["response_time"]["summary"]["sum"] == 3.0
        assert {"response_time", "payload"} <= set(metric_history(store))
        assert metric_history(store, ["nothing"]) == {}
    finally:
        store.close()


def test_history_rejects_a_bad_interval(tmp_path: Path) -> None:
    """The interval must be positive seconds."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        with pytest.raises(ValueError, match="invalid interval 0"):
            metric_history(store, interval=0)
    finally:
        store.close()
