"""``LogStore.tail`` / ``last_id`` on every backend, and the live-tail hub reading them:
PostgreSQL ids that commit out of order are delivered once, none skipped."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from plexichat.core.logging.server.hub import Hub, IdTracker
from plexichat.core.logging.server.matcher import Matcher, Row
from plexichat.core.logging.server.stream import Subscriber
from plexichat.core.logging.store import LogStore, open_store
from plexichat.core.logging.store.base import LogQuery, StoredRecord, record_from_event
from tests.store.conftest import POSTGRES_ENV, _postgres_store


def _record(i: int, ts: str = "2026-11-26T20:46:41.787Z", stream: str = "s") -> StoredRecord:
    return record_from_event(
        {"timestamp": ts, "level": "INFO", "message": f"m{i}", "logger": "app"},
        stream=stream,
        seq=i,
    )


def test_tail_returns_rows_after_an_id_in_insertion_order(store: LogStore) -> None:
    """Rows come in id (insertion) order, not time order, each with its id."""
    times = ["2026-01-01T00:00:03Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"]
    store.append([_record(i, ts) for i, ts in enumerate(times)])
    rows = store.tail(0, 10)
    assert [r.message for _, r in rows] == ["m0", "m1", "m2"]
    ids = [row_id for row_id, _ in rows]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert rows[0][1].raw.startswith(b"{")
    assert store.tail(ids[0], 10) == rows[1:]
    assert store.tail(ids[-1], 10) == []


def test_tail_pages_with_limit_and_stops_before_an_id(store: LogStore) -> None:
    """``limit`` caps a call; paging by the last id read reaches every row once;
    ``before_id`` excludes that id and the ones after it."""
    store.append([_record(i) for i in range(7)])
    seen: list[str] = []
    after = 0
    while rows := store.tail(after, 3):
        assert len(rows) <= 3
        seen += [r.message for _, r in rows]
        after = rows[-1][0]
    assert seen == [f"m{i}" for i in range(7)]
    ids = [row_id for row_id, _ in store.tail(0, 10)]
    window = store.tail(ids[1], 10, before_id=ids[4])
    assert [row_id for row_id, _ in window] == ids[2:4]


def test_last_id_is_zero_when_empty_then_the_newest_id(store: LogStore) -> None:
    """``last_id`` is 0 for an empty store and the id of the newest row otherwise; a
    duplicate (same stream and seq) adds no row."""
    assert store.last_id() == 0
    store.append([_record(i) for i in range(3)])
    newest = store.tail(0, 10)[-1][0]
    assert store.last_id() == newest
    store.append([_record(2)])
    assert store.last_id() == newest
    assert len(store.tail(0, 10)) == 3


@pytest.mark.parametrize(
    ("after", "limit", "before"),
    [(0, 0, None), (0, 10_001, None), (-1, 5, None), (0, 5, -3), (0, True, None)],
)
def test_tail_refuses_bad_arguments(
    store: LogStore, after: int, limit: int, before: int | None
) -> None:
    """A limit outside 1..10000 or a negative id is refused, naming it."""
    with pytest.raises(ValueError, match="invalid"):
        store.tail(after, limit, before)


def test_id_tracker_waits_for_a_gap_then_gives_it_up() -> None:
    """An id missing below the highest seen is waited for: delivered once when it comes,
    given up after ``gap_seconds``; a repeat is refused."""
    tracker = IdTracker(10, gap_seconds=5)
    assert [tracker.accept(i, now=0) for i in (11, 13, 14)] == [True, True, True]
    tracker.advance(now=1)
    assert (tracker.low, tracker.high) == (11, 14)
    assert tracker.gap_windows() == [(11, 13)]
    assert tracker.accept(12, now=2)
    assert not tracker.accept(12, now=2)
    tracker.advance(now=2)
    assert (tracker.low, tracker.gap_windows()) == (14, [])
    assert tracker.accept(17, now=3)
    tracker.advance(now=7.9)
    assert tracker.low == 14
    tracker.advance(now=8.1)
    assert (tracker.low, tracker.seen) == (17, set())
    assert not tracker.accept(15, now=9)  # too late: given up


def test_id_tracker_start_waits_for_ids_missing_below_the_newest() -> None:
    """Reset with the ids present below the newest: the missing ones may still commit."""
    tracker = IdTracker(0)
    tracker.reset(20, [16, 17, 19, 20], now=0)
    assert tracker.low == 17
    assert tracker.accept(18, now=1)
    assert not tracker.accept(16, now=1)


# --- the hub on PostgreSQL ------------------------------------------------------------------


@pytest.fixture
def pg() -> Iterator[tuple[LogStore, str]]:
    """A cleared PostgreSQL store and its URL (skipped without PLEXICHAT_TEST_POSTGRES_URL)."""
    store = _postgres_store()
    store.clear()
    try:
        yield store, os.environ[POSTGRES_ENV]
    finally:
        store.clear()
        store.close()


_INSERT = """INSERT INTO plexichat_records (ts, levelno, level, category, logger, module, message,
    stream, seq, raw, tsv) VALUES (%s, 20, 'INFO', 'system', 'app', 'm', %s, 'raw', %s, %s,
    to_tsvector('simple', %s)) RETURNING id"""


def _insert(conn: psycopg.Connection[Any], seq: int) -> int:
    message = f"r{seq}"
    raw = f'{{"timestamp":"2026-11-26T20:46:41Z","level":"INFO","message":"{message}"}}'
    row = conn.execute(_INSERT, (1_795_726_001_000_000, message, seq, raw, message)).fetchone()
    assert row is not None
    return int(row[0])


async def _collect(sub: Subscriber, count: int) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        message = await asyncio.wait_for(sub.next(30.0), 60.0)
        if message is not None:
            out.append(message)
    return out


def test_hub_delivers_postgres_rows_that_commit_out_of_order(pg: tuple[LogStore, str]) -> None:
    """Transaction A takes an id, B takes a higher one and commits first: the hub sends
    B's row at once and A's when A commits; each once, none skipped."""
    store, url = pg

    async def scenario() -> list[str]:
        hub = Hub(lambda: store, asyncio.get_running_loop(), poll=0.05)
        await hub.start()
        sub = Subscriber(Matcher(LogQuery()), sees_sensitive=True, capacity=100)
        hub.subscribe(sub)
        with psycopg.connect(url) as a, psycopg.connect(url, autocommit=True) as b:
            first = _insert(a, 1)  # A: not committed yet
            second = _insert(b, 2)  # B: committed
            assert second > first
            got = await _collect(sub, 1)
            a.commit()
            got += await _collect(sub, 1)
            hub.wake()
            with psycopg.connect(url, autocommit=True) as c:
                _insert(c, 3)
            got += await _collect(sub, 1)
        hub.stop()
        return got

    got = asyncio.run(scenario())
    assert [m.split('"message":"')[1][:2] for m in got] == ["r2", "r1", "r3"]


def test_hub_gives_up_a_rolled_back_id_and_goes_on(pg: tuple[LogStore, str]) -> None:
    """An id taken by a transaction that rolls back never comes: after ``gap_seconds``
    the low-water mark moves past it; rows after it were delivered meanwhile."""
    store, url = pg

    async def scenario() -> tuple[list[Row], IdTracker]:
        hub = Hub(lambda: store, asyncio.get_running_loop(), poll=0.05, gap_seconds=0.3)
        await hub.start()
        delivered: list[Row] = []

        class Recorder:
            capacity, dropped = 100, 0

            def deliver(self, row: Row) -> None:
                delivered.append(row)

            def close(self, code: int = 1000) -> None:
                """Nothing to close."""

        hub.subscribe(Recorder())
        with psycopg.connect(url) as a, psycopg.connect(url, autocommit=True) as b:
            gone = _insert(a, 1)
            a.rollback()
            kept = _insert(b, 2)
        for _ in range(600):
            await asyncio.sleep(0.05)
            if hub.tracker.low >= kept:
                break
        hub.stop()
        assert gone < kept
        return delivered, hub.tracker

    delivered, tracker = asyncio.run(scenario())
    assert [row.view.stored.message for row in delivered] == ["r2"]
    assert tracker.seen == set()
    assert tracker.low == tracker.high


def test_sqlite_store_ids_restart_after_clear_and_the_hub_follows(
    tmp_path: Any,
) -> None:
    """After ``clear()`` (a reindex) the newest id is below the hub's mark: the hub starts
    over at the store's end instead of waiting for ids that never come."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")

    async def scenario() -> list[str]:
        store.append([_record(i) for i in range(5)])
        hub = Hub(lambda: store, asyncio.get_running_loop(), poll=0.05)
        await hub.start()
        sub = Subscriber(Matcher(LogQuery()), sees_sensitive=True, capacity=100)
        hub.subscribe(sub)
        store.clear()
        for _ in range(600):
            await asyncio.sleep(0.05)
            if hub.tracker.low == 0:
                break
        store.append([_record(i, stream="new") for i in range(2)])
        hub.wake()
        got = await _collect(sub, 2)
        hub.stop()
        return got

    got = asyncio.run(scenario())
    store.close()
    assert [m.split('"message":"')[1][:2] for m in got] == ["m0", "m1"]


