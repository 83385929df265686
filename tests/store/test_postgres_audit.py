"""PostgreSQL store findings of an audit: lock order of partition DDL against ``where``
walks, retention beside a long reader, pooled connections the server ended, and the search
limit.

The tests need a server named by ``PLEXICHAT_TEST_POSTGRES_URL`` (skipped without one, a
failure in CI); each works in a schema of its own.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from plexichat.core.logging._core.errors import PlexiLoggingError
from plexichat.core.logging.store.base import LogQuery, StoredRecord, record_from_event, to_micros
from plexichat.core.logging.store.postgres import PostgresStore
from tests.pg import partitions

WHERE = LogQuery(limit=50, where=(("context.user", "u1"),))


def rec(seq: int, ts: datetime, *, stream: str = "s1", user: str = "u1") -> StoredRecord:
    """A record at ``ts`` whose ``context.user`` is ``user``."""
    return record_from_event(
        {
            "timestamp": ts.isoformat().replace("+00:00", "Z"),
            "level": "INFO",
            "category": "system",
            "logger": "app",
            "module": "m",
            "message": f"message {seq}",
            "stream": stream,
            "seq": seq,
            "context": {"user": user},
        }
    )


@pytest.fixture
def pg(fresh_store: PostgresStore) -> PostgresStore:
    """An empty store on a schema of this test's own."""
    return fresh_store


