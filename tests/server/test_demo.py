"""The ``make run`` demo traffic: what it logs reaches a real log server's store.

The demo runs for a few seconds with a shortened attack schedule against ``live_server``
(uvicorn over ``tmp_path/logs``, which this process logs into); the tests wait, with
generous deadlines, until the store holds what a newcomer should see, then check it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import LoggingConfig, configure_logging, flush_logging
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.metrics.registry import get_registry
from plexichat.core.logging.security_logger import get_threat_detector
from plexichat.core.logging.server.demo import DemoTraffic, demo_config_overrides
from plexichat.core.logging.store.base import LogQuery, LogStore
from plexichat.core.logging.store.metrics import metric_history
from tests.server.conftest import LiveServer

DEADLINE = 90.0  # seconds; only there to end a broken run, never a speed requirement
INJECTIONS = ("sql_injection_attempt", "xss_attempt", "path_traversal_attempt")


def _fast_demo(seed: int) -> DemoTraffic:
    """Attacks, probes and audits within the first seconds; many slow queries."""
    return DemoTraffic(
        rate=40.0,
        first_attack_after=0.2,
        attack_interval=3.0,
        attack_size=25,
        probe_interval=1.0,
        audit_interval=1.0,
        slow_query_rate=0.3,
        seed=seed,
    )


def _demo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("plexichat-demo")]


def _wait_until(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"the demo did not produce {what} within {DEADLINE} s")
        flush_logging()
        time.sleep(0.2)


def _records(store: LogStore, query: LogQuery) -> list[dict[str, Any]]:
    return [stored.record for stored in store.iter_records(query)]


@pytest.fixture
def demo_server(live_server: LiveServer) -> Iterator[LiveServer]:
    """The live server with the demo's logging settings (history every half second), an
    empty metrics registry (the demo's metric names may be in use with another kind) and a
    threat detector without cooldowns left over from other tests."""
    configure_logging(
        directory=live_server.directory, **demo_config_overrides(history_interval=0.5)
    )
    get_registry().clear()
    get_threat_detector().reset()
    error_reporter.reset()
    yield live_server
    get_registry().clear()  # the demo's names are not left to other tests


def test_demo_config_overrides_are_valid_settings() -> None:
    """The overrides validate, quiet the console and turn monitoring and detection on."""
    config = LoggingConfig(directory=Path("logs"), **demo_config_overrides(history_interval=7))
    assert not config.console_enabled
    assert config.performance_enabled
    assert config.threat_detection_enabled
    assert config.metrics_history_interval == config.performance_interval == 7
    assert config.sink_level("file") <= 10  # DEBUG records reach the files


def test_bad_settings_are_refused_and_stop_without_start_is_harmless() -> None:
    """Out-of-range settings fail at construction; stop() before start() just returns."""
    for bad in ({"rate": 0}, {"attack_interval": -1}, {"attack_size": 0}, {"slow_query_rate": 2}):
        with pytest.raises(ValueError, match="invalid"):
            DemoTraffic(**bad)
    demo = DemoTraffic()
    assert demo.stop() is True
    assert not demo.running


def test_demo_traffic_reaches_the_store(demo_server: LiveServer) -> None:
    """Access records with request ids and errors, slow queries, attacks the detector
    caught, audit records, context to filter on, metric history; stop() ends every thread."""
    store = demo_server.state.store
    demo = _fast_demo(seed=7)
    demo.start()
    demo.start()  # a second start is a no-op
    try:
        access = LogQuery(loggers=("plexichat.http",))

        def statuses() -> set[int]:
            return {r["context"]["status_code"] for r in _records(store, access)}

        _wait_until(lambda: any(s >= 500 for s in statuses()), "a 5xx answer")
        _wait_until(lambda: {200, 401, 404} <= statuses(), "200, 401 and 404 answers")
        brute = LogQuery(event_types=("brute_force_attempt",))

        def brute_keys() -> set[str]:
            return {r["metadata"]["details"]["key_type"] for r in _records(store, brute)}

        _wait_until(lambda: brute_keys() == {"user", "ip"}, "brute-force detections by user and IP")
        injection = LogQuery(event_types=INJECTIONS)
        _wait_until(lambda: store.count(injection) > 0, "an injection detection")
        slow = LogQuery(categories=("database",), min_level="WARNING")
        _wait_until(lambda: store.count(slow) > 0, "a slow query record")
        audit = LogQuery(categories=("audit",))
        _wait_until(lambda: store.count(audit) > 0, "an audit record")
        names = ["cart_value", "orders_total", "http_request_duration_seconds"]
        _wait_until(
            lambda: set(metric_history(store, names, interval=1.0)) == set(names),
            "metric history of cart_value, orders_total and request durations",
        )
    finally:
        started = time.monotonic()
        stopped = demo.stop(timeout=30)
    assert stopped, f"stop() left threads running after {time.monotonic() - started:.1f} s"
    assert not demo.running
    assert _demo_threads() == []

    # Access records: one request id each, the route template, error answers with tracebacks.
    records = _records(store, access)
    request_ids = [r["context"].get("request_id") for r in records]
    assert all(request_ids)
    assert len(set(request_ids)) == len(records)  # one per request
    assert {"/products", "/products/{product_id}", "/search", "/orders", "/login"} <= {
        r["context"]["route"] for r in records
    }
    server_errors = [r for r in records if r["context"]["status_code"] >= 500]
    assert all(r["level"] == "ERROR" for r in server_errors)
    unhandled = [r for r in server_errors if "exception" in r]
    handled = _records(store, LogQuery(loggers=("demo.shop",), min_level="ERROR"))
    assert any(r["exception"]["traceback"] for r in unhandled + handled)

    # The brute-force burst came from one address; the detector says so.
    detections = _records(store, brute)
    assert all(r["metadata"]["source"] == "threat_detection" for r in detections)
    assert {r["metadata"]["details"]["key_type"] for r in detections} == {"user", "ip"}

    # Slow queries show the statement's shape and the request they belong to.
    slow_query = _records(store, slow)[0]
    assert slow_query["logger"] == "plexichat.db"
    assert "?" in slow_query["metadata"]["statement"]
    assert slow_query["context"]["request_id"]
    assert slow_query["context"]["user_id"]

    # The viewer's context filters have something to filter on.
    for field, value in (("user_id", "alice"), ("ip_address", "10.0.1.17")):
        assert store.count(LogQuery(where=((f"context.{field}", value),))) > 0

    history = metric_history(store, names, interval=1.0)
    assert history["cart_value"]["unit"] == "USD"
    assert history["orders_total"]["kind"] == "counter"
    assert sum(p["count"] for p in history["http_request_duration_seconds"]["points"]) > 10
    assert demo.counts["requests"] > 0
    assert demo.counts["brute_force"] >= 1
    assert not {k for k in error_reporter.counts if k.startswith("demo")}


def test_without_sqlalchemy_queries_are_logged_by_the_demo(
    demo_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SQLAlchemy the demo times sqlite3 itself: DATABASE records with timings."""
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # importing it fails
    store = demo_server.state.store
    query = LogQuery(loggers=("demo.shop.db",), categories=("database",), min_level="DEBUG")
    demo = _fast_demo(seed=3)
    demo.start()
    try:
        _wait_until(lambda: store.count(query) >= 10, "database records")
    finally:
        assert demo.stop(timeout=30)
    records = _records(store, query)
    timed = [r for r in records if "duration_ms" in r.get("performance_data", {})]
    assert timed
    assert all(r["performance_data"]["duration_ms"] >= 0 for r in timed)
    assert not demo.running
    assert _demo_threads() == []
