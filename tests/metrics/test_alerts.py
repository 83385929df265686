"""Alerts: PerformanceAlert validation and the AlertEngine state machine (fake clock)."""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging import configure_logging
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.metrics import alerts as alerts_module
from plexichat.core.logging.metrics.alerts import (
    MAX_SERIES_PER_RULE,
    AlertEngine,
    AlertNotice,
    PerformanceAlert,
    get_alert_engine,
)
from plexichat.core.logging.metrics.model import PerformanceMetric
from plexichat.core.logging.metrics.notifiers import NotificationDispatcher, get_dispatcher
from plexichat.core.logging.performance_logger import get_performance_logger, record_metric
from plexichat.core.logging.testing import capture_logs

SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "plexichat-logging-spec.md"


class FakeClock:
    """Monotonic seconds that only move when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock."""
    return FakeClock()


@pytest.fixture
def notices() -> list[AlertNotice]:
    """Where the test engine's notifications land (synchronously)."""
    return []


@pytest.fixture
def engine(clock: FakeClock, notices: list[AlertNotice]) -> AlertEngine:
    """An engine with a fake clock whose notices are collected in ``notices``."""
    return AlertEngine(clock=clock, dispatch=notices.append)


@pytest.fixture
def global_engine(clock: FakeClock) -> Iterator[AlertEngine]:
    """The process-wide engine on a fake clock, emptied before and after the test."""
    engine = get_alert_engine()
    engine.clear()
    saved = engine.clock
    engine.clock = clock
    yield engine
    engine.clear()
    engine.clock = saved


def metric(value: float, name: str = "response_time", **tags: str) -> PerformanceMetric:
    """A metric as the registry hands it to the engine."""
    return PerformanceMetric(name, value, "seconds", 1_705_314_645.0, tags, {})


def slow(duration: float = 60, **kwargs: Any) -> PerformanceAlert:
    """The spec's rule: response_time > 2 s sustained for ``duration`` seconds."""
    return PerformanceAlert(
        metric_name="response_time", threshold=2.0, comparison="gt", duration=duration, **kwargs
    )


def feed(engine: AlertEngine, clock: FakeClock, values: list[tuple[float, float]]) -> None:
    """Observe ``(seconds later, value)`` pairs in order."""
    for later, value in values:
        clock.advance(later)
        engine.observe(metric(value))


def states(notices: list[AlertNotice]) -> list[str]:
    """The states notified, in order."""
    return [n.state for n in notices]


# --- state machine -----------------------------------------------------------------------


