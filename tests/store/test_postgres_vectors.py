"""The PostgreSQL store's writes: tsvectors made in Python are the server's own, batches go
in by COPY and fall back to the staged insert when records are stored already.

Needs ``PLEXICHAT_TEST_POSTGRES_URL`` (skipped without it, failed in CI), like
``test_postgres_specific``; each test works in a schema of its own.
"""

from __future__ import annotations

import random
import string
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging.store._postgres_rows import (
    VECTOR_CHARS,
    VECTOR_WORDS,
    fields_of,
    search_text,
    search_vector,
    stage_row,
)
from plexichat.core.logging.store.base import (
    LogQuery,
    StoredRecord,
    record_from_event,
    record_from_line,
)
from plexichat.core.logging.store.postgres import PostgresStore
from tests.pg import duplicates, own_schema, sql

SERVER = "SELECT tsvectorsend(ts_delete(to_tsvector('simple', s), 's.s')) FROM unnest(%s::text[])"
SERVER += " WITH ORDINALITY AS t(s, n) ORDER BY n"
STORED = """SELECT r.stream, r.seq, tsvectorsend(r.tsv) = tsvectorsend(ts_delete(
    to_tsvector('simple', s.search), 's.s')) FROM plexichat_records r
    JOIN unnest(%s::text[], %s::bigint[], %s::text[]) AS s(stream, seq, search)
    USING (stream, seq)"""
ORPHANS = """SELECT count(*) FROM plexichat_fields f
    WHERE NOT EXISTS (SELECT 1 FROM plexichat_records r WHERE r.ts = f.ts AND r.id = f.id)"""


@pytest.fixture(scope="module")
def select_url(server: str) -> Iterator[str]:
    """A URL on a schema of this module's own (for plain SELECTs)."""
    with own_schema(server) as url:
        yield url


@pytest.fixture
def pg(fresh_store: PostgresStore, fresh_url: str) -> tuple[PostgresStore, str]:
    """A store on an empty schema of this test's own, and that schema's URL."""
    return fresh_store, fresh_url


def server_vectors(url: str, searches: list[str]) -> list[bytes]:
    """What the server makes of search texts (binary tsvectors)."""
    return [bytes(row[0]) for row in sql(url, SERVER, searches)]


WORDS = st.one_of(
    st.text(alphabet="0123456789eE", min_size=1, max_size=8),  # 1e5, 12E3x, e9, ...
    st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=14),
    st.text(alphabet="0123456789abcdef", min_size=12, max_size=12),  # request ids
    st.sampled_from(["s.s", "db", "10", "a", "api", "1e5x", "8e61beab", "0e0", "E5"]),
)


SEPARATORS = st.sampled_from([" ", "  ", "-", ".", "_", "/", ": ", "\t", "=", "'"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    """ASCII text: words of letters and digits between punctuation."""
    words = draw(st.lists(WORDS, max_size=30))
    return "".join(word + draw(SEPARATORS) for word in words)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(texts(), texts(), texts()), min_size=1, max_size=25))
def test_python_vectors_are_the_servers(select_url: str, parts: list[tuple[str, str, str]]) -> None:
    """For ASCII texts (words of letters and digits, punctuation, repeats, numbers in
    scientific notation running on into letters) in the message, the logger and the
    values, the binary tsvector made in Python is byte for byte the server's."""
    mine = [search_vector(*three) for three in parts]
    assert all(vector is not None for vector in mine)
    assert mine == server_vectors(select_url, [search_text(*three) for three in parts])


def test_vectors_of_generated_records_are_the_servers(select_url: str) -> None:
    """Search texts as the store makes them from varied records (punctuation, hex ids,
    numbers, repeated words, empty parts): Python's vector, when it makes one, is the
    server's; it makes one for every ASCII record of ordinary length."""
    rng = random.Random(7)
    pieces = ["database", "db-1", "1e5x", "req_8e61beab700f", "10.0.0.10", "GET /a/b 200", "ms",
              "", "user-123", "x" * 40, "2E3", "café", "naïve", "日本", "a_b", "s.s"]  # fmt: skip
    searches: list[str] = []
    made: list[bytes | None] = []
    for n in range(400):
        words = [rng.choice(pieces) for _ in range(rng.randrange(12))]
        event: dict[str, Any] = {
            "timestamp": "2024-01-01T00:00:00Z",
            "message": " ".join(words[:5]),
            "logger": rng.choice(["app", "plexichat.db.pool", "", "a.b-c"]),
            "context": {f"k{i}": word for i, word in enumerate(words[5:])},
            "metadata": {"n": n, "f": 0.5, "t": True, "deep": {"x": rng.choice(pieces)}},
        }
        record = record_from_line(orjson.dumps(event), stream="s", seq=n)
        assert record is not None
        searches.append(_search(record))
        made.append(stage_row(record)[13])
    expected = server_vectors(select_url, searches)
    assert [m for m, e in zip(made, expected, strict=True) if m is not None and m != e] == []
    assert all(m is not None for m, text in zip(made, searches, strict=True) if text.isascii())


