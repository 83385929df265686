"""The PostgreSQL store's field index (``plexichat_fields``): a ``where`` filter walked
through it returns exactly what reading every row returns, for hostile and edge inputs; a
version-1 store is upgraded on open; retention drops the index's partitions too, and a
record deleted row by row takes its index rows with it.

Needs ``PLEXICHAT_TEST_POSTGRES_URL`` (skipped without it, failed in CI), like
``test_postgres_specific``; each test works in a schema of its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import orjson
import pytest

from plexichat.core.logging.store import _postgres_query
from plexichat.core.logging.store._postgres_rows import field_hashes, scalar_text, stored_hashes
from plexichat.core.logging.store.base import LogQuery, StoredRecord, record_from_line
from plexichat.core.logging.store.postgres import SCHEMA_VERSION, PostgresStore
from plexichat.core.logging.store.retention import RetentionRules
from tests.pg import partitions, sql

FIELD_VALUES: list[dict[str, Any]] = [
    {"context": {"user_id": "u7", "n": 123, "f": 0.045}},
    {"context": {"user_id": "123", "n": "123", "f": "0.045"}},
    {"context": {"user_id": 123, "n": 123.0, "f": 45e-3, "big": 1e16}},
    {"context": {"user_id": "u7", "flag": True, "none": None, "neg": -0.0}},
    {"context": {"flag": "true", "none": "null", "neg": "0.0", "big": "10000000000000000"}},
    {"context": {"a.b": "x", "a": {"b": "x"}}},  # both spellings of context.a.b, one record
    {"context": {"a": {"b.c": "y"}, "a.b": {"c": "z"}}},
    {"context": {"it's": "o'k", 'q"uote': 'v"al', "x') OR 1=1 --": "y"}},
    {"context": {"": "empty key", "e": ""}},
    {"context": {"list": [1, 2], "obj": {"k": 1}, "0": "zero", "items": ["first"]}},
    {"context": {"café": "naïve ✓", "emoji": "😀"}},
    {"context": {"nul\u0000key": "nul\u0000value"}},
    {"metadata": {"request": {"id": "r1"}, "deep": {"a": {"b": {"c": "d"}}}}},
    {"performance_data": {"response_time": 0.045, "duration_ms": 12}},
    {"context": {"user_id": "U7"}, "metadata": {"user_id": "u7"}},
    {"message": "no fields at all"},
]
WHERE_PAIRS = [
    ("context.user_id", "u7"),
    ("context.user_id", "123"),
    ("context.n", "123"),
    ("context.n", "123.0"),
    ("context.f", "0.045"),
    ("context.big", "10000000000000000"),
    ("context.flag", "true"),
    ("context.none", "null"),
    ("context.neg", "0.0"),
    ("context.a.b", "x"),
    ("context.a.b.c", "y"),
    ("context.a.b.c", "z"),
    ("context.it's", "o'k"),
    ('context.q"uote', 'v"al'),
    ("context.x') OR 1=1 --", "y"),
    ("context.e", ""),
    ("context.list", "[1, 2]"),
    ("context.obj", '{"k": 1}'),
    ("context.list.0", "1"),
    ("context.items.0", "first"),
    ("context.items.-1", "first"),
    ("context.0", "zero"),
    ("context.café", "naïve ✓"),
    ("context.emoji", "😀"),
    ("context.nulkey", "nulvalue"),
    ("context.nul\u0000key", "nul\u0000value"),
    ("metadata.request.id", "r1"),
    ("metadata.deep.a.b.c", "d"),
    ("performance_data.response_time", "0.045"),
    ("performance_data.duration_ms", "12"),
    ("metadata.user_id", "u7"),
]


def _records(copies: int = 3) -> list[StoredRecord]:
    out = []
    for i in range(copies * len(FIELD_VALUES)):
        event = {
            "timestamp": f"2024-0{1 + i % 3}-1{i % 10}T00:00:{i % 60:02d}.000000Z",
            "level": ("INFO", "ERROR")[i % 2],
            "category": "system",
            "logger": "app",
            "message": f"message {i}",
            "module": "m",
            **FIELD_VALUES[i % len(FIELD_VALUES)],
        }
        line = orjson.dumps({**event, "stream": "s", "seq": i + 1})
        record = record_from_line(line, stream="s", seq=i + 1)
        assert record is not None
        out.append(record)
    return out


def _every_page(store: PostgresStore, query: LogQuery) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    cursor = None
    while True:
        page = store.query(replace(query, cursor=cursor))
        out += [(r["stream"], r["seq"]) for r in page.entries]
        if (cursor := page.next_cursor) is None:
            return out


def _answers(store: PostgresStore, query: LogQuery) -> tuple[Any, ...]:
    page = store.query(query)
    raw = store.query_raw(query)
    records = [(r.stream, r.seq) for r in store.iter_records(query)]
    entries = [(r["stream"], r["seq"]) for r in page.entries]
    count = store.count(query)
    return entries, page.next_cursor, raw.lines, records, count, _every_page(store, query)


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_walk_returns_what_reading_every_row_returns(
    fresh_store: PostgresStore, monkeypatch: pytest.MonkeyPatch, order: Literal["desc", "asc"]
) -> None:
    """Every where pair, alone and with a level, a time range and a search, paged 2 at a
    time: the same records, pages, cursors, lines and counts with and without the index."""
    fresh_store.append(_records())
    queries = []
    for key, value in WHERE_PAIRS:
        where = ((key, value),)
        queries += [
            LogQuery(where=where, limit=2, order=order),
            LogQuery(where=where, limit=100, min_level="ERROR", order=order),
            LogQuery(
                where=where, limit=3, start="2024-02-01T00:00:00Z", end="2024-02-28", order=order
            ),
            LogQuery(where=(*where, ("context.user_id", "u7")), limit=2, order=order),
            LogQuery(where=(("context.n", "123"), *where), limit=2, search="message", order=order),
        ]
    walked = [_answers(fresh_store, q) for q in queries]
    monkeypatch.setattr(_postgres_query, "_field_pair", lambda key, value: None)
    read = [_answers(fresh_store, q) for q in queries]
    assert walked == read
    found = {pair: w[4] for pair, w in zip(WHERE_PAIRS, walked[::5], strict=True)}
    assert found[("context.user_id", "u7")] == 6  # sanity: the corpus has matches
    assert found[("context.n", "123")] == 6  # 123 and "123", not 123.0
    assert found[("context.a.b", "x")] == 3  # one record with both spellings: once
    assert found[("context.items.0", "first")] == 3


def test_walk_is_the_plan_of_a_field_filter(fresh_store: PostgresStore, fresh_url: str) -> None:
    """The newest page of a where filter reads the field index (no scan of the records)."""
    fresh_store.append(_records())
    where, params = _postgres_query.filters(LogQuery(where=(("context.user_id", "u7"),)), page=True)
    plan = sql(fresh_url, f"EXPLAIN SELECT id FROM {where} LIMIT 101", *params)
    assert "plexichat_fields" in " ".join(str(row[0]) for row in plan)
    where, _ = _postgres_query.filters(LogQuery(where=(("context.list.0", "1"),)), page=True)
    assert "plexichat_fields" not in where  # an array step: the rows are read


@pytest.mark.parametrize(
    "value",
    [0.045, 1e16, 1.5e-7, -0.0, 0.1, 1e300, -2.5e-300, 123.0, 1e22, 5e-324, 123,
     -5, 2**63 - 1, -(2**63), 2**64 - 1, True, False, None, "s", "", "123", "✓"],
)  # fmt: skip
def test_scalar_text_is_what_postgres_prints(fresh_url: str, value: Any) -> None:
    """A leaf's text in Python is ``(fields #> path)::text`` (or ``#>>`` for a string)."""
    blob = orjson.dumps({"v": value}).decode()
    want = sql(
        fresh_url,
        "SELECT CASE jsonb_typeof(j -> 'v') WHEN 'string' THEN j ->> 'v' "
        "ELSE (j -> 'v')::text END FROM (SELECT %s::jsonb AS j) t",
        blob,
    )[0][0]
    assert scalar_text(value) == want


