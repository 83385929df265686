"""Regression tests for the metrics and alerting audit findings (one section per finding)."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import math
import os
import signal
import socketserver
import threading
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from plexichat.core.logging.metrics import collector as collector_module
from plexichat.core.logging.metrics import timing
from plexichat.core.logging.metrics.alerts import AlertEngine, AlertNotice, PerformanceAlert
from plexichat.core.logging.metrics.collector import SystemCollector
from plexichat.core.logging.metrics.model import MetricError
from plexichat.core.logging.metrics.notifiers_format import AlertMessage
from plexichat.core.logging.metrics.notifiers_send import MAX_RESPONSE_BYTES, WebhookSender
from plexichat.core.logging.metrics.notifiers_worker import (
    DeliveryError,
    RetryingSender,
    Worker,
)
from plexichat.core.logging.metrics.perf import PerformanceLogger
from plexichat.core.logging.metrics.prometheus import exposition
from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.metrics.sketch import Sketch
from plexichat.core.logging.metrics.timing import time_function, timer

from .conftest import FakeClock

fork_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _in_child(body: Callable[[], bool]) -> int:
    """Run ``body`` in a forked child; its exit code: 0 when it returned True, 1 when False,
    2 when it raised, and -SIGALRM when it hung (an alarm ends a deadlocked child)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 2
        try:
            signal.alarm(20)
            code = 0 if body() else 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@contextlib.contextmanager
def _held_elsewhere(lock: Any) -> Iterator[None]:
    """Hold ``lock`` on another thread for the duration (as at a fork mid-operation)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(10)


# --- 1. alerts after fork ----------------------------------------------------------------


@fork_only
def test_worker_delivers_in_a_forked_child_even_if_its_lock_was_held() -> None:
    seen: list[int] = []
    worker: Worker[int] = Worker("audit-fork", seen.append)
    worker.submit(1)
    assert worker.flush(10)
    gate = threading.Event()
    blocked: Worker[int] = Worker("audit-fork-busy", lambda _: gate.wait(30))
    blocked.submit(1)
    blocked.submit(2)  # still queued at the fork: the parent delivers it, not the child

    def child() -> bool:
        seen.clear()
        if blocked.pending != 0:
            return False
        worker.submit(2)
        return worker.flush(10) and seen == [2]

    with _held_elsewhere(worker._cv):  # another thread may hold the lock at the fork
        code = _in_child(child)
    gate.set()
    assert code == 0
    assert blocked.flush(10)
    worker.stop()
    blocked.stop()


@fork_only
def test_retrying_sender_delivers_in_a_forked_child() -> None:
    sent: list[str] = []
    sender: RetryingSender[str] = RetryingSender("audit", sent.append, attempts=1)
    sender.submit("parent")
    assert sender.flush(10)

    def child() -> bool:
        sent.clear()
        sender.submit("child")
        return sender.flush(10) and sent == ["child"]

    assert _in_child(child) == 0
    sender.stop()


# --- 2. a stop that timed out on a blocked callback ---------------------------------------


def test_worker_works_again_after_a_stop_timed_out() -> None:
    release, started = threading.Event(), threading.Event()
    seen: list[str] = []

    def handle(item: str) -> None:
        if item == "block":
            started.set()
            release.wait(30)
        seen.append(item)

    worker: Worker[str] = Worker("audit-block", handle)
    worker.submit("block")
    assert started.wait(10)
    old = worker._thread
    assert old is not None
    assert worker.stop(timeout=0.01) is False
    release.set()
    old.join(10)
    assert worker._thread is None
    assert not worker._stopping
    worker.submit("later")
    assert worker.flush(10)
    assert seen == ["block", "later"]
    worker.stop()


def test_worker_restarts_a_dead_thread() -> None:
    seen: list[int] = []
    worker: Worker[int] = Worker("audit-dead", seen.append)
    worker._thread = threading.Thread(target=lambda: None)
    worker._thread.start()
    worker._thread.join()
    worker.submit(1)
    assert worker.flush(10)
    assert seen == [1]
    worker.stop()


# --- 3. and 4. timing generators and nested timers ----------------------------------------


class StepClock:
    """A perf_counter stand-in moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def perf(monkeypatch: pytest.MonkeyPatch) -> StepClock:
    """Replace the timing module's perf_counter with a hand-moved clock."""
    clock = StepClock()
    monkeypatch.setattr(timing, "_perf", clock)
    return clock


