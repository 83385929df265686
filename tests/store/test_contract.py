"""The contract every log store backend passes (run once per backend by the ``store`` fixture)."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexichat.core.logging.store import (
    LogQuery,
    LogStore,
    QuerySyntaxError,
    StoredRecord,
    open_store,
)
from plexichat.core.logging.store.base import is_sensitive, record_from_event, to_micros

BASE_US = to_micros("2026-01-01T00:00:00Z")


def iso(us: int) -> str:
    """The ISO-8601 UTC time of ``us`` microseconds since the epoch."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def make(
    seq: int,
    *,
    stream: str = "s1",
    second: float | None = None,
    level: str = "INFO",
    category: str = "system",
    logger: str = "app",
    module: str = "mod",
    message: str | None = None,
    **extra: Any,
) -> StoredRecord:
    """A record in the PlexiChat schema; its time is ``second`` (default ``seq``) after BASE."""
    offset = seq if second is None else second
    event: dict[str, Any] = {
        "timestamp": iso(BASE_US + int(offset * 1_000_000)),
        "level": level,
        "category": category,
        "message": f"message {seq}" if message is None else message,
        "module": module,
        "logger": logger,
        "stream": stream,
        "seq": seq,
        **extra,
    }
    return record_from_event(event)


def seqs(store: LogStore, **query: Any) -> list[int]:
    """The seq of every record one page of ``LogQuery(**query)`` returns, in order."""
    return [e["seq"] for e in store.query(LogQuery(limit=1000, **query)).entries]


def walk(store: LogStore, after_page: Any = None, **query: Any) -> list[dict[str, Any]]:
    """Every record of a query, page by page; ``after_page(n)`` runs after page ``n``."""
    out: list[dict[str, Any]] = []
    cursor: str | None = None
    for n in range(1000):
        page = store.query(LogQuery(cursor=cursor, **query))
        out.extend(page.entries)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor
        if after_page is not None:
            after_page(n)
    raise AssertionError("pagination never ended")


# -- append, dedup, positions -------------------------------------------------------------------


def test_append_returns_rows_inserted(store: LogStore) -> None:
    """append() returns how many records it inserted and they are all counted."""
    assert store.append([make(1), make(2), make(3)]) == 3
    assert store.count(LogQuery()) == 3


def test_append_skips_record_already_stored_by_stream_and_seq(store: LogStore) -> None:
    """Re-appending a (stream, seq) inserts nothing; the same seq in another stream is new."""
    store.append([make(1), make(2)])
    assert store.append([make(1), make(2, message="changed")]) == 0
    assert store.append([make(1, stream="s2")]) == 1
    assert store.count(LogQuery()) == 3
    assert "changed" not in {e["message"] for e in store.query(LogQuery()).entries}


def test_append_counts_only_new_rows_of_a_mixed_batch(store: LogStore) -> None:
    """A batch with old and new records returns the number of new ones only."""
    store.append([make(1), make(2)])
    assert store.append([make(2), make(3), make(3)]) == 1


def test_positions_are_saved_and_updated(store: LogStore) -> None:
    """append() saves positions (even without records) and later calls update them."""
    assert store.positions() == {}
    store.append([], {"a.jsonl": 10, "b.jsonl": 5})
    store.append([make(1)], {"a.jsonl": 20})
    assert store.positions() == {"a.jsonl": 20, "b.jsonl": 5}


def test_failed_append_saves_neither_records_nor_positions(store: LogStore) -> None:
    """A batch whose positions are invalid raises and leaves no record and no position."""
    with pytest.raises(ValueError, match="-1"):
        store.append([make(1), make(2)], {"good.jsonl": 5, "bad.jsonl": -1})
    assert store.count(LogQuery()) == 0
    assert store.positions() == {}


def test_records_and_positions_survive_reopening(store: LogStore) -> None:
    """A second store opened on the same URL sees the records and positions."""
    store.append([make(1)], {"a.jsonl": 7})
    other = open_store(store.url)
    try:
        assert other.count(LogQuery()) == 1
        assert other.positions() == {"a.jsonl": 7}
    finally:
        other.close()


