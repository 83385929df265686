"""The SQLite store's time-ordered keys and its search-first plan.

Pages are ordered by ``tid`` (``_sqlite_tid``) and a search may be answered by walking the
search index newest first (``_select_by_search``) or, when that walk is long, by the plan
that filters the time order; both must give exactly the same pages. A store of schema
version 1 (no keys) is upgraded in place.
"""

from __future__ import annotations

import dataclasses
import itertools
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexichat.core.logging.store import LogQuery, StoredRecord
from plexichat.core.logging.store import sqlite as sqlite_module
from plexichat.core.logging.store._sqlite_budget import Budget
from plexichat.core.logging.store._sqlite_schema import SCHEMA_VERSION
from plexichat.core.logging.store._sqlite_tid import SLOTS, allocate, base
from plexichat.core.logging.store.base import record_from_event, to_micros
from plexichat.core.logging.store.sqlite import SQLiteStore

WORDS = ("database", "timeout", "cache", "login")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def rec(seq: int, ts: str, *, stream: str = "s", **extra: Any) -> StoredRecord:
    """A record of ``stream`` at ``ts`` (ISO-8601)."""
    event: dict[str, Any] = {"timestamp": ts, "level": "INFO", "message": f"m{seq}"}
    event.update(logger="app", stream=stream, seq=seq, **extra)
    return record_from_event(event)


def every_page(store: SQLiteStore, query: LogQuery) -> list[dict[str, Any]]:
    """Every record ``query`` matches, page by page through the cursors."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = store.query(dataclasses.replace(query, cursor=cursor) if cursor else query)
        out.extend(page.entries)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def _query(**kwargs: Any) -> LogQuery:
    return LogQuery(**kwargs)


def test_a_burst_in_one_microsecond_keeps_every_record_in_order(tmp_path: Path) -> None:
    """3,000 records in one microsecond (more than it has keys) and records in the next
    microseconds: all stored, none twice across pages, in time order to the microsecond."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    burst = [rec(i, "2026-01-01T00:00:00.000001Z", message=f"burst {i}") for i in range(3000)]
    after = [rec(3000 + i, f"2026-01-01T00:00:00.00000{2 + i}Z", stream="t") for i in range(5)]
    assert store.append(burst[:1500]) == 1500
    assert store.append(after) == 5
    assert store.append(burst[1500:]) == 1500
    for order in ("desc", "asc"):
        got = every_page(store, LogQuery(limit=97, order=order))
        keys = [(e["stream"], e["seq"]) for e in got]
        assert len(keys) == len(set(keys)) == 3005
        times = [to_micros(e["timestamp"]) for e in got]
        pairs = itertools.pairwise(times)
        assert all((a >= b if order == "desc" else a <= b) or abs(a - b) <= 3 for a, b in pairs)
    store.close()


def test_keys_are_allocated_around_stored_ones(tmp_path: Path) -> None:
    """allocate() never hands out a stored key or one key twice, and keys follow time."""
    conn = sqlite3.connect(tmp_path / "k.db")
    conn.execute("CREATE TABLE records (tid INTEGER PRIMARY KEY)")
    t = 1_700_000_000_000_000
    conn.executemany("INSERT INTO records VALUES (?)", [(base(t) + k,) for k in range(SLOTS)])
    keys = allocate(conn, [t, t, t - 5, t + 1])
    assert len(set(keys)) == 4
    assert keys[0] >= base(t) + SLOTS  # every key of t was stored
    assert keys[2] == base(t - 5)
    assert allocate(conn, []) == []
    assert allocate(conn, [-(10**18)])[0] == 0  # before 1970: the keys of 1970
    conn.close()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> SQLiteStore:
    """A store of 4,000 records of two streams, written out of time order, with levels,
    words and a context field."""
    path = tmp_path_factory.mktemp("mixed") / "s.db"
    store = SQLiteStore(f"sqlite:///{path}")
    for stream in ("b", "a"):  # the later stream first: ids do not follow time
        batch = []
        for i in range(2000):
            second = (i * 7 + (3 if stream == "a" else 0)) % 3600
            batch.append(
                rec(
                    i,
                    f"2026-01-01T{second // 60 // 60:02d}:{second // 60 % 60:02d}:"
                    f"{second % 60:02d}.{i % 1000:03d}Z",
                    stream=stream,
                    level=LEVELS[i % 5],
                    message=f"{WORDS[i % 4]} {WORDS[i % 3]} event {i}",
                    context={"user_id": f"u{i % 9}", "n": i % 4},
                )
            )
        store.append(batch)
    return store


