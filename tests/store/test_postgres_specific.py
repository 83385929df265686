"""What only the PostgreSQL store does: partitions, retention, concurrency, URL secrecy.

The tests need a server named by ``PLEXICHAT_TEST_POSTGRES_URL``; without it they are skipped
with the reason, except in CI (``CI=true``) where that is a failure. Each test module run
works in a schema of its own (dropped at the end), so it never touches other tables.
"""

from __future__ import annotations

import multiprocessing
import threading
import traceback
from collections.abc import Generator, Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from plexichat.core.logging._core.errors import PlexiLoggingError
from plexichat.core.logging.store.base import LogQuery, StoredRecord, record_from_event, to_micros
from plexichat.core.logging.store.postgres import SCHEMA_VERSION, PostgresStore, redact_url
from plexichat.core.logging.store.search import QuerySyntaxError
from tests.pg import duplicates, own_schema, partitions, sql


@pytest.fixture(scope="module")
def url(server: str) -> Iterator[str]:
    """A URL on a schema of this module's own, dropped afterwards."""
    with own_schema(server) as schema_url:
        yield schema_url


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    """An empty store, cleared and closed after the test."""
    pg_store = PostgresStore(url)
    pg_store.clear()
    try:
        yield pg_store
    finally:
        pg_store.clear()
        pg_store.close()


def rec(timestamp: str, seq: int, *, stream: str = "s1", **extra: Any) -> StoredRecord:
    """A record at ``timestamp`` (ISO-8601)."""
    event: dict[str, Any] = {
        "timestamp": timestamp,
        "level": "INFO",
        "category": "system",
        "logger": "app",
    }
    event.update(message=f"message {seq}", module="m", stream=stream, seq=seq)
    return record_from_event({**event, **extra})


def placement(url: str) -> dict[int, str]:
    """Which partition holds each record, by seq."""
    rows = sql(url, "SELECT seq, tableoid::regclass::text FROM plexichat_records")
    return dict(rows)


# -- partitions and retention -------------------------------------------------------------------


def test_partitions_are_created_on_demand_per_month(store: PostgresStore, url: str) -> None:
    """Records of three months land in three monthly partitions, split exactly at midnight
    UTC of the 1st; a time before 2000 goes to the default partition."""
    store.append(
        [
            rec("2024-01-31T23:59:59.999999Z", 1),
            rec("2024-02-01T00:00:00Z", 2),
            rec("2024-03-15T12:00:00Z", 3),
            rec("1999-12-31T23:00:00Z", 4),
        ]
    )
    assert {"plexichat_records_p202401", "plexichat_records_p202402"} <= set(partitions(url))
    assert "plexichat_records_p199912" not in partitions(url)
    assert placement(url) == {
        1: "plexichat_records_p202401",
        2: "plexichat_records_p202402",
        3: "plexichat_records_p202403",
        4: "plexichat_records_default",
    }


def test_partition_created_later_takes_its_rows_from_the_default(
    store: PostgresStore, url: str
) -> None:
    """While the table is locked, records of a new month wait in the default partition; the
    next append creates the partition and moves them into it, and nothing is lost."""
    with psycopg.connect(url) as blocker:  # a long reader: holds a lock on the table
        blocker.execute("SELECT count(*) FROM plexichat_records")
        store.append([rec("2023-05-02T00:00:00Z", 1)])  # waits 3 s for the lock, gives up
    assert placement(url) == {1: "plexichat_records_default"}
    store._busy_until = 0.0  # do not wait out the 30 s back-off
    store.append([rec("2023-05-03T00:00:00Z", 2), rec("2023-05-02T00:00:00Z", 1)])
    assert placement(url) == {1: "plexichat_records_p202305", 2: "plexichat_records_p202305"}
    assert store.count(LogQuery()) == 2