def test_delete_streams_removes_only_their_records_and_positions(store: LogStore) -> None:
    """A reindex of one directory deletes its streams' records (search index and fields
    included) and segment positions; other streams, other keys and their records stay."""
    records = [
        make(n, stream=stream, message=f"{stream} word{n}", context={"owner": stream})
        for stream in ("h1-10-aa", "h1-11-bb", "h2-12-cc")
        for n in range(1, 7)
    ]
    positions = {
        "plexichat.h1-10-aa.000001!done": 900,
        "plexichat.h1-10-aa.000002": 40,
        "plexichat.h1-11-bb.000001": 70,
        "app.v2.h2-12-cc.000003!done": 5,  # a prefix with a dot
        "import-0123abcd": 3,  # not a segment key
    }
    store.append(records, positions)
    assert store.delete_streams(["h1-10-aa", "h2-12-cc", "absent"]) == 12
    assert store.delete_streams([]) == 0
    assert store.positions() == {"plexichat.h1-11-bb.000001": 70, "import-0123abcd": 3}
    assert {e["stream"] for e in walk(store, limit=5)} == {"h1-11-bb"}
    assert store.count(LogQuery(search="word3")) == 1
    assert store.count(LogQuery(where=(("context.owner", "h1-10-aa"),))) == 0
    assert store.count(LogQuery(where=(("context.owner", "h1-11-bb"),))) == 6
    assert store.append(records) == 12  # deleted records can be indexed again


def test_query_returns_original_records(store: LogStore) -> None:
    """Entries are the original records, every field included."""
    record = make(1, context={"user_id": "u1"}, metadata={"k": [1, 2]}, function="f", line=3)
    store.append([record])
    assert store.query(LogQuery()).entries == [record.record]


def test_appends_from_several_threads_lose_nothing(store: LogStore) -> None:
    """Threads appending to one shared store at once: every record is stored once."""

    def worker(stream: str) -> None:
        for start in range(0, 60, 10):
            store.append([make(i, stream=stream) for i in range(start, start + 10)])

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count(LogQuery()) == 240


# -- filters ------------------------------------------------------------------------------------