@pytest.mark.parametrize(
    "text",
    [
        "日本語 テキスト",  # a script of the server's locale
        "a " * (VECTOR_WORDS + 1),  # positions past 255 for one word
        "x" * (VECTOR_CHARS + 1),  # words the server would drop
        "\u33d2" * 1000,  # 'log' once folded: grows past a word's 2 KB
    ],
    ids=["other script", "many words", "long", "folds longer"],
)
def test_the_server_makes_the_rest(text: str) -> None:
    """Text the parser may read otherwise is left to the server (None)."""
    assert search_vector(text, "app", "") is None
    assert search_vector("m", "app", text) is None


def staging(store: PostgresStore) -> bool:
    """Whether the store's next batch takes the staged insert (the last COPY met stored
    records)."""
    return store._stage_next


def _search(rec: StoredRecord) -> str:
    """The search text a record is indexed by."""
    return search_text(rec.message, rec.logger, fields_of(rec.parsed())[1])


def _record(seq: int, message: str, stream: str = "s1", **extra: Any) -> StoredRecord:
    event: dict[str, Any] = {"timestamp": "2024-03-01T00:00:00Z", "level": "INFO"}
    event.update(
        logger="app", message=message, stream=stream, seq=seq, context={"user_id": f"u{seq % 3}"}
    )
    record = record_from_line(orjson.dumps({**event, **extra}), stream=stream, seq=seq)
    assert record is not None
    return record


def _stored_vectors_match(url: str, records: list[StoredRecord]) -> bool:
    searches = [_search(rec) for rec in records]
    rows = sql(url, STORED, [r.stream for r in records], [r.seq for r in records], searches)
    return len(rows) == len(records) and all(same for _, _, same in rows)


def test_stored_vectors_are_the_servers_whoever_made_them(pg: tuple[PostgresStore, str]) -> None:
    """A batch mixing records whose vector Python makes and records whose vector the server
    makes (other scripts, long text): every stored tsvector is what the server makes of
    the record's search text, and each record's field rows point at it."""
    store, url = pg
    records = [
        _record(n, message)
        for n, message in enumerate(
            ["plain words", "naïve café déjà", "1e5x go", "日本語 テキスト", "y " * 300, "ok"] * 5
        )
    ]
    assert store.append(records) == len(records)
    assert _stored_vectors_match(url, records)
    assert sql(url, ORPHANS) == [(0,)]
    assert sql(url, "SELECT count(*) FROM plexichat_fields") == [(len(records),)]
    assert store.count(LogQuery(search="cafe")) == 5  # accents folded, as before
    assert store.count(LogQuery(search='"1e5x go"')) == 5
    assert store.count(LogQuery(where=(("context.user_id", "u1"),))) == 10
    ids = [row_id for row_id, _ in store.tail(0, 100)]
    assert len(set(ids)) == len(records)


def test_a_batch_meeting_stored_records_takes_the_staged_way(pg: tuple[PostgresStore, str]) -> None:
    """A batch overlapping stored records inserts only the new ones (counted), with their
    field rows, and leaves no trace of the failed COPY; once a batch inserts every row, the
    next one is COPied again."""
    store, url = pg
    first = [_record(n, f"first {n}") for n in range(10)]
    assert store.append(first) == 10
    assert not staging(store)
    overlap = [_record(n, f"first {n}") for n in range(5, 15)] + [_record(3, "again")]
    assert store.append(overlap, {"seg": 1}) == 5
    assert staging(store)  # the COPY met stored records
    assert store.positions() == {"seg": 1}
    assert store.count(LogQuery()) == 15
    assert duplicates(url) == []
    assert sql(url, ORPHANS) == [(0,)]
    assert sql(url, "SELECT count(*) FROM plexichat_fields") == [(15,)]
    assert _stored_vectors_match(url, first + overlap[5:10])
    assert store.append([_record(n, f"new {n}") for n in range(20, 25)]) == 5
    assert not staging(store)  # staged, every row inserted: the next batch is COPied
    assert store.append([_record(n, f"new {n}") for n in range(25, 30)]) == 5
    assert not staging(store)
    assert store.count(LogQuery()) == 25