def test_drop_partitions_before_drops_only_whole_old_months(
    fresh_store: PostgresStore, fresh_url: str
) -> None:
    """A cut in mid-February drops January only; a cut at March 1st drops February too.
    Default-partition rows older than the cut go as well."""
    store, url = fresh_store, fresh_url
    store.append(
        [
            rec("2024-01-10T00:00:00Z", 1),
            rec("2024-02-10T00:00:00Z", 2),
            rec("2024-02-20T00:00:00Z", 3),
            rec("2024-03-10T00:00:00Z", 4),
            rec("1990-01-01T00:00:00Z", 5),
        ]
    )
    assert store.drop_partitions_before(to_micros("2024-02-15T00:00:00Z")) == 1
    assert "plexichat_records_p202401" not in partitions(url)
    assert sorted(placement(url)) == [2, 3, 4]
    assert store.drop_partitions_before(to_micros("2024-03-01T00:00:00Z")) == 1
    assert sorted(placement(url)) == [4]
    assert store.drop_partitions_before(to_micros("2024-03-01T00:00:00Z")) == 0
    store.append([rec("2024-01-11T00:00:00Z", 6)])  # an old month can come back
    assert placement(url)[6] == "plexichat_records_p202401"


def test_search_index_and_filters_work_in_every_partition(store: PostgresStore) -> None:
    """Search, where and time filters see records of several partitions and the default."""
    store.append(
        [
            rec("2024-01-10T00:00:00Z", 1, message="disk full", context={"host": "db1"}),
            rec("2024-06-10T00:00:00Z", 2, message="disk ok", context={"host": "db1"}),
            rec("1980-01-01T00:00:00Z", 3, message="disk full", context={"host": "db2"}),
        ]
    )
    assert store.count(LogQuery(search='"disk full"')) == 2
    assert store.count(LogQuery(where=(("context.host", "db1"),))) == 2
    assert store.count(LogQuery(search="disk", end="2024-01-31T00:00:00Z")) == 2
    assert store.count(LogQuery(search="db2")) == 1


# -- concurrency --------------------------------------------------------------------------------


def batches(stream: str, reverse: bool) -> list[list[StoredRecord]]:
    """300 records in overlapping batches of 100 (each record in up to two batches)."""
    records = [
        rec(f"2024-0{1 + i % 3}-01T00:00:{i % 60:02d}Z", i, stream=stream) for i in range(300)
    ]
    out = [records[start : start + 100] for start in range(0, 300, 50)]
    return [list(reversed(b)) for b in reversed(out)] if reverse else out