def _query_loop(url: str, stop: threading.Event, errors: list[str], done: list[int]) -> None:
    """``where`` queries (a walk: fields first) on a store of its own until ``stop``."""
    store = PostgresStore(url, pool_size=1)
    try:
        while not stop.is_set():
            try:
                store.query(WHERE)
                store.count(WHERE)
                done.append(1)
            except Exception as exc:  # every error is a finding
                errors.append(f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
    finally:
        store.close()


def test_where_queries_never_deadlock_with_partition_creation_and_drops(
    pg: PostgresStore, fresh_url: str
) -> None:
    """Partitions created (append into new months) and dropped (retention) while ``where``
    queries walk the field table: no query, append or drop fails (the DDL locks the tables
    in the walk's order: fields, then records)."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    pg.append([rec(k, base + timedelta(seconds=k), user=f"u{k % 3}") for k in range(1, 60)])
    stop, errors, done = threading.Event(), list[str](), list[int]()
    threads = [
        threading.Thread(target=_query_loop, args=(fresh_url, stop, errors, done)) for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    try:
        seq = 1000
        for year in (2010, 2011, 2012):
            for month in range(1, 13):
                seq += 1
                pg.append([rec(seq, datetime(year, month, 3, tzinfo=UTC), stream="old")])
            pg.drop_partitions_before(to_micros(f"{year + 1}-01-01T00:00:00Z"))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert done
    assert not any(name.startswith("plexichat_records_p201") for name in partitions(fresh_url))


def test_retention_beside_a_long_reader_lets_queries_run_and_deletes_rows(
    pg: PostgresStore, fresh_url: str
) -> None:
    """A long reader (an export's open transaction) holds the record tables: retention's
    drop waits briefly per try, queries run between the tries, and retention ends by
    deleting the expired rows row by row (their partitions stay, empty) instead of failing."""
    old = datetime(2024, 3, 5, tzinfo=UTC)
    pg.append([rec(k, old + timedelta(seconds=k)) for k in range(1, 200)])
    pg.append([rec(1000, datetime(2026, 1, 5, tzinfo=UTC))])
    reader = psycopg.connect(fresh_url)  # a transaction open on the records: ACCESS SHARE
    reader.execute("SELECT count(*) FROM plexichat_records").fetchone()
    running, during = threading.Event(), list[int]()
    outcome: list[int | Exception] = []
    running.set()

    def retention() -> None:
        try:
            outcome.append(pg.drop_partitions_before(to_micros("2025-01-01T00:00:00Z")))
        except Exception as exc:
            outcome.append(exc)
        finally:
            running.clear()

    other = PostgresStore(fresh_url, pool_size=1)
    thread = threading.Thread(target=retention)
    try:
        thread.start()
        for _ in range(10_000):  # bounded: retention ends long before
            found = other.count(WHERE)
            if running.is_set():
                during.append(found)
            else:
                break
        thread.join()
    finally:
        reader.close()
        other.close()
    assert outcome == [0]  # nothing dropped while the reader held the tables: emptied
    assert during  # queries completed while retention was trying
    assert pg.count(LogQuery(end="2025-01-01T00:00:00Z")) == 0
    assert pg.count(LogQuery()) == 1
    assert pg.drop_partitions_before(to_micros("2025-01-01T00:00:00Z")) == 1  # now free


def _kill(url: str, pids: list[int]) -> int:
    """Terminate the backends ``pids`` from another connection and wait until they are gone
    (as after a restart); how many were."""
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE pid = ANY(%s)",
            [pids],
        ).fetchone()
        for _ in range(1000):  # until they are gone (their sockets closed), bounded
            gone = admin.execute(
                "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY(%s))", [pids]
            ).fetchone()
            if gone and gone[0]:
                break
            time.sleep(0.01)
    return int(row[0]) if row else 0


def _pooled_pids(store: PostgresStore) -> list[int]:
    """The backend pids of the store's idle pooled connections (a test's peek)."""
    slots: Any = store._slots
    return [conn.info.backend_pid for conn in list(slots.queue) if conn is not None]


def _warm(store: PostgresStore, n: int) -> None:
    """Open ``n`` pooled connections (``n`` threads inside the store at once)."""
    barrier = threading.Barrier(n)

    def work() -> None:
        with store._connection() as conn:
            barrier.wait()
            conn.execute("SELECT 1")

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_calls_after_the_server_ended_pooled_connections_succeed(
    pg: PostgresStore, fresh_url: str
) -> None:
    """Every pooled connection terminated by the server (a restart, pg_terminate_backend):
    each later read and write works, none fails with a stale connection's error."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    pg.append([rec(k, base + timedelta(seconds=k)) for k in range(1, 20)], {"seg": 5})
    for round_ in range(2):
        _warm(pg, 4)
        pids = _pooled_pids(pg)
        assert len(pids) == 4
        assert _kill(fresh_url, pids) == 4
        for _ in range(4):
            assert pg.count(LogQuery()) == 19 + round_
            assert len(pg.query(LogQuery(limit=5)).entries) == 5
            assert pg.positions() == {"seg": 5}
            assert pg.last_id() > 0
            assert pg.stats()["records"] == 19 + round_
        _warm(pg, 4)
        assert _kill(fresh_url, _pooled_pids(pg)) == 4
        assert pg.append([rec(100, base)], {"seg": 5}) == 1 - round_


def _killed_mid_call(store: PostgresStore, server: str, pid: int) -> None:
    """A statement on the store's connection ``pid``, ended by the server as it is taken."""
    with store._connection() as conn:
        assert _kill(server, [pid]) == 1
        conn.execute("SELECT pg_sleep(5)")


def test_a_connection_ended_mid_call_raises_a_plexi_error_without_the_password(
    server: str, fresh_url: str
) -> None:
    """A backend ended during a call: the store's error, with the URL redacted, never a
    raw psycopg error; the next call works on a new connection."""
    url = fresh_url.replace("postgres@", "postgres:s3cret@", 1)
    store = PostgresStore(url, pool_size=1)
    try:
        store.append([rec(1, datetime(2026, 1, 1, tzinfo=UTC))])
        with store._connection() as conn:
            pid = conn.info.backend_pid
        with pytest.raises(PlexiLoggingError) as caught:
            _killed_mid_call(store, server, pid)
        assert not isinstance(caught.value, psycopg.Error)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
        assert "s3cret" not in str(caught.value)
        assert store.url in str(caught.value)
        assert store.count(LogQuery()) == 1
    finally:
        store.close()


def test_postgres_store_documents_its_search_limit() -> None:
    """The store's docstring says search covers the first 100,000 characters of a record."""
    from plexichat.core.logging.store import _postgres_rows, postgres

    assert _postgres_rows.SEARCH_CHARS == 100_000
    for doc in (PostgresStore.__doc__ or "", postgres.__doc__ or ""):
        assert "100,000 characters" in doc