class _Flaky:
    """A store whose ``tail`` fails ``failures`` times (a database restarting)."""

    def __init__(self, inner: LogStore, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    def last_id(self) -> int:
        return self.inner.last_id()

    def tail(
        self, after_id: int, limit: int, before_id: int | None = None
    ) -> list[tuple[int, StoredRecord]]:
        if self.failures:
            self.failures -= 1
            raise OSError("connection reset")
        return self.inner.tail(after_id, limit, before_id)


def test_hub_survives_a_failing_store_and_catches_up(tmp_path: Any) -> None:
    """A read that fails is reported once and retried; nothing is lost or repeated."""
    from plexichat.core.logging._core.errors import error_reporter

    inner = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    flaky = _Flaky(inner, failures=0)

    async def scenario() -> list[str]:
        hub = Hub(lambda: flaky, asyncio.get_running_loop(), poll=0.05)  # type: ignore[arg-type, return-value]
        await hub.start()
        sub = Subscriber(Matcher(LogQuery()), sees_sensitive=True, capacity=100)
        hub.subscribe(sub)
        flaky.failures = 2
        inner.append([_record(i) for i in range(3)])
        hub.wake()
        got = await _collect(sub, 3)
        hub.stop()
        return got

    got = asyncio.run(scenario())
    inner.close()
    assert [m.split('"message":"')[1][:2] for m in got] == ["m0", "m1", "m2"]
    assert error_reporter.counts.get("live-tail", 0) >= 1