def test_threads_appending_overlapping_batches_store_each_record_once(
    store: PostgresStore, url: str
) -> None:
    """Two threads on one store and two on another push the same records in opposite
    orders: every record is stored once and the inserted counts add up."""
    other = PostgresStore(url, pool_size=2)
    inserted: list[int] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def work(target: PostgresStore, reverse: bool) -> None:
        try:
            start.wait()
            for batch in batches("a", reverse) + batches("b", not reverse):
                inserted.append(target.append(batch, {f"{id(target)}-{reverse}": len(batch)}))
        except BaseException as exc:
            failures.append(exc)

    threads = [
        threading.Thread(target=work, args=(target, reverse))
        for target in (store, other)
        for reverse in (False, True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert failures == []
    assert sum(inserted) == 600
    assert store.count(LogQuery()) == 600
    assert duplicates(url) == []
    assert len(store.positions()) == 4


def _indexer_process(url: str, stream: str, reverse: bool, out: Any) -> None:
    """One 'indexer': its own stream and a part of the other's, in overlapping batches."""
    store = PostgresStore(url)
    try:
        total = 0
        own, shared = batches(stream, reverse), batches("shared", reverse)
        for n, batch in enumerate(own + shared):
            total += store.append(batch, {f"{stream}/segment.jsonl": n})
        out.put(total)
    finally:
        store.close()


@pytest.mark.slow
def test_two_processes_pushing_at_once_lose_and_double_nothing(
    store: PostgresStore, url: str
) -> None:
    """Two indexer processes (two log directories) pushing into one store at once, with
    overlapping records: nothing is lost, nothing is stored twice, both positions saved."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_indexer_process, args=(url, name, reverse, out))
        for name, reverse in (("host1", False), ("host2", True))
    ]
    for proc in procs:
        proc.start()
    totals = [out.get(timeout=120) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    out.close()
    out.join_thread()
    assert sum(totals) == 900
    assert store.count(LogQuery()) == 900
    assert duplicates(url) == []
    assert store.positions() == {"host1/segment.jsonl": 11, "host2/segment.jsonl": 11}


def _open_store(url: str, together: Any) -> None:
    together.wait(60)
    PostgresStore(url).close()


@pytest.mark.slow
def test_schema_created_by_several_processes_at_once(fresh_url: str) -> None:
    """Four processes opening a new store at the same moment all succeed, and the schema
    exists once."""
    ctx = multiprocessing.get_context("spawn")
    together = ctx.Barrier(4)
    procs = [ctx.Process(target=_open_store, args=(fresh_url, together)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    assert [proc.exitcode for proc in procs] == [0, 0, 0, 0]
    assert sql(fresh_url, "SELECT version FROM plexichat_schema_version") == [(SCHEMA_VERSION,)]
    with PostgresStore(fresh_url) as store:
        assert store.append([rec("2024-01-01T00:00:00Z", 1)]) == 1


def test_newer_schema_is_refused(fresh_url: str) -> None:
    """A store written by a newer version is not touched: a clear error says to upgrade."""
    PostgresStore(fresh_url).close()
    sql(fresh_url, "UPDATE plexichat_schema_version SET version = 99")
    with pytest.raises(PlexiLoggingError, match=r"schema version 99.*upgrade"):
        PostgresStore(fresh_url)


def test_threads_beyond_the_pool_wait_their_turn(url: str) -> None:
    """Eight threads on a store with two connections all get their answers."""
    results: list[int] = []
    with PostgresStore(url, pool_size=2) as small:
        small.append([rec("2024-01-01T00:00:00Z", n) for n in range(5)])
        threads = [
            threading.Thread(target=lambda: results.append(small.count(LogQuery())))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        small.clear()
    assert results == [5] * 8


def test_iter_records_streams_many_fetches_and_releases_its_connection(
    store: PostgresStore,
) -> None:
    """iter_records returns all of 4,500 rows (several server-side fetches), in order, and
    an iteration abandoned midway does not block the store."""
    store.append([rec("2024-01-01T00:00:00Z", n, stream=f"{n:05d}") for n in range(4500)])
    streams = [r.stream for r in store.iter_records(LogQuery(order="asc"))]
    assert streams == [f"{n:05d}" for n in range(4500)]
    partial = store.iter_records(LogQuery())
    assert next(partial).stream == "04499"
    assert isinstance(partial, Generator)
    partial.close()
    store.clear()
    assert store.count(LogQuery()) == 0


def test_closed_store_refuses_calls(url: str) -> None:
    """After close(), calls raise a clear error instead of reconnecting."""
    closed = PostgresStore(url)
    closed.close()
    with pytest.raises(PlexiLoggingError, match="closed"):
        closed.count(LogQuery())
    with pytest.raises(PlexiLoggingError, match="closed"):
        closed.iter_records(LogQuery())


# -- hostile input ------------------------------------------------------------------------------

HOSTILE = [
    "'; DROP TABLE plexichat_records; --",
    "x') OR 1=1 --",
    "a & b | !c",
    "a:* <-> b",
    "!! x",
    "'a' <2> 'b'",
    "%s %(x)s {}",
    "$$ $1 $body$",
    "\\",
    "'",
    "a\x00b",
    "NOT",
    "a " + "NOT " * 200 + "b",
    " OR ".join(f"w{n}" for n in range(64)),
    "é" * 999,
    "x" * 1000,
    '"unbalanced',
    "\ud800",
    "日本語 テキスト",
]


def test_hostile_searches_never_reach_sql_as_syntax(store: PostgresStore) -> None:
    """Hostile search strings give results or QuerySyntaxError, never a psycopg error, and
    the data survives."""
    store.append([rec("2024-01-01T00:00:00Z", 1, message="O'Reilly said a & b; DROP TABLE")])
    for text in HOSTILE:
        try:
            query = LogQuery(search=text)
            store.query(query)
            store.count(query)
            list(store.iter_records(query))
        except QuerySyntaxError:
            pass
    assert store.count(LogQuery(search='"O\'Reilly said" AND drop')) == 1


def test_hostile_filter_values_are_data(store: PostgresStore) -> None:
    """Quotes, LIKE wildcards, NUL and lone surrogates in filters are data or a clear error."""
    store.append([rec("2024-01-01T00:00:00Z", 1, logger="a%b.c", context={"k": "v'; --"})])
    assert store.count(LogQuery(loggers=("a%b.*",))) == 1
    assert store.count(LogQuery(loggers=("a%.*", "_.*", "%"))) == 0
    assert store.count(LogQuery(where=(("context.k", "v'; --"),))) == 1
    assert store.count(LogQuery(categories=("sys\x00tem",), modules=("m",))) == 1
    with pytest.raises(QuerySyntaxError, match="Unicode"):
        store.count(LogQuery(where=(("context.k", "\ud800"),)))


def test_nul_characters_are_stored_and_searchable(store: PostgresStore) -> None:
    """PostgreSQL text cannot hold U+0000: such records are stored anyway, the line
    unchanged, and their words are found."""
    record = rec("2024-01-01T00:00:00Z", 1, message="bad\x00byte", context={"k\x00": "v\x00w"})
    assert store.append([record]) == 1
    assert store.count(LogQuery(search='"bad byte"')) == 1
    (got,) = store.iter_records(LogQuery())
    assert got.raw == record.raw
    assert store.query(LogQuery()).entries == [record.record]


def test_out_of_range_numbers_are_clamped_not_fatal(store: PostgresStore) -> None:
    """A level number or seq beyond PostgreSQL's integers (a line may hold a u64 seq) does
    not stop the indexer."""
    record = replace(rec("2024-01-01T00:00:00Z", 1), seq=2**64 - 1, levelno=10**11)
    assert store.append([record]) == 1
    assert store.count(LogQuery(min_level=50)) == 1


# -- the URL's password -------------------------------------------------------------------------


def test_redact_url_hides_passwords() -> None:
    """The password of the authority and of a password= parameter becomes ***."""
    assert redact_url("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact_url("postgresql://u@h/db?password=x&sslmode=require") == (
        "postgresql://u@h/db?password=***&sslmode=require"
    )
    assert redact_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert redact_url("host=h password='a b' user=u") == "host=h password=*** user=u"


@pytest.mark.parametrize(
    "bad_url",
    [
        "postgresql://postgres:S3cret-pw%21@127.0.0.1:1/test",
        "postgresql://postgres@127.0.0.1:1/test?password=S3cret-pw!",
        "postgresql://postgres:S3cret-pw!@127.0.0.1:notaport/test",
        "postgresql://postgres:S3cret-pw!@127.0.0.1:1/test?nosuchoption=1",
    ],
)
def test_password_is_never_in_connection_errors(bad_url: str) -> None:
    """A failed connection raises PlexiLoggingError whose message, repr and traceback
    (no chained psycopg error) never show the password."""
    with pytest.raises(PlexiLoggingError) as info:
        PostgresStore(bad_url)
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert "cannot connect" in shown
    assert "S3cret" not in shown
    assert "S3cret" not in redact_url(bad_url)


def test_password_is_not_in_url_or_repr(url: str) -> None:
    """A store opened with a password shows the URL redacted (trust auth ignores it)."""
    with_password = url.replace("://postgres@", "://postgres:hunter2@")
    if with_password == url:
        pytest.skip("the test server URL has no plain postgres@ user to add a password to")
    with PostgresStore(with_password) as secret_store:
        assert "hunter2" not in secret_store.url
        assert "hunter2" not in repr(secret_store)
        assert secret_store.url == with_password.replace("hunter2", "***")