QUERIES = st.builds(
    _query,
    search=st.sampled_from(
        [None, "database", "database AND timeout", "cache OR login", '"event 1"', "database"]
    ),
    min_level=st.sampled_from([None, 10, 30, 40, 50]),
    where=st.sampled_from([(), (("context.user_id", "u3"),), (("context.n", "2"),)]),
    start=st.sampled_from([None, "2026-01-01T00:10:00Z"]),
    end=st.sampled_from([None, "2026-01-01T00:40:00Z"]),
    order=st.sampled_from(["desc", "asc"]),
    limit=st.sampled_from([1, 7, 100]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=QUERIES)
def test_the_search_first_plan_and_the_other_give_the_same_pages(
    mixed: SQLiteStore, query: LogQuery, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the search-first walk cut short at once (the other plan answers) or allowed
    (it answers when it can), every page is the same; both agree with a scan in Python."""
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_module, "_SEARCH_STEPS", 1)
        other = every_page(mixed, query)
    first = every_page(mixed, query)
    assert [(e["stream"], e["seq"]) for e in first] == [(e["stream"], e["seq"]) for e in other]
    assert mixed.count(query) == len(first)


def test_search_first_finds_the_newest_matches_of_many(tmp_path: Path) -> None:
    """The newest page of a common word among many records is the newest by time, even
    when the oldest records were stored last."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    new = [
        rec(i, f"2026-02-01T00:00:{i % 60:02d}.{i:06d}Z", message=f"database {i}")
        for i in range(3000)
    ]
    old = [
        rec(i, f"2025-01-01T00:00:{i % 60:02d}Z", stream="old", message=f"database {i}")
        for i in range(3000)
    ]
    store.append(new)
    store.append(old)  # stored last: higher row ids, older times
    page = store.query(LogQuery(search="database", limit=10))
    assert all(e["timestamp"].startswith("2026-02-01") for e in page.entries)
    want = sorted(new, key=lambda r: r.ts, reverse=True)[:10]
    assert [e["seq"] for e in page.entries] == [r.seq for r in want]
    store.close()


def test_budget_interrupts_a_long_statement_and_lets_a_short_one_finish() -> None:
    """run() gives None past its work; the deadline still interrupts; short statements run."""
    conn = sqlite3.connect(":memory:")
    budget = Budget(conn)
    long = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT max(x) FROM (SELECT x FROM c LIMIT 1000000)"
    )
    assert budget.run(conn, long, [], 5_000) is None
    assert budget.run(conn, "SELECT 41 + 1", [], 5_000) == [(42,)]
    assert conn.execute(long).fetchone() == (1_000_000,)  # no bound outside run()
    budget.deadline = 0.0
    with pytest.raises(sqlite3.OperationalError, match="interrupt"):
        budget.run(conn, long, [], 10**12)
    conn.close()


_V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL) STRICT;
CREATE TABLE records (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, levelno INTEGER NOT NULL, level TEXT NOT NULL,
    category TEXT NOT NULL, logger TEXT NOT NULL, module TEXT NOT NULL, message TEXT NOT NULL,
    stream TEXT NOT NULL, seq INTEGER NOT NULL, event_type TEXT, security_severity INTEGER,
    attrs TEXT NOT NULL, raw TEXT NOT NULL, UNIQUE (stream, seq)
) STRICT;
CREATE INDEX records_ts ON records (ts, id);
CREATE INDEX records_level_ts ON records (levelno, ts);
CREATE INDEX records_category_ts ON records (category, ts);
CREATE INDEX records_logger ON records (logger);
CREATE VIRTUAL TABLE records_fts USING fts5 (
    message, logger, attrs, content='records', content_rowid='id', tokenize='unicode61'
);
CREATE TRIGGER records_ad AFTER DELETE ON records BEGIN
    INSERT INTO records_fts (records_fts, rowid, message, logger, attrs)
    VALUES ('delete', old.id, old.message, old.logger, old.attrs);