@pytest.fixture
def levels_store(store: LogStore) -> LogStore:
    """A store with one record of each level, seq 1..6."""
    names = ["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    store.append([make(i + 1, level=name) for i, name in enumerate(names)])
    return store


def test_min_level_keeps_records_at_or_above(levels_store: LogStore) -> None:
    """min_level=WARNING keeps WARNING, ERROR and CRITICAL."""
    assert seqs(levels_store, min_level="WARNING", order="asc") == [4, 5, 6]


def test_levels_keeps_only_those_levels(levels_store: LogStore) -> None:
    """levels=(debug, error) keeps exactly those two levels (names in any case)."""
    assert seqs(levels_store, levels=("debug", "ERROR"), order="asc") == [2, 5]


def test_categories_filter(store: LogStore) -> None:
    """categories keeps only records of those categories."""
    store.append([make(1, category="security"), make(2, category="api"), make(3)])
    assert seqs(store, categories=("security", "system"), order="asc") == [1, 3]


def test_loggers_exact_name(store: LogStore) -> None:
    """A logger name without a wildcard matches only that logger, not its children."""
    store.append([make(1, logger="app"), make(2, logger="app.db"), make(3, logger="other")])
    assert seqs(store, loggers=("app",)) == [1]


def test_loggers_prefix_matches_logger_and_children(store: LogStore) -> None:
    """A name ending in .* matches the logger and its children, and no other name."""
    names = ["app", "app.db", "app.db.pool", "appx", "app-x", "app/", "App.db", "other.app"]
    store.append([make(i, logger=name) for i, name in enumerate(names)])
    assert seqs(store, loggers=("app.*",), order="asc") == [0, 1, 2]


def test_modules_filter(store: LogStore) -> None:
    """modules keeps only records of those modules."""
    store.append([make(1, module="auth"), make(2, module="db")])
    assert seqs(store, modules=("db",)) == [2]


def test_time_range_is_inclusive(store: LogStore) -> None:
    """start and end keep records at or between them, both ends included."""
    store.append([make(i) for i in range(10)])
    assert seqs(store, start=iso(BASE_US + 3_000_000), end=iso(BASE_US + 5_000_000)) == [5, 4, 3]


def test_time_range_accepts_datetimes(store: LogStore) -> None:
    """start may be a timezone-aware datetime."""
    store.append([make(i) for i in range(5)])
    start = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
    assert seqs(store, start=start, order="asc") == [3, 4]


def test_event_types_and_min_severity(store: LogStore) -> None:
    """Security event type and minimum severity filter on the record's metadata."""
    store.append(
        [
            make(1, metadata={"event_type": "login_failed", "severity": "LOW"}),
            make(2, metadata={"event_type": "login_failed", "severity": "HIGH"}),
            make(3, metadata={"event_type": "xss", "severity": "CRITICAL"}),
            make(4),
        ]
    )
    assert seqs(store, event_types=("login_failed",), order="asc") == [1, 2]
    assert seqs(store, min_severity="high", order="asc") == [2, 3]


def test_exclude_security_leaves_out_security_and_audit_records(store: LogStore) -> None:
    """exclude_security drops security/audit categories and levels and any security event,
    in pages, counts and streams alike; the same predicate as is_sensitive in Python."""
    records = [
        make(1),
        make(2, category="security"),
        make(3, category="audit"),
        make(4, level="SECURITY"),
        make(5, level="AUDIT"),
        make(6, metadata={"event_type": "login_failed", "severity": "LOW"}),
        make(7, context={"event_type": "xss"}),
        make(8, category="api", level="ERROR"),
    ]
    store.append(records)
    assert seqs(store, exclude_security=True, order="asc") == [1, 8]
    assert store.count(LogQuery(exclude_security=True)) == 2
    streamed = [r.seq for r in store.iter_records(LogQuery(exclude_security=True, order="asc"))]
    assert streamed == [1, 8]
    assert [r.seq for r in records if not is_sensitive(r.record)] == [1, 8]
    assert len(seqs(store, order="asc")) == 8


def test_where_matches_context_string(store: LogStore) -> None:
    """where context.user_id=user123 keeps the records with that user id only."""
    store.append(
        [make(1, context={"user_id": "user123"}), make(2, context={"user_id": "u9"}), make(3)]
    )
    assert seqs(store, where=(("context.user_id", "user123"),)) == [1]


def test_where_compares_numbers_and_booleans_as_text(store: LogStore) -> None:
    """ "123" matches both 123 and "123"; "0.045" matches 0.045; "true" matches true."""
    store.append(
        [
            make(1, context={"user_id": 123}),
            make(2, context={"user_id": "123"}),
            make(3, context={"user_id": 1234}),
            make(4, performance_data={"response_time": 0.045}),
            make(5, metadata={"success": True}),
        ]
    )
    assert seqs(store, where=(("context.user_id", "123"),), order="asc") == [1, 2]
    assert seqs(store, where=(("performance_data.response_time", "0.045"),)) == [4]
    assert seqs(store, where=(("metadata.success", "true"),)) == [5]


def test_where_reaches_nested_and_dotted_keys(store: LogStore) -> None:
    """metadata.request.id finds a nested value and context.http.method a dotted key."""
    deep: dict[str, Any] = {"g": "deep"}
    for key in "fedcba":
        deep = {key: deep}
    store.append(
        [
            make(1, metadata={"request": {"id": "r1"}}),
            make(2, context={"http.method": "GET"}),
            make(3, metadata={"request": {"id": "r2"}}),
            make(4, metadata=deep),
        ]
    )
    assert seqs(store, where=(("metadata.request.id", "r1"),)) == [1]
    assert seqs(store, where=(("context.http.method", "GET"),)) == [2]
    assert seqs(store, where=(("metadata.a.b.c.d.e.f.g", "deep"),)) == [4]


def test_where_string_values_match_exactly(store: LogStore) -> None:
    """A string value matches the whole value, case included: not a word of it, not
    the same words elsewhere in the record."""
    store.append(
        [
            make(1, context={"ip": "192.168.1.100", "flag": "true"}),
            make(2, context={"ip": "192.168.1.1000"}),
            make(3, context={"user": "Alice Smith"}, metadata={"ip": "192.168.1.100"}),
            make(4, context={"user": "alice"}),
        ]
    )
    assert seqs(store, where=(("context.ip", "192.168.1.100"),)) == [1]
    assert seqs(store, where=(("context.flag", "true"),)) == [1]
    assert seqs(store, where=(("context.user", "Alice"),)) == []
    assert seqs(store, where=(("context.user", "alice"),)) == [4]


def test_where_combines_with_search(store: LogStore) -> None:
    """where and search together keep records satisfying both."""
    store.append(
        [
            make(1, message="login failed", context={"user_id": "u1"}),
            make(2, message="login ok", context={"user_id": "u1"}),
            make(3, message="login failed", context={"user_id": "u2"}),
        ]
    )
    assert seqs(store, where=(("context.user_id", "u1"),), search="failed") == [1]
    assert seqs(store, where=(("context.user_id", "u1"),), search="login NOT ok") == [1]


def test_where_on_missing_field_matches_nothing(store: LogStore) -> None:
    """A field no record has matches nothing (no error)."""
    store.append([make(1, context={"a": "x"})])
    assert seqs(store, where=(("context.b", "x"),)) == []


def test_where_values_are_not_sql(store: LogStore) -> None:
    """Quotes and SQL in a where value or field name are data, not syntax."""
    store.append([make(1, context={"user_id": "a'b"}), make(2)])
    assert seqs(store, where=(("context.user_id", "a'b"),)) == [1]
    assert seqs(store, where=(("context.x') OR 1=1 --", "y"),)) == []
    assert store.count(LogQuery()) == 2


def test_filters_combine_with_and(store: LogStore) -> None:
    """Several filters together keep only the records matching all of them."""
    store.append(
        [
            make(1, level="ERROR", category="database", message="database timeout"),
            make(2, level="INFO", category="database", message="database timeout"),
            make(3, level="ERROR", category="api", message="database timeout"),
            make(4, level="ERROR", category="database", message="all good"),
        ]
    )
    assert seqs(store, min_level="ERROR", categories=("database",), search="timeout") == [1]


# -- search -------------------------------------------------------------------------------------


@pytest.fixture
def text_store(store: LogStore) -> LogStore:
    """A store with a few messages to search."""
    messages = [
        "Database timeout after 30s",  # 1
        "database connection refused",  # 2
        "cache timeout",  # 3
        "Connection refused by peer",  # 4
        "refused connection to database",  # 5
        "debug: error details",  # 6
        "error in handler",  # 7
    ]
    store.append([make(i + 1, message=m) for i, m in enumerate(messages)])
    return store


def found(store: LogStore, search: str) -> list[int]:
    """The seqs a search finds, in insertion order."""
    return seqs(store, search=search, order="asc")


def test_search_word_is_case_insensitive(text_store: LogStore) -> None:
    """DATABASE finds Database and database."""
    assert found(text_store, "DATABASE") == [1, 2, 5]


def test_search_matches_whole_words_only(text_store: LogStore) -> None:
    """A word matches a token, not a part of one: "data" does not find "database"."""
    assert found(text_store, "data") == []


def test_search_and_and_adjacent_words(text_store: LogStore) -> None:
    """database AND timeout, and the same without AND, need both words."""
    assert found(text_store, "database AND timeout") == [1]
    assert found(text_store, "database timeout") == [1]


def test_search_or(text_store: LogStore) -> None:
    """cache OR peer needs either word."""
    assert found(text_store, "cache OR peer") == [3, 4]


def test_search_not_after_a_word(text_store: LogStore) -> None:
    """error NOT debug excludes the records with debug."""
    assert found(text_store, "error NOT debug") == [7]


def test_search_not_inside_or(text_store: LogStore) -> None:
    """timeout AND (cache OR NOT database) keeps the negation inside the OR."""
    assert found(text_store, "timeout AND (cache OR NOT database)") == [3]


def test_search_several_nots(text_store: LogStore) -> None:
    """refused NOT peer NOT database keeps records with neither."""
    text_store.append([make(8, message="refused quietly")])
    assert found(text_store, "refused NOT peer NOT database") == [8]


def test_search_phrase_needs_words_in_order(text_store: LogStore) -> None:
    """A phrase matches the words adjacent and in that order only."""
    assert found(text_store, '"connection refused"') == [2, 4]


def test_search_parentheses_group(text_store: LogStore) -> None:
    """(cache OR database) AND timeout differs from cache OR database AND timeout."""
    assert found(text_store, "(cache OR database) AND timeout") == [1, 3]
    assert found(text_store, "cache OR (database AND refused)") == [2, 3, 5]


def test_search_looks_in_logger_and_context_values(store: LogStore) -> None:
    """Words of the logger name and of context/metadata values are searchable."""
    store.append(
        [
            make(1, logger="app.payments"),
            make(2, context={"user_id": "alice", "n": 42}),
            make(3, metadata={"tags": ["blue", {"deep": "green"}]}),
            make(4),
        ]
    )
    assert found(store, "payments") == [1]
    assert found(store, "alice") == [2]
    assert found(store, "42") == [2]
    assert found(store, "green") == [3]


def test_search_of_only_punctuation_is_a_syntax_error(store: LogStore) -> None:
    """A search without a letter or digit cannot match words: QuerySyntaxError."""
    store.append([make(1, message="* -- *")])
    with pytest.raises(QuerySyntaxError, match="no words"):
        store.query(LogQuery(search="* --"))


HOSTILE = [
    '"',
    '" OR 1=1 --',
    "'; DROP TABLE records; --",
    "x'); DELETE FROM records; --",
    "NEAR(a b)",
    "a NEAR b",
    "NEAR/2 x",
    "data*",
    "*",
    "^start",
    "message:secret",
    "{message logger}: x",
    "-x +y",
    "a:b:c",
    "x AND",
    "OR y",
    "((",
    "))",
    "a\x00b",
    "\x00",
    "\ud800",
    "%_\\",
    "1=1",
    "records_fts MATCH x",
    'say \\"hi\\"',
    "rank:x",
    "🔥",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_search_is_literal_or_a_syntax_error(store: LogStore, text: str) -> None:
    """A hostile search finds its own text literally or raises QuerySyntaxError, and the
    store survives it."""
    storable = text.encode(errors="replace").decode()
    store.append([make(1, message=storable), make(2, message="unrelated words only")])
    try:
        query = LogQuery(search=text)
        result = [e["seq"] for e in store.query(query).entries]
        count = store.count(query)
    except QuerySyntaxError:
        pass
    else:
        assert result == [1]
        assert count == 1
    assert store.count(LogQuery()) == 2
    assert found(store, "unrelated") == [2]


# -- pagination ---------------------------------------------------------------------------------


@pytest.fixture
def many(store: LogStore) -> LogStore:
    """250 records, three per second (so times tie), seq 0..249."""
    store.append([make(i, second=i // 3) for i in range(250)])
    return store


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_pages_give_every_record_once_in_order(many: LogStore, order: str) -> None:
    """Pages of 100 over 250 records: each record exactly once, ordered, three pages."""
    pages: list[int] = []
    entries = walk(many, after_page=pages.append, limit=100, order=order)
    got = [e["seq"] for e in entries]
    assert len(pages) == 2
    assert got == (list(range(250)) if order == "asc" else list(range(249, -1, -1)))


def test_last_page_has_no_cursor_even_when_full(store: LogStore) -> None:
    """200 records in pages of 100: the second page is the last (no empty third page)."""
    store.append([make(i) for i in range(200)])
    first = store.query(LogQuery(limit=100))
    assert first.next_cursor is not None
    second = store.query(LogQuery(limit=100, cursor=first.next_cursor))
    assert len(second.entries) == 100
    assert second.next_cursor is None


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_pages_stable_under_concurrent_inserts(many: LogStore, order: str) -> None:
    """Records inserted between pages (older, newer, same time) never duplicate or skip
    a record that was already stored."""
    extra = iter(range(1000, 2000))

    def insert(page: int) -> None:
        many.append(
            [
                make(next(extra), stream="new", second=s)
                for s in (-5, 0, 40, 41.5, 83, 200, 84)  # around the page boundaries too
            ]
        )

    entries = walk(many, after_page=insert, limit=100, order=order)
    keys = [(e["stream"], e["seq"]) for e in entries]
    assert len(keys) == len(set(keys))
    assert sorted(s for st_, s in keys if st_ == "s1") == list(range(250))


def test_filtered_pages(many: LogStore) -> None:
    """Pagination with a filter returns every match once."""
    entries = walk(many, limit=7, start=iso(BASE_US + 10_000_000), end=iso(BASE_US + 20_000_000))
    assert [e["seq"] for e in entries] == list(range(62, 29, -1))


@pytest.mark.parametrize(
    "cursor", ["garbage", "", "eyJhIjoxfQ", "W1swLDAsImRlc2MiXQ", "a" * 500, "\ud800"]
)
def test_bad_cursor_is_a_syntax_error(store: LogStore, cursor: str) -> None:
    """A cursor not made by the store raises QuerySyntaxError."""
    with pytest.raises(QuerySyntaxError, match="cursor"):
        store.query(LogQuery(cursor=cursor))


def test_cursor_of_the_other_order_is_a_syntax_error(many: LogStore) -> None:
    """A desc cursor used with order=asc raises QuerySyntaxError."""
    cursor = many.query(LogQuery(limit=10)).next_cursor
    with pytest.raises(QuerySyntaxError, match="cursor"):
        many.query(LogQuery(limit=10, cursor=cursor, order="asc"))


# -- iter_records, count, stats, clear ------------------------------------------------------------


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_iter_records_streams_every_match_in_order(
    many: LogStore, order: Literal["desc", "asc"]
) -> None:
    """iter_records yields every match (limit ignored) in the query's order."""
    got = [r.seq for r in many.iter_records(LogQuery(limit=10, order=order))]
    assert got == (list(range(250)) if order == "asc" else list(range(249, -1, -1)))


def test_iter_records_yields_stored_records(store: LogStore) -> None:
    """The streamed records carry the indexed columns and the original line."""
    record = make(1, level="ERROR", metadata={"event_type": "xss", "severity": "HIGH"})
    store.append([record])
    (got,) = store.iter_records(LogQuery())
    assert got == record


def test_iter_records_applies_filters_and_cursor(many: LogStore) -> None:
    """iter_records filters like query() and starts after a given cursor."""
    page = many.query(LogQuery(limit=5, order="asc", end=iso(BASE_US + 9_000_000)))
    query = LogQuery(order="asc", end=iso(BASE_US + 9_000_000), cursor=page.next_cursor)
    assert [r.seq for r in many.iter_records(query)] == list(range(5, 30))


def test_count_ignores_limit_and_cursor(many: LogStore) -> None:
    """count() is the number of matches, whatever the page size and cursor."""
    cursor = many.query(LogQuery(limit=10)).next_cursor
    assert many.count(LogQuery(limit=10, cursor=cursor)) == 250
    assert many.count(LogQuery(end=iso(BASE_US + 9_000_000))) == 30


def test_stats_counts_and_range(store: LogStore) -> None:
    """stats() counts per level, category and logger and gives the time range."""
    store.append(
        [
            make(1, level="ERROR", category="api", logger="a"),
            make(2, level="ERROR", category="db", logger="b"),
            make(5, level="INFO", category="db", logger="b"),
        ]
    )
    stats = store.stats()
    assert set(stats) >= {
        "records",
        "levels",
        "categories",
        "loggers",
        "first",
        "last",
        "storage_bytes",
    }
    assert stats["records"] == 3
    assert stats["levels"] == {"ERROR": 2, "INFO": 1}
    assert stats["categories"] == {"api": 1, "db": 2}
    assert list(stats["loggers"].items()) == [("b", 2), ("a", 1)]
    assert to_micros(stats["first"]) == BASE_US + 1_000_000
    assert to_micros(stats["last"]) == BASE_US + 5_000_000
    assert stats["storage_bytes"] > 0


def test_stats_keeps_the_20_busiest_loggers(store: LogStore) -> None:
    """stats()["loggers"] holds the 20 loggers with the most records."""
    store.append([make(i, logger=f"l{i % 25:02d}", second=i) for i in range(25 + 20)])
    loggers = store.stats()["loggers"]
    assert len(loggers) == 20
    assert set(loggers) == {f"l{n:02d}" for n in range(20)}


def test_stats_of_empty_store(store: LogStore) -> None:
    """An empty store has no records and no time range."""
    stats = store.stats()
    assert (stats["records"], stats["first"], stats["last"]) == (0, None, None)
    assert stats["levels"] == {}


def test_clear_removes_records_index_and_positions(store: LogStore) -> None:
    """After clear() nothing is found, and the same records can be stored again."""
    store.append([make(1, message="needle")], {"a.jsonl": 3})
    store.clear()
    assert store.count(LogQuery()) == 0
    assert store.positions() == {}
    assert found(store, "needle") == []
    assert store.append([make(1, message="needle")]) == 1
    assert found(store, "needle") == [1]


# -- property: the store filters like plain Python ---------------------------------------------

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]
LOGGERS = ["app", "app.db", "app.db.pool", "appx", "other"]
WORDS = ["alpha", "beta", "gamma"]
USERS = ["u1", "u2", 7]

record_specs = st.lists(
    st.tuples(
        st.sampled_from(LEVELS),
        st.sampled_from(["auth", "db"]),
        st.sampled_from(LOGGERS),
        st.integers(0, 20),
        st.lists(st.sampled_from(WORDS), max_size=3),
        st.sampled_from([None, *USERS]),
    ),
    max_size=25,
)
filter_specs = st.fixed_dictionaries(
    {},
    optional={
        "min_level": st.sampled_from(LEVELS),
        "levels": st.lists(st.sampled_from(LEVELS), min_size=1, max_size=2).map(tuple),
        "categories": st.sampled_from([("auth",), ("db",)]),
        "loggers": st.lists(
            st.sampled_from([*LOGGERS, "app.*", "app.db.*"]), min_size=1, max_size=2
        ).map(tuple),
        "start": st.integers(0, 20),
        "end": st.integers(0, 20),
        "where": st.sampled_from(["u1", "u2", "7"]),
        "search": st.sampled_from(
            ["alpha", "alpha beta", "alpha OR gamma", "beta NOT gamma", '"alpha beta"', "u1"]
        ),
        "order": st.sampled_from(["asc", "desc"]),
    },
)


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _has(fields: list[list[str]], phrase: str) -> bool:
    want = _tokens(phrase)
    return any(field[i : i + len(want)] == want for field in fields for i in range(len(field)))


def _matches(search: str, fields: list[list[str]]) -> bool:
    """The reference semantics of the small searches the property test uses."""
    if " OR " in search:
        return any(_matches(part, fields) for part in search.split(" OR "))
    if " NOT " in search:
        pos, neg = search.split(" NOT ")
        return _matches(pos, fields) and not _matches(neg, fields)
    if search.startswith('"'):
        return _has(fields, search.strip('"'))
    return all(_has(fields, word) for word in search.split())


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(specs=record_specs, filters=filter_specs)
def test_query_equals_python_filter(
    store: LogStore, specs: list[tuple[Any, ...]], filters: dict[str, Any]
) -> None:
    """For random records and filters, paged query results equal a plain-Python filter."""
    store.clear()
    records = []
    for seq, (level, category, logger, second, words, user) in enumerate(specs):
        context: dict[str, Any] = {} if user is None else {"context": {"user_id": user}}
        records.append(
            make(
                seq,
                level=level,
                category=category,
                logger=logger,
                second=second,
                message=" ".join(words) or "-",
                **context,
            )
        )
    store.append(records)

    query: dict[str, Any] = dict(filters)
    if "start" in query and "end" in query and query["start"] > query["end"]:
        query["start"], query["end"] = query["end"], query["start"]
    for key in ("start", "end"):
        if key in query:
            query[key] = iso(BASE_US + query[key] * 1_000_000)
    if "where" in query:
        query["where"] = (("context.user_id", query["where"]),)

    def keep(spec: tuple[Any, ...]) -> bool:
        level, category, logger, second, words, user = spec
        if "min_level" in filters and LEVELS.index(level) < LEVELS.index(filters["min_level"]):
            return False
        if "levels" in filters and level not in filters["levels"]:
            return False
        if "categories" in filters and category not in filters["categories"]:
            return False
        if "loggers" in filters and not any(
            logger == name
            or (name.endswith(".*") and (logger == name[:-2] or logger.startswith(name[:-1])))
            for name in filters["loggers"]
        ):
            return False
        t = second * 1_000_000 + BASE_US
        if "start" in query and t < to_micros(query["start"]):
            return False
        if "end" in query and t > to_micros(query["end"]):
            return False
        if "where" in filters and str(user) != filters["where"]:
            return False
        if "search" in filters:
            fields = [_tokens(" ".join(words)), _tokens(logger)] + (
                [_tokens(str(user))] if user is not None else []
            )
            if not _matches(filters["search"], fields):
                return False
        return True

    expected = [seq for seq, spec in enumerate(specs) if keep(spec)]
    expected.sort(key=lambda s: (specs[s][3], s), reverse=query.get("order", "desc") == "desc")
    got = [e["seq"] for e in walk(store, limit=4, **query)]
    assert got == expected
    assert store.count(LogQuery(**query)) == len(expected)
