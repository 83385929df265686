"""SQLAlchemy: query histograms, the slow-query log and pool gauges on real engines.

SQLite runs always (a file database). PostgreSQL runs when ``PLEXICHAT_TEST_POSTGRES_URL``
names a server (through psycopg 3); otherwise those cases are skipped with the reason, except
in CI (``CI=true``) where that is a failure.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool, QueuePool

from plexichat.core.logging import configure_logging, flush_logging
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.integrations.sqlalchemy import (
    instrument_engine,
    is_instrumented,
    uninstrument_engine,
    update_pool_metrics,
)
from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.testing import capture_logs
from tests.pg import server_url

SECRET = "hunter2-SECRET-7f3a9c"


def _postgres_url() -> str:
    return "postgresql+psycopg://" + server_url().split("://", 1)[1]


_TABLES: dict[int, str] = {}


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A real engine with a fresh table of its own (dropped at the end)."""
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    else:
        eng = create_engine(_postgres_url())
    table = f"items_{uuid.uuid4().hex[:8]}"
    _TABLES[id(eng)] = table
    with eng.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, note TEXT)"))
    yield eng
    uninstrument_engine(eng)
    with eng.begin() as conn:
        conn.execute(text(f"DROP TABLE {table}"))
    eng.dispose()
    del _TABLES[id(eng)]


def _table(engine: Engine) -> str:
    return _TABLES[id(engine)]


def _kinds(registry: MetricsRegistry) -> dict[str, int]:
    return {s.tags["kind"]: s.sketch().count for s in registry.series("db_query_duration_seconds")}


def _workload(engine: Engine) -> None:
    table = _table(engine)
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO {table} (id, note) VALUES (:id, :s)"), {"id": 1, "s": SECRET}
        )
        conn.execute(text(f"SELECT note FROM {table} WHERE note = :s"), {"s": SECRET})
        conn.execute(text(f"SELECT * FROM {table} WHERE note = '{SECRET}'"))
        conn.execute(text(f"UPDATE {table} SET note = :s WHERE id = 1"), {"s": SECRET + "2"})
        conn.execute(text(f"DELETE FROM {table} WHERE id = 1"))


def test_query_histogram_by_statement_kind(engine: Engine, registry: MetricsRegistry) -> None:
    """Every statement is timed into db_query_duration_seconds tagged by its kind."""
    instrument_engine(engine, slow_query_threshold="off")
    _workload(engine)
    kinds = _kinds(registry)
    assert kinds["INSERT"] == 1
    assert kinds["SELECT"] >= 2
    assert kinds["UPDATE"] == 1
    assert kinds["DELETE"] == 1


def test_slow_query_record_has_shape_not_parameters(engine: Engine, log_dir: Path) -> None:
    """Slow statements (threshold 0: all) are logged with their shape; the secret parameter
    and literal never reach the log files."""
    instrument_engine(engine, slow_query_threshold=0)
    with capture_logs() as events:
        _workload(engine)
    flush_logging()
    slow = [e for e in events if e["logger"] == "plexichat.db"]
    assert [e["context"]["statement_kind"] for e in slow] == [
        "INSERT", "SELECT", "SELECT", "UPDATE", "DELETE",
    ]  # fmt: skip
    table = _table(engine)
    assert slow[2]["metadata"]["statement"] == f"SELECT * FROM {table} WHERE note = ?"
    assert slow[0]["level"] == "WARNING"
    assert slow[0]["category"] == "database"
    assert slow[0]["metadata"]["threshold_ms"] == 0
    files = [p for p in log_dir.rglob("*") if p.is_file() and "keys" not in p.parts]
    data = b"".join(p.read_bytes() for p in files)
    assert f"INSERT INTO {table}".encode() in data
    assert SECRET.encode() not in data


def test_statement_slower_than_threshold_is_logged(tmp_path: Path) -> None:
    """A statement that takes longer than the threshold gets a WARNING record."""
    engine = create_engine(f"sqlite:///{tmp_path / 'slow.db'}")

    @event.listens_for(engine, "connect")
    def add_sleep(dbapi_conn: Any, record: Any) -> None:
        def sleep_ms(ms: int) -> int:
            time.sleep(ms / 1000)
            return ms

        dbapi_conn.create_function("sleep_ms", 1, sleep_ms)

    instrument_engine(engine, slow_query_threshold="20 ms")
    with capture_logs() as events, engine.connect() as conn:
        conn.execute(text("SELECT sleep_ms(60)"))
    (record,) = [e for e in events if e["logger"] == "plexichat.db"]
    assert record["metadata"]["duration_ms"] >= 60
    assert record["metadata"]["statement"] == "SELECT sleep_ms(?)"
    engine.dispose()


def test_threshold_off_logs_nothing(engine: Engine, registry: MetricsRegistry) -> None:
    """With the slow-query log off, statements are timed but never logged."""
    instrument_engine(engine, slow_query_threshold="off")
    with capture_logs() as events:
        _workload(engine)
    assert [e for e in events if e["logger"] == "plexichat.db"] == []
    assert sum(_kinds(registry).values()) >= 5