def test_field_hashes_skip_arrays_and_objects_and_dedup() -> None:
    """Leaves under arrays and objects' own texts are not hashed; a path spelled twice once."""
    hashes = field_hashes({"context": {"a.b": "x", "a": {"b": "x"}, "l": [1], "o": {}}})
    assert hashes == [_postgres_query.field_hash("context.a.b", "x")]


def test_duplicates_in_a_batch_index_the_stored_record_once(
    fresh_store: PostgresStore, fresh_url: str
) -> None:
    """A batch with a record twice (same stream, seq, ts): one record, its fields once, and
    appending it again adds nothing."""
    record = _records(1)[0]
    assert fresh_store.append([record, record]) == 1
    assert fresh_store.append([record]) == 0
    assert sql(fresh_url, "SELECT count(*) FROM plexichat_fields") == [(3,)]
    assert fresh_store.count(LogQuery(where=(("context.user_id", "u7"),))) == 1
    assert len(fresh_store.query(LogQuery(where=(("context.user_id", "u7"),))).entries) == 1


def test_a_version_1_store_is_upgraded_on_open(fresh_url: str) -> None:
    """A store of schema version 1 (no field index) opens as version 2 with every stored
    record's fields indexed: the filters answer as before."""
    with PostgresStore(fresh_url) as store:
        store.append(_records())
        want = [store.count(LogQuery(where=(pair,))) for pair in WHERE_PAIRS]
    sql(fresh_url, "DROP TABLE plexichat_fields")
    sql(fresh_url, "UPDATE plexichat_schema_version SET version = 1")
    with PostgresStore(fresh_url) as store:
        assert sql(fresh_url, "SELECT version FROM plexichat_schema_version") == [(SCHEMA_VERSION,)]
        assert [store.count(LogQuery(where=(pair,))) for pair in WHERE_PAIRS] == want
        kinds = sql(
            fresh_url,
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'plexichat_fields'::regclass ORDER BY 1",
        )
        assert [name.replace("fields", "records") for (name,) in kinds] == partitions(fresh_url)