def _values(name: str, **tags: object) -> tuple[int, float, float]:
    series = timing._registry.histogram(name, tags or None, "seconds")
    s = series.sketch()
    return s.count, s.sum, s.max


def test_generator_is_timed_until_exhausted(perf: StepClock) -> None:
    @time_function("audit_gen")
    def gen() -> Iterator[int]:
        for i in range(3):
            perf.now += 1.0
            yield i

    assert list(gen()) == [0, 1, 2]
    assert _values("audit_gen") == (1, 3.0, 3.0)


def test_generator_closed_early_and_send_throw_pass_through(perf: StepClock) -> None:
    @time_function("audit_gen2")
    def echo() -> Any:
        received: list[object] = []
        try:
            while True:
                perf.now += 1.0
                received.append((yield len(received)))
        except KeyError:
            yield "caught"

    it = echo()
    assert next(it) == 0
    assert it.send("a") == 1
    assert it.throw(KeyError("k")) == "caught"
    it.close()
    assert _values("audit_gen2") == (1, 2.0, 2.0)


def test_generator_that_raises_is_timed_with_an_error_tag(perf: StepClock) -> None:
    @time_function("audit_gen3")
    def bad() -> Iterator[int]:
        perf.now += 0.5
        yield 1
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        list(bad())
    assert _values("audit_gen3", error="ValueError") == (1, 0.5, 0.5)


def test_async_generator_is_timed_until_exhausted(perf: StepClock) -> None:
    @time_function("audit_agen")
    async def agen() -> AsyncIterator[int]:
        for i in range(3):
            await asyncio.sleep(0)
            perf.now += 1.0
            yield i

    async def consume() -> list[int]:
        return [i async for i in agen()]

    assert asyncio.run(consume()) == [0, 1, 2]
    assert _values("audit_agen") == (1, 3.0, 3.0)


def test_async_generator_asend_athrow_aclose(perf: StepClock) -> None:
    @time_function("audit_agen2")
    async def agen() -> Any:
        got = None
        try:
            while True:
                perf.now += 1.0
                got = yield got
        except KeyError:
            yield "caught"

    async def drive() -> list[object]:
        it = agen()
        out = [await it.asend(None), await it.asend("x"), await it.athrow(KeyError("k"))]
        await it.aclose()
        return out

    assert asyncio.run(drive()) == [None, "x", "caught"]
    assert _values("audit_agen2") == (1, 2.0, 2.0)


def test_nested_timer_records_each_level(perf: StepClock) -> None:
    t = timer("audit_nested")
    with t:
        perf.now += 1.0
        with t:
            perf.now += 2.0
    assert _values("audit_nested") == (2, 5.0, 3.0)
    assert t._starts == {}


def test_nested_async_timer_records_each_level(perf: StepClock) -> None:
    t = timer("audit_nested_async")

    async def nest() -> None:
        async with t:
            perf.now += 1.0
            async with t:
                perf.now += 2.0

    asyncio.run(nest())
    assert _values("audit_nested_async") == (2, 5.0, 3.0)


def test_timer_exit_without_enter_records_nothing(perf: StepClock) -> None:
    t = timer("audit_unstarted")
    t.__exit__(None, None, None)
    asyncio.run(t.__aexit__(None, None, None))
    assert _values("audit_unstarted")[0] == 0


# --- 5. gauges and counters feed the alert rules -----------------------------------------