def test_threshold_follows_the_setting(tmp_path: Path, log_dir: Path) -> None:
    """Without an explicit threshold the slow_query_threshold setting applies, read live."""
    engine = create_engine(f"sqlite:///{tmp_path / 'cfg.db'}")
    instrument_engine(engine)
    with engine.connect() as conn:
        with capture_logs() as before:
            conn.execute(text("SELECT 1"))  # default 0.5 s: a trivial query is not logged
        configure_logging(slow_query_threshold=0)
        with capture_logs() as after:
            conn.execute(text("SELECT 2"))
    assert [e for e in before if e["logger"] == "plexichat.db"] == []
    assert [e["metadata"]["statement"] for e in after if e["logger"] == "plexichat.db"] == [
        "SELECT ?"
    ]
    engine.dispose()


def test_failed_statement_counted(engine: Engine, registry: MetricsRegistry) -> None:
    """A failing statement is counted in db_query_errors_total and leaves no timer behind."""
    instrument_engine(engine)
    with engine.connect() as conn:
        with pytest.raises(Exception, match="no_such_table"):
            conn.execute(text("SELECT * FROM no_such_table"))
        assert not conn.info.get("_plexichat_query_starts")
    assert registry.counter("db_query_errors_total", {"kind": "SELECT"}).value == 1


def test_pool_gauges_follow_checkouts(tmp_path: Path, registry: MetricsRegistry) -> None:
    """db_pool_size / checked_out / overflow match the pool after every checkout and checkin."""
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", poolclass=QueuePool, pool_size=2, max_overflow=3
    )
    instrument_engine(engine, name="main")
    pool: Any = engine.pool
    tags = {"engine": "main"}

    def gauges() -> tuple[float, float, float]:
        return tuple(  # type: ignore[return-value]
            registry.gauge(f"db_pool_{k}", tags, unit="connections").value
            for k in ("size", "checked_out", "overflow")
        )

    def actual() -> tuple[int, int, int]:
        return pool.size(), pool.checkedout(), max(pool.overflow(), 0)

    conns = [engine.connect() for _ in range(4)]
    assert gauges() == actual() == (2, 4, 2)
    conns.pop().close()
    assert gauges() == actual()
    conns.pop().close()
    assert gauges() == actual()
    for conn in conns:
        conn.close()
    assert gauges() == actual()
    assert gauges()[1] == 0
    engine.dispose()


def test_update_pool_metrics_reads_status_now(tmp_path: Path) -> None:
    """update_pool_metrics returns the status; None when not instrumented or no status."""
    engine = create_engine(f"sqlite:///{tmp_path / 'u.db'}", poolclass=QueuePool, pool_size=3)
    assert update_pool_metrics(engine) is None
    instrument_engine(engine)
    assert update_pool_metrics(engine) == {"size": 3, "checked_out": 0, "overflow": 0}
    nullpool = create_engine(f"sqlite:///{tmp_path / 'n.db'}", poolclass=NullPool)
    instrument_engine(nullpool)
    assert update_pool_metrics(nullpool) is None
    engine.dispose()
    nullpool.dispose()


def test_default_engine_name(tmp_path: Path, registry: MetricsRegistry) -> None:
    """Gauges are tagged with the dialect and the database file name (no path, no secrets)."""
    engine = create_engine(f"sqlite:///{tmp_path / 'named.db'}")
    instrument_engine(engine)
    assert {s.tags["engine"] for s in registry.series("db_pool_size")} == {"sqlite/named.db"}
    engine.dispose()


def test_uninstrument_stops_recording(engine: Engine, registry: MetricsRegistry) -> None:
    """After uninstrument_engine no statement is recorded; a second call returns False."""
    instrument_engine(engine)
    instrument_engine(engine)  # again: replaces, never doubles
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert _kinds(registry) == {"SELECT": 1}
    assert is_instrumented(engine)
    assert uninstrument_engine(engine) is True
    assert not is_instrumented(engine)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert _kinds(registry) == {"SELECT": 1}
    assert uninstrument_engine(engine) is False


def test_bad_threshold_rejected(tmp_path: Path) -> None:
    """A threshold that is not a duration fails, naming the value and the accepted forms."""
    engine = create_engine(f"sqlite:///{tmp_path / 'b.db'}")
    with pytest.raises(ValueError, match=r"'soon'.*500 ms"):
        instrument_engine(engine, slow_query_threshold="soon")
    assert not is_instrumented(engine)


def test_metrics_failure_never_breaks_a_query(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failing registry is reported once; the query still returns its rows."""

    def broken() -> None:
        raise RuntimeError("registry down")

    instrument_engine(engine)
    monkeypatch.setattr("plexichat.core.logging.integrations.sqlalchemy.get_registry", broken)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 41 + 1")).scalar() == 42
        with pytest.raises(Exception, match="no_such"):
            conn.execute(text("SELECT * FROM no_such"))
        conn.rollback()
        conn.execute(text("SELECT 1")).close()
    assert error_reporter.counts["integrations.sqlalchemy"] >= 2