def test_breach_shorter_than_duration_does_not_fire(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """A breach that ends before the duration is over sends nothing."""
    alert = engine.add(slow(60))
    feed(engine, clock, [(0, 3.0), (30, 3.0), (29, 3.0), (1, 1.0)])
    assert notices == []
    assert engine.states(alert) == {}


def test_breach_longer_than_duration_fires_exactly_once(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """A breach that holds past the duration fires once, however long it lasts."""
    alert = engine.add(slow(60))
    feed(engine, clock, [(0, 3.0), (30, 2.5), (30, 4.0), (30, 5.0), (600, 3.0)])
    assert states(notices) == ["firing"]
    assert notices[0].metric.value == 4.0  # the observation that completed the duration
    assert notices[0].held_for == 60
    assert engine.states(alert) == {(): "firing"}


def test_pending_shows_while_the_condition_holds(engine: AlertEngine, clock: FakeClock) -> None:
    """The series is pending between the first breach and the end of the duration."""
    alert = engine.add(slow(60))
    feed(engine, clock, [(0, 3.0)])
    assert engine.states(alert) == {(): "pending"}


def test_flapping_restarts_the_duration(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """Each dip below the threshold restarts the wait: a flapping metric never fires."""
    engine.add(slow(60))
    for _ in range(10):
        feed(engine, clock, [(0, 3.0), (40, 3.0), (10, 1.0), (10, 3.0)])
        clock.advance(5)
        engine.observe(metric(0.5))
    assert notices == []


def test_zero_duration_fires_on_the_first_breach(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """``duration=0`` fires on the first value over the threshold."""
    engine.add(slow(0))
    feed(engine, clock, [(0, 1.0), (1, 2.5)])
    assert states(notices) == ["firing"]


def test_resolves_when_the_condition_stops_holding(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """A firing alert sends one resolved notice when a value is back within the threshold."""
    alert = engine.add(slow(60))
    feed(engine, clock, [(0, 3.0), (60, 3.0), (15, 1.5), (5, 1.0)])
    assert states(notices) == ["firing", "resolved"]
    assert notices[1].metric.value == 1.5
    assert notices[1].held_for == 15
    assert engine.states(alert) == {}


def test_fires_again_only_after_resolving(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """After resolving, a new breach must again hold for the whole duration."""
    engine.add(slow(60))
    feed(engine, clock, [(0, 3.0), (60, 3.0), (1, 1.0), (1, 3.0), (59, 3.0)])
    assert states(notices) == ["firing", "resolved"]
    feed(engine, clock, [(1, 3.0)])
    assert states(notices) == ["firing", "resolved", "firing"]


def test_cooldown_delays_the_next_firing(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """Within ``cooldown`` of the last firing a renewed breach stays pending, then fires."""
    alert = engine.add(slow(10, cooldown=300))
    feed(engine, clock, [(0, 3.0), (10, 3.0), (5, 1.0)])
    assert engine.states(alert) == {(): "cooling"}
    feed(engine, clock, [(5, 3.0), (100, 3.0)])
    assert states(notices) == ["firing", "resolved"]
    assert engine.states(alert) == {(): "pending"}
    feed(engine, clock, [(189, 3.0)])  # 299 s after the first firing
    assert states(notices) == ["firing", "resolved"]
    feed(engine, clock, [(1, 3.0)])  # 300 s
    assert states(notices) == ["firing", "resolved", "firing"]


def test_cooling_series_is_forgotten_after_the_cooldown(
    engine: AlertEngine, clock: FakeClock
) -> None:
    """A resolved series is kept only while its cooldown runs."""
    alert = engine.add(slow(0, cooldown=30))
    feed(engine, clock, [(0, 3.0), (1, 1.0)])
    assert engine.states(alert) == {(): "cooling"}
    feed(engine, clock, [(40, 1.0)])
    assert engine.states(alert) == {}


@pytest.mark.parametrize(
    ("comparison", "fires_on", "quiet_on"),
    [
        ("gt", 2.5, 2.0),
        ("gte", 2.0, 1.9),
        ("lt", 1.9, 2.0),
        ("lte", 2.0, 2.1),
        ("eq", 2.0, 2.1),
        ("ne", 2.1, 2.0),
    ],
)
def test_each_comparison(
    engine: AlertEngine,
    notices: list[AlertNotice],
    comparison: Any,
    fires_on: float,
    quiet_on: float,
) -> None:
    """Every comparison fires on a value meeting it and stays quiet otherwise."""
    engine.add(PerformanceAlert("response_time", 2.0, comparison, 0))
    engine.observe(metric(quiet_on))
    assert notices == []
    engine.observe(metric(fires_on))
    assert states(notices) == ["firing"]


def test_tags_filter_selects_series(engine: AlertEngine, notices: list[AlertNotice]) -> None:
    """An alert with tags only sees series carrying those tags."""
    engine.add(slow(0, tags={"endpoint": "/api/users"}))
    engine.observe(metric(9.0, endpoint="/health"))
    engine.observe(metric(9.0))
    assert notices == []
    engine.observe(metric(9.0, endpoint="/api/users", method="GET"))
    assert states(notices) == ["firing"]
    assert notices[0].metric.tags == {"endpoint": "/api/users", "method": "GET"}


def test_each_series_has_its_own_state(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """Two tag sets of one metric fire and resolve independently (Prometheus series)."""
    alert = engine.add(slow(10))
    engine.observe(metric(3.0, endpoint="/a"))
    clock.advance(5)
    engine.observe(metric(3.0, endpoint="/b"))
    clock.advance(5)
    engine.observe(metric(3.0, endpoint="/a"))
    engine.observe(metric(3.0, endpoint="/b"))
    assert [n.metric.tags["endpoint"] for n in notices] == ["/a"]
    assert engine.states(alert) == {
        (("endpoint", "/a"),): "firing",
        (("endpoint", "/b"),): "pending",
    }


def test_series_per_rule_are_capped(engine: AlertEngine) -> None:
    """A rule tracks at most MAX_SERIES_PER_RULE tag sets; the oldest is evicted and counted."""
    alert = engine.add(slow(60))
    for i in range(MAX_SERIES_PER_RULE + 5):
        engine.observe(metric(3.0, user=f"u{i}"))
    assert len(engine.states(alert)) == MAX_SERIES_PER_RULE
    assert engine.stats()["evicted"] == 5


def test_eviction_keeps_firing_series_when_it_can(engine: AlertEngine) -> None:
    """The series evicted first are those not firing, so a firing one can still resolve."""
    alert = engine.add(slow(0))
    engine.observe(metric(3.0, user="first"))
    original = alerts_module.MAX_SERIES_PER_RULE
    try:
        alerts_module.MAX_SERIES_PER_RULE = 1
        engine.observe(metric(3.0, user="second"))
    finally:
        alerts_module.MAX_SERIES_PER_RULE = original
    assert engine.states(alert) == {(("user", "second"),): "firing"}
    assert engine.stats()["evicted"] == 1


def test_hundred_rules_on_other_metrics_stay_quiet(
    engine: AlertEngine, notices: list[AlertNotice]
) -> None:
    """Rules on other metric names are never evaluated for this one."""
    for i in range(100):
        engine.add(PerformanceAlert(f"other_{i}", 0.0, "gte", 0))
    engine.observe(metric(1e9))
    assert notices == []
    assert engine.stats()["series"] == 0


def test_nan_is_no_data(engine: AlertEngine, notices: list[AlertNotice]) -> None:
    """A NaN value neither breaches (even for ``ne``) nor resolves."""
    engine.add(PerformanceAlert("response_time", 2.0, "ne", 0))
    engine.observe(metric(math.nan))
    assert notices == []


def test_infinite_value_breaches(engine: AlertEngine, notices: list[AlertNotice]) -> None:
    """An infinite value is compared like any other."""
    engine.add(slow(0))
    engine.observe(metric(math.inf))
    assert states(notices) == ["firing"]


def test_non_numeric_value_is_reported_not_raised(engine: AlertEngine) -> None:
    """A value that cannot be compared is counted by the error hook; observe returns."""
    engine.add(slow(0))
    engine.observe(PerformanceMetric("response_time", "slow", "", 0.0, {}, {}))  # type: ignore[arg-type]
    assert error_reporter.counts["alert-evaluate"] == 1


def test_a_failing_dispatch_is_reported_not_raised(clock: FakeClock) -> None:
    """A dispatcher that raises never reaches the recording code."""

    def broken(notice: AlertNotice) -> None:
        raise RuntimeError("queue gone")

    engine = AlertEngine(clock=clock, dispatch=broken)
    engine.add(slow(0))
    engine.observe(metric(3.0))
    assert error_reporter.counts["alert-dispatch"] == 1


def test_concurrent_observers_fire_once(
    engine: AlertEngine, clock: FakeClock, notices: list[AlertNotice]
) -> None:
    """Eight threads observing the same breach produce exactly one firing."""
    engine.add(slow(10))
    engine.observe(metric(3.0))
    clock.advance(10)
    start = threading.Barrier(8)

    def observe() -> None:
        start.wait()
        for _ in range(200):
            engine.observe(metric(3.0))

    threads = [threading.Thread(target=observe) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert states(notices) == ["firing"]


# --- rules -------------------------------------------------------------------------------


def test_add_remove_and_active(engine: AlertEngine) -> None:
    """``active`` follows the rules; remove works by object, metric name or alert name."""
    before = engine.active
    a = engine.add(slow(60))
    b = engine.add(slow(60, name="slow-users", tags={"endpoint": "/users"}))
    c = engine.add(PerformanceAlert("error_rate", 0.05, "gt"))
    engine.add(a)
    assert engine.alerts() == (a, b, c)
    during = engine.active
    assert engine.remove("slow-users")
    assert engine.alerts() == (a, c)
    assert engine.remove(c)
    assert not engine.remove(c)
    assert engine.remove("response_time")
    assert (before, during, engine.active) == (False, True, False)


def test_add_rejects_other_objects(engine: AlertEngine) -> None:
    """Only PerformanceAlert objects can be added."""
    with pytest.raises(TypeError, match="expected a PerformanceAlert"):
        engine.add({"metric_name": "x"})  # type: ignore[arg-type]


def test_removed_alert_stops_tracking(engine: AlertEngine, notices: list[AlertNotice]) -> None:
    """After removal an alert's pending state is gone and it never fires."""
    alert = engine.add(slow(0))
    engine.remove(alert)
    engine.observe(metric(3.0))
    assert notices == []
    assert engine.states(alert) == {}


def test_default_name_and_symbol() -> None:
    """The default name reads like the condition."""
    alert = PerformanceAlert("queue_depth", 1000, "gte")
    assert (alert.name, alert.symbol) == ("queue_depth >= 1000", ">=")


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"comparison": ">"}, r"invalid comparison '>': allowed are gt, gte, lt, lte, eq, ne"),
        ({"comparison": "GT"}, "invalid comparison 'GT'"),
        ({"threshold": math.nan}, "invalid threshold nan: NaN and infinity"),
        ({"threshold": math.inf}, "invalid threshold inf"),
        ({"threshold": "2"}, "invalid threshold '2': expected a number"),
        ({"threshold": True}, "invalid threshold True"),
        ({"duration": -1}, "invalid duration -1: must not be negative"),
        ({"duration": math.inf}, "invalid duration inf"),
        ({"cooldown": -0.5}, "invalid cooldown -0.5"),
        ({"callback": "send_slack_alert"}, "invalid callback 'send_slack_alert'"),
        ({"metric_name": ""}, "invalid metric_name ''"),
        ({"metric_name": 5}, "invalid metric_name 5"),
        ({"severity": "critical"}, "invalid severity 'critical': allowed are warning, error"),
        ({"notify": {"sms"}}, "unknown channel 'sms'"),
        ({"notify": 3}, "invalid notify 3"),
        ({"tags": {"a": 1}}, "invalid tags"),
        ({"name": 7}, "invalid name 7"),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict[str, Any], pattern: str) -> None:
    """Each invalid argument raises a ValueError naming the value and what is allowed."""
    args: dict[str, Any] = {"metric_name": "response_time", "threshold": 2.0} | kwargs
    with pytest.raises(ValueError, match=re.escape(pattern) if "(" in pattern else pattern):
        PerformanceAlert(**args)


def test_notify_accepts_one_channel_name() -> None:
    """``notify="log"`` means that one channel; None means all."""
    assert PerformanceAlert("x", 1, notify="log").notify == frozenset({"log"})
    assert PerformanceAlert("x", 1, notify=None).notify == frozenset(  # type: ignore[arg-type]
        {"callback", "log", "email", "webhook"}
    )


@settings(max_examples=200, deadline=None)
@given(
    threshold=st.one_of(st.floats(), st.integers(), st.text(max_size=5), st.none()),
    duration=st.one_of(st.floats(), st.integers(min_value=-(10**6), max_value=10**6)),
    comparison=st.text(max_size=4),
)
def test_hostile_arguments_raise_only_value_error(
    threshold: Any, duration: Any, comparison: str
) -> None:
    """Any input either builds a valid alert or raises ValueError, never anything else."""
    error: ValueError | None = None
    try:
        alert = PerformanceAlert("m", threshold, comparison, duration)  # type: ignore[arg-type]
    except ValueError as exc:
        error = exc
    if error is not None:
        assert str(error).startswith("invalid ")
        return
    assert math.isfinite(alert.threshold)
    assert alert.duration >= 0
    assert alert.comparison in ("gt", "gte", "lt", "lte", "eq", "ne")


# --- dispatch through the real background thread -----------------------------------------


def test_callbacks_run_off_the_recording_thread(clock: FakeClock) -> None:
    """The callback receives the metric on the dispatcher's thread, not the caller's."""
    seen: list[tuple[float, str]] = []
    done = threading.Event()

    def callback(m: PerformanceMetric) -> None:
        seen.append((m.value, threading.current_thread().name))
        done.set()

    dispatcher = NotificationDispatcher()
    engine = AlertEngine(clock=clock, dispatch=dispatcher.submit)
    engine.add(slow(0, callback=callback, notify={"callback"}))
    try:
        engine.observe(metric(3.5))
        assert done.wait(10)
    finally:
        dispatcher.stop()
    assert seen == [(3.5, "plexichat-alerts")]
    assert not dispatcher.worker.running


def test_raising_callback_is_logged_and_recording_continues(
    global_engine: AlertEngine, clock: FakeClock
) -> None:
    """A callback that raises becomes an ERROR record in category performance."""

    def callback(m: PerformanceMetric) -> None:
        raise RuntimeError("slack is down")

    configure_logging(file_enabled=False, console_enabled=False)
    global_engine.add(slow(0, callback=callback, name="slow-api"))
    with capture_logs() as events:
        record_metric("response_time", 3.0, "seconds")
        assert get_dispatcher().flush(10)
        record_metric("response_time", 1.0, "seconds")
        assert get_dispatcher().flush(10)
    errors = [e for e in events if e["level"] == "ERROR"]
    assert [e["message"] for e in errors] == [
        "Alert callback of 'slow-api' raised RuntimeError: slack is down"
    ]
    assert errors[0]["category"] == "performance"
    assert errors[0]["exception"]["type"] == "RuntimeError"
    assert [e["context"]["state"] for e in events if "state" in e.get("context", {})] == [
        "firing",
        "resolved",
    ]


@pytest.mark.parametrize(("severity", "level"), [("warning", "WARNING"), ("error", "ERROR")])
def test_log_channel_writes_a_performance_record(
    global_engine: AlertEngine, severity: Any, level: str
) -> None:
    """Firing writes a WARNING or ERROR record with the alert's fields; resolving an INFO."""
    configure_logging(file_enabled=False, console_enabled=False)
    global_engine.add(slow(0, severity=severity, notify={"log"}, tags={"endpoint": "/a"}))
    with capture_logs() as events:
        record_metric("response_time", 2.5, "seconds", tags={"endpoint": "/a"})
        record_metric("response_time", 0.1, "seconds", tags={"endpoint": "/a"})
        assert get_dispatcher().flush(10)
    firing, resolved = (e for e in events if e["logger"] == "plexichat.alerts")
    assert (firing["level"], firing["category"]) == (level, "performance")
    assert firing["message"] == "Alert firing: response_time > 2 (value 2.5, held 0s)"
    assert firing["context"] == {
        "alert": "response_time > 2",
        "state": "firing",
        "metric": "response_time",
        "value": 2.5,
        "unit": "seconds",
        "threshold": 2.0,
        "comparison": "gt",
        "duration": 0.0,
        "held_for": 0.0,
        "severity": severity,
        "tags": {"endpoint": "/a"},
    }
    assert (resolved["level"], resolved["context"]["state"]) == ("INFO", "resolved")


def test_full_dispatcher_queue_drops_and_counts(clock: FakeClock) -> None:
    """Past its capacity the dispatcher drops notices (counted); recording never blocks."""
    gate = threading.Event()
    dispatcher = NotificationDispatcher(capacity=2)
    engine = AlertEngine(clock=clock, dispatch=dispatcher.submit)
    engine.add(slow(0, callback=lambda m: gate.wait(10), notify={"callback"}))
    try:
        for i in range(10):
            engine.observe(metric(3.0, n=str(i)))
        assert dispatcher.dropped >= 7
        assert error_reporter.counts["plexichat-alerts-full"] == dispatcher.dropped
    finally:
        gate.set()
        dispatcher.stop()


# --- the spec's example ------------------------------------------------------------------


def _spec_block(title: str) -> str:
    if not SPEC.exists():
        pytest.skip(f"spec not found at {SPEC} (it lives in ../shared beside the repo)")
    blocks: dict[str, str] = dict(
        re.findall(r"### ([^\n]+)\n\n```\w+\n(.*?)```", SPEC.read_text(), re.S)
    )
    return blocks[title]


def test_spec_performance_alerts_example_runs_unchanged(
    global_engine: AlertEngine, clock: FakeClock
) -> None:
    """The spec's Performance Alerts block: slow responses for 60 s call send_slack_alert once."""
    sent: list[str] = []
    done = threading.Event()

    def send_slack_alert(text: str) -> None:
        sent.append(text)
        done.set()

    configure_logging(file_enabled=False, console_enabled=False)
    namespace: dict[str, Any] = {
        "send_slack_alert": send_slack_alert,
        "performance_logger": get_performance_logger(),
    }
    exec(compile(_spec_block("Performance Alerts"), "spec:Performance Alerts", "exec"), namespace)
    assert global_engine.alerts() == (namespace["alert"],)
    for later, seconds in [(0, 2.5), (30, 3.0), (20, 1.0), (10, 2.4), (59, 2.6), (1, 2.7)]:
        clock.advance(later)
        record_metric("response_time", seconds, "seconds")
    assert done.wait(10)
    assert get_dispatcher().flush(10)
    assert sent == ["Slow response: 2.7s"]


def test_watches_names_only_metrics_with_rules(engine: AlertEngine) -> None:
    """``watches`` lets recording skip building a metric nobody watches."""
    engine.add(slow(60))
    assert [engine.watches("response_time"), engine.watches("cpu_usage")] == [True, False]


def test_value_within_threshold_while_idle_takes_no_lock(
    engine: AlertEngine, notices: list[AlertNotice]
) -> None:
    """With nothing pending, a value meeting no condition is evaluated without the lock."""
    engine.add(slow(0))
    with engine._lock:  # held: observing must not need it
        engine.observe(metric(1.0))
    engine.observe(metric(3.0))
    assert states(notices) == ["firing"]


def test_values_that_concern_no_rule_never_build_a_metric() -> None:
    """observe_value builds the PerformanceMetric only when a rule holds or follows a
    series: the cost of rules on a busy metric stays a comparison per rule."""
    from plexichat.core.logging.metrics.alerts import AlertEngine
    from plexichat.core.logging.metrics.model import PerformanceMetric

    engine = AlertEngine(clock=lambda: 100.0)
    engine.add(PerformanceAlert("latency", 2.0, "gt", 10, callback=lambda m: None))
    built: list[float] = []

    def build(value: float) -> PerformanceMetric:
        built.append(value)
        return PerformanceMetric("latency", value, "seconds", 100.0, {}, {})

    engine.observe_value("latency", 1.0, lambda: build(1.0))
    engine.observe_value("other", 9.0, lambda: build(9.0))
    assert built == []
    engine.observe_value("latency", 3.0, lambda: build(3.0))  # holds: pending from now
    engine.observe_value("latency", 1.0, lambda: build(1.0))  # follows the pending series
    assert built == [3.0, 1.0]