def test_set_gauge_and_increment_feed_alerts(clock: FakeClock) -> None:
    notices: list[AlertNotice] = []
    engine = AlertEngine(clock=clock, dispatch=notices.append)
    engine.add(PerformanceAlert("queue_depth", 100, "gt"))
    engine.add(PerformanceAlert("errors_total", 5, "gt"))
    perf_logger = PerformanceLogger(MetricsRegistry(clock=clock), engine)
    perf_logger.set_gauge("queue_depth", 5000)
    for _ in range(50):
        perf_logger.increment("errors_total")
    assert [(n.metric.name, n.metric.value) for n in notices] == [
        ("queue_depth", 5000.0),
        ("errors_total", 6.0),
    ]


# --- 6. and 7. webhook: redirects, slow and huge responses --------------------------------


class _Server:
    """A local HTTP server answering every POST with ``respond(handler)``."""

    def __init__(self, respond: Callable[[http.server.BaseHTTPRequestHandler], None]) -> None:
        self.done = threading.Event()
        self.hits: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.hits.append(self.path)
                try:
                    respond(self)
                finally:
                    server.done.set()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        class Threading(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = Threading(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


_MESSAGE = AlertMessage("subject", "text", "body", {"k": 1})


def test_webhook_redirect_is_a_non_retryable_failure() -> None:
    def redirect(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(307)
        h.send_header("Location", "/elsewhere")
        h.send_header("Content-Length", "0")
        h.end_headers()

    server = _Server(redirect)
    try:
        sender = WebhookSender(SecretStr(server.url + "/hook?token=SECRET"), timeout=10)
        with pytest.raises(DeliveryError) as info:
            sender(_MESSAGE)
    finally:
        server.close()
    assert info.value.retry is False
    assert "307" in str(info.value)
    assert "redirect" in str(info.value)
    assert "SECRET" not in str(info.value)
    assert server.hits == ["/hook?token=SECRET"]


def _streaming(size: int, chunk: bytes, written: list[int]) -> Callable[[Any], None]:
    def respond(h: http.server.BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        try:
            while written[0] < size:
                h.wfile.write(chunk)
                h.wfile.flush()
                written[0] += len(chunk)
        except OSError:
            return

    return respond


def test_webhook_reads_only_the_start_of_a_huge_body() -> None:
    size, written = 256 << 20, [0]
    server = _Server(_streaming(size, b"y" * (1 << 16), written))
    try:
        WebhookSender(SecretStr(server.url + "/hook"), timeout=30)(_MESSAGE)
        assert server.done.wait(60)
    finally:
        server.close()
    assert MAX_RESPONSE_BYTES <= 64 << 10
    assert written[0] < size  # the client closed the connection instead of reading it all


def test_webhook_deadline_ends_a_trickling_body() -> None:
    size, written = 100_000, [0]
    server = _Server(_streaming(size, b"x", written))
    ticks = FakeClock(0.0)

    def clock() -> float:
        ticks.advance(1.0)  # every look at the clock is one second later
        return ticks.now

    try:
        WebhookSender(SecretStr(server.url + "/hook"), timeout=5, clock=clock)(_MESSAGE)
        assert server.done.wait(60)
    finally:
        server.close()
    assert ticks.now <= 10.0  # stopped at the deadline, not after the whole body
    assert written[0] < size


# --- 8. the system collector after fork ---------------------------------------------------


@fork_only
def test_collector_restarts_in_a_forked_child_and_measures_it(tmp_path: Path) -> None:
    config = SimpleNamespace(
        performance_enabled=True, performance_interval=3600.0, directory=tmp_path
    )
    collector_module.follow_config(config)
    try:
        current = collector_module.get_collector()
        assert current is not None
        assert current.running
        own = SystemCollector(MetricsRegistry(), interval=3600.0, directory=tmp_path)

        def child() -> bool:
            if current.running or own.running:
                return False
            collector_module.follow_config(config)  # the next configure_logging
            restarted = collector_module.get_collector()
            own.start()
            ok = (
                restarted is not None
                and restarted.running
                and _running(own)
                and own._process.pid == os.getpid()
            )
            own.stop()
            return ok

        with _held_elsewhere(own._lock):  # held by another thread at the fork
            code = _in_child(child)
        assert code == 0
    finally:
        collector_module.stop_collector()


def test_collector_follows_a_pid_change(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    own = SystemCollector(MetricsRegistry(), interval=3600.0, directory=tmp_path)
    own.collect()
    real = os.getpid()
    monkeypatch.setattr(own, "_pid", real + 1)  # as if this were a forked child
    own._process = None  # type: ignore[assignment]  # the parent's handle must not be used
    assert own.collect()
    assert own._pid == real
    assert own._process.pid == real


def _running(collector: SystemCollector) -> bool:
    return collector.running


# --- 9. Prometheus name clashes ------------------------------------------------------------


def test_clashing_exposition_names_are_refused(clock: FakeClock) -> None:
    registry = MetricsRegistry(clock=clock)
    registry.histogram("api.latency", unit="seconds").observe(0.1)
    with pytest.raises(MetricError, match=r"'api:latency'.*'api\.latency'"):
        registry.histogram("api:latency", unit="seconds")
    with pytest.raises(MetricError, match="api_latency_seconds"):
        registry.histogram("api_latency_seconds", unit="")
    registry.histogram("jobs", unit="count").observe(1.0)
    with pytest.raises(MetricError, match=r"'jobs_count'.*'jobs'"):
        registry.gauge("jobs_count")
    with pytest.raises(MetricError, match="self-metric"):
        registry.counter("plexichat_metrics_rejected_total")
    registry.gauge("jobs_count", unit="seconds").set(1.0)  # another unit: another name
    text = exposition(registry)[0].decode()
    samples = [line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")]
    assert len(samples) == len(set(samples))
    assert len(list(text_string_to_metric_families(text))) == 5


def test_quantile_tag_is_refused_on_distributions(clock: FakeClock) -> None:
    registry = MetricsRegistry(clock=clock)
    with pytest.raises(MetricError, match="quantile"):
        registry.histogram("qt", {"quantile": "a"}, "count")
    registry.gauge("g", {"quantile": "a"}).set(1.0)  # only distributions expose quantiles


# --- 10. minor findings ---------------------------------------------------------------------


def test_negative_infinite_increment_is_rejected_once(clock: FakeClock) -> None:
    registry = MetricsRegistry(clock=clock)
    registry.counter("c").inc(-math.inf)
    assert registry.rejected == 1


def test_bool_and_float_tags_do_not_reuse_an_int_tag_series(clock: FakeClock) -> None:
    registry = MetricsRegistry(clock=clock)
    assert dict(registry.histogram("x", {"k": 1}).tags) == {"k": "1"}
    with pytest.raises(MetricError, match="tag 'k'"):
        registry.histogram("x", {"k": True})
    assert dict(registry.histogram("x", {"k": 1.0}).tags) == {"k": "1.0"}
    assert registry.histogram("x", {"k": 1}) is registry.histogram("x", {"k": 1})


def test_long_tag_values_are_refused(clock: FakeClock) -> None:
    registry = MetricsRegistry(clock=clock)
    registry.histogram("x", {"k": "a" * 200})
    with pytest.raises(MetricError, match="at most 200 characters"):
        registry.histogram("x", {"k": "a" * 201})


def test_tiny_values_keep_quantile_accuracy() -> None:
    sketch = Sketch()
    values = [i * 1e-12 for i in range(1, 1001)]
    for v in values:
        sketch.add(v)
    assert sketch.quantile(0.5) == pytest.approx(500e-12, rel=0.02)
    assert sketch.quantile(0.99) == pytest.approx(990e-12, rel=0.02)