END;
CREATE TABLE positions (key TEXT PRIMARY KEY, "offset" INTEGER NOT NULL) STRICT;
INSERT INTO schema_version (version) VALUES (1);
"""


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    """A store written by version 1 opens: its records keep their order, search works on
    them, positions are kept, and new records interleave by time."""
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(_V1_SCHEMA)
    for i in range(50):
        ts = to_micros(f"2026-01-01T00:00:{(49 - i):02d}Z")  # inserted newest first
        raw = orjson.dumps(
            {"timestamp": f"2026-01-01T00:00:{(49 - i):02d}Z", "message": f"old {i}"}
        )
        conn.execute(
            "INSERT INTO records (ts, levelno, level, category, logger, module, message, stream, "
            "seq, attrs, raw) VALUES (?, 20, 'INFO', 'system', 'app', 'm', ?, 's', ?, '', ?)",
            (ts, f"old {i} database", i, raw.decode()),
        )
    conn.execute(
        "INSERT INTO records_fts (rowid, message, logger, attrs) "
        "SELECT id, message, logger, attrs FROM records"
    )
    conn.execute(
        "INSERT INTO records (ts, levelno, level, category, logger, module, message, stream, "
        "seq, attrs, raw) VALUES (?, 60, 'SECURITY', 'security', 'app', 'm', 'login failed', "
        "'sec', 1, '', '{\"message\":\"login failed\"}')",
        (to_micros("2025-12-31T00:00:00Z"),),
    )
    conn.execute("INSERT INTO positions VALUES ('seg', 123)")
    conn.commit()
    conn.close()

    store = SQLiteStore(f"sqlite:///{path}")
    assert store.positions() == {"seg": 123}
    assert [e["message"] for e in store.query(LogQuery(limit=3)).entries] == [
        "old 0",
        "old 1",
        "old 2",
    ]
    assert store.count(LogQuery(search="database")) == 50
    assert store.count(LogQuery()) == 51
    assert store.count(LogQuery(exclude_security=True)) == 50  # the column was filled
    assert store.query_raw(LogQuery(start="2025-12-31T00:00:00Z", limit=1000)).sensitive == 1
    store.append([rec(100, "2026-01-01T00:00:10.5Z", stream="new", message="new database")])
    page = store.query(
        LogQuery(search="database", start="2026-01-01T00:00:10Z", end="2026-01-01T00:00:11Z")
    )
    assert [e["message"] for e in page.entries] == ["old 38", "new database", "old 39"]
    store.close()
    check = sqlite3.connect(path)
    assert check.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    # a process of version 1 started before the upgrade: its write (records, then its
    # position, in one transaction) and its search fail instead of going wrong
    check.execute("BEGIN IMMEDIATE")
    check.execute(
        "INSERT OR IGNORE INTO records (ts, levelno, level, category, logger, module, "
        "message, stream, seq, attrs, raw) VALUES (1, 20, 'INFO', 's', 'a', 'm', 'x', "
        "'old', 7, '', '{}')"
    )
    with pytest.raises(sqlite3.OperationalError, match="no such table: positions"):
        check.execute("INSERT INTO positions (key, \"offset\") VALUES ('seg', 999)")
    check.execute("ROLLBACK")
    with pytest.raises(sqlite3.OperationalError, match="no such table: records_fts"):
        check.execute("SELECT rowid FROM records_fts WHERE records_fts MATCH 'database'")
    assert check.execute("SELECT count(DISTINCT tid) FROM records").fetchone()[0] == 52
    check.close()


def test_times_past_the_keys_range_are_all_found_by_a_time_range(tmp_path: Path) -> None:
    """Records after June 2255 share the last keys; a time range still finds every one
    (the key bound is dropped there) and paging returns each once."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    far = [rec(i, f"2300-01-01T00:00:{i % 60:02d}Z", stream="far") for i in range(1500)]
    near = [rec(i, "2026-01-01T00:00:00Z", stream="near") for i in range(10)]
    store.append(far + near)
    ranged = LogQuery(start="2299-12-31T00:00:00Z", end="2301-01-01T00:00:00Z", limit=250)
    assert store.count(ranged) == 1500
    assert len({e["seq"] for e in every_page(store, ranged)}) == 1500
    assert store.count(LogQuery(end="2027-01-01T00:00:00Z")) == 10
    store.close()


def test_ids_are_dense_for_the_live_tail_and_never_given_twice(tmp_path: Path) -> None:
    """Records already stored and repeats within a batch get no id (no gap for the live
    tail to wait on); after the newest records are deleted, or the store cleared, new
    records get ids above every id given before (the tail never misses them)."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    first = [rec(i, f"2026-01-01T00:00:0{i}Z") for i in range(3)]
    assert store.append(first) == 3
    again = [first[1], rec(3, "2026-01-01T00:00:03Z"), rec(3, "2026-01-01T00:00:03Z")]
    assert store.append(again) == 1
    ids = [row_id for row_id, _ in store.tail(0, 100)]
    assert ids == [1, 2, 3, 4]
    conn = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    conn.execute("DELETE FROM records WHERE id >= 3")  # the newest two, as retention may
    conn.close()
    assert store.append([rec(9, "2026-01-01T00:00:09Z")]) == 1
    assert [row_id for row_id, _ in store.tail(2, 100)] == [5]
    store.clear()
    assert store.append([rec(9, "2026-01-01T00:00:09Z")]) == 1
    assert [row_id for row_id, _ in store.tail(5, 100)] == [6]
    store.close()