def test_repeats_in_a_batch_keep_the_first(pg: tuple[PostgresStore, str]) -> None:
    """Of records repeated in one batch (same stream, seq and time), the first is stored."""
    store, _ = pg
    assert store.append([_record(1, "first"), _record(2, "two"), _record(1, "second")]) == 2
    assert [r["message"] for r in store.query(LogQuery(order="asc")).entries] == ["first", "two"]


def test_lines_postgres_text_cannot_hold_are_stored_mended(pg: tuple[PostgresStore, str]) -> None:
    """A line with bytes that are not UTF-8, or a NUL, goes in by COPY (bad bytes replaced,
    NUL dropped, as before), and the rest of its batch with it."""
    store, _ = pg
    bad = record_from_event(
        {"timestamp": "2024-03-01T00:00:00Z", "message": "m", "stream": "s2", "seq": 1},
        raw=b'{"message":"bad \xff byte\x00"}',
    )
    assert store.append([bad, _record(1, "fine")]) == 2
    stored = {r.stream: r.raw for r in store.iter_records(LogQuery())}
    assert stored["s2"] == '{"message":"bad \ufffd byte"}'.encode()


def test_copy_chosen_as_deadlock_victim_takes_the_staged_way(pg: tuple[PostgresStore, str]) -> None:
    """A COPY over two partitions takes its keys' locks partition by partition, so it can
    deadlock with another writer inserting the same keys in key order: when the server
    aborts the COPY, the batch takes the staged way and the append still succeeds."""
    _, url = pg
    jan, feb = "2024-01-31T23:59:59Z", "2024-02-01T00:00:01Z"

    def at(stream: str, seq: int, when: str) -> StoredRecord:
        line = orjson.dumps({"timestamp": when, "level": "INFO", "message": f"{stream} {seq}"})
        record = record_from_line(line, stream=stream, seq=seq)
        assert record is not None
        return record

    s1_jan, s1_feb, s2_jan = at("s1", 1, jan), at("s1", 2, feb), at("s2", 1, jan)
    checks = url.replace("options=", "options=-cdeadlock_timeout%3D2000%20", 1)  # see below
    insert = """INSERT INTO plexichat_records (ts, levelno, level, category, logger, module,
        message, stream, seq, raw, tsv) VALUES (%s, 20, 'INFO', 'x', 'app', 'm', 'm', %s, %s,
        '{}', '') ON CONFLICT DO NOTHING"""
    with PostgresStore(checks) as store, psycopg.connect(url) as other:
        store.append([at("warm", 1, jan), at("warm", 2, feb)])  # both months' partitions
        other.execute("SET deadlock_timeout = '10s'")
        other.execute(insert, [s1_feb.ts, "s1", 2])  # holds s1/2 until it commits
        outcome: list[object] = []
        writer = threading.Thread(
            target=lambda: outcome.append(_attempt(store, [s1_jan, s1_feb, s2_jan]))
        )
        writer.start()
        time.sleep(1.0)  # the COPY holds s1/1 and s2/1 and waits for s1/2
        # waits for the COPY's s2/1: a deadlock, which the COPY's check finds (2 s after it
        # began to wait, the other's only after 10 s)
        other.execute(insert, [s2_jan.ts, "s2", 1])
        other.commit()
        writer.join(30)
    assert outcome == [1]  # s1/1; s1/2 and s2/1 were the other writer's
    assert store_keys(url) == [("s1", 1), ("s1", 2), ("s2", 1), ("warm", 1), ("warm", 2)]
    assert sql(url, ORPHANS) == [(0,)]


def _attempt(store: PostgresStore, records: list[StoredRecord]) -> object:
    try:
        return store.append(records, {"seg": 1})
    except psycopg.Error as exc:
        return exc


def store_keys(url: str) -> list[tuple[str, int]]:
    """Every stored ``(stream, seq)``, sorted."""
    return [
        (r[0], r[1]) for r in sql(url, "SELECT stream, seq FROM plexichat_records ORDER BY 1, 2")
    ]