def test_retention_drops_the_field_partitions_too(
    fresh_store: PostgresStore, fresh_url: str
) -> None:
    """Dropping the months before March drops their field partitions; the rest stay."""
    fresh_store.append(_records())
    assert fresh_store.drop_partitions_before(1_709_251_200_000_000) == 2  # 2024-03-01
    names = sql(
        fresh_url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'plexichat_fields'::regclass ORDER BY 1",
    )
    assert [n for (n,) in names if "2024" in n] == ["plexichat_fields_p202403"]
    assert fresh_store.count(LogQuery(where=(("context.user_id", "u7"),))) == 2
    fresh_store.clear()
    assert sql(fresh_url, "SELECT count(*) FROM plexichat_fields") == [(0,)]


ORPHANS = """SELECT count(*) FROM plexichat_fields f
    WHERE NOT EXISTS (SELECT 1 FROM plexichat_records r WHERE r.ts = f.ts AND r.id = f.id)"""


@pytest.mark.parametrize(
    "rules",
    [
        RetentionRules.from_mapping({"ERROR": "1 day"}),  # kept forever otherwise: no drop
        RetentionRules.from_mapping({}, max_total_bytes="1 KB"),  # the oldest go first
    ],
    ids=["level rule", "size limit"],
)
def test_row_retention_deletes_the_field_rows_too(
    fresh_store: PostgresStore, fresh_url: str, rules: RetentionRules
) -> None:
    """Records deleted row by row (inside a month that stays) take their field rows with
    them, in the same transaction: none is left behind, the survivors keep theirs, and the
    filters answer as reading every row does."""
    fresh_store.append(_records())
    before = sql(fresh_url, "SELECT count(*) FROM plexichat_fields")[0][0]
    deleted = sum(fresh_store.apply_retention(rules).values())
    assert 0 < deleted < len(_records())
    assert sql(fresh_url, ORPHANS) == [(0,)]
    kept = sql(fresh_url, "SELECT count(*) FROM plexichat_fields")[0][0]
    assert 0 < kept < before
    rows = sql(fresh_url, "SELECT ts, id, fields FROM plexichat_records")
    assert kept == sum(len(stored_hashes(fields)) for _, _, fields in rows)
    walked = [fresh_store.count(LogQuery(where=(pair,))) for pair in WHERE_PAIRS]
    assert walked == [
        sum(1 for _ in fresh_store.iter_records(LogQuery(where=(pair,)))) for pair in WHERE_PAIRS
    ]


def test_row_retention_leaves_no_field_rows_in_the_default_partition(
    fresh_store: PostgresStore, fresh_url: str
) -> None:
    """Records of the default partition (before 2000) deleted row by row lose their field
    rows as well."""
    old = [replace(r, ts=r.ts - 30 * 365 * 86_400_000_000) for r in _records(1)]
    fresh_store.append(old)
    assert sql(fresh_url, "SELECT count(*) FROM plexichat_fields_default")[0][0] > 0
    fresh_store.apply_retention(RetentionRules.from_mapping({"INFO": "1 day", "ERROR": "1 day"}))
    assert sql(fresh_url, "SELECT count(*) FROM plexichat_records") == [(0,)]
    assert sql(fresh_url, "SELECT count(*) FROM plexichat_fields") == [(0,)]


def test_walks_are_planned_once_and_other_pages_for_their_values(
    fresh_store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page walked through the field index runs on a generic plan (prepared after a few
    runs, JIT off), giving what a plan for its values gives; the same connection then plans
    a search page for its values again."""
    fresh_store.append(_records())
    walk = LogQuery(where=(("context.user_id", "u7"),), limit=2)
    searched = LogQuery(where=(("context.user_id", "u7"),), search="message", limit=2)
    assert _postgres_query.generic_plan(walk, _postgres_query.filters(walk, page=True)[0])
    assert not _postgres_query.generic_plan(
        searched, _postgres_query.filters(searched, page=True)[0]
    )
    walked = [_answers(fresh_store, walk) for _ in range(8)]  # prepared from the sixth run
    with fresh_store._connection(generic_plans=True) as conn:
        assert conn.execute("SELECT current_setting('plan_cache_mode')").fetchone() == (
            "force_generic_plan",
        )
        assert conn.execute("SELECT current_setting('jit')").fetchone() == ("off",)
    with fresh_store._connection() as conn:
        assert conn.execute("SELECT current_setting('plan_cache_mode')").fetchone() == (
            "force_custom_plan",
        )
    with_search = _answers(fresh_store, searched)
    monkeypatch.setattr(_postgres_query, "_field_pair", lambda key, value: None)
    assert walked == [_answers(fresh_store, walk)] * 8
    assert with_search == _answers(fresh_store, searched)
