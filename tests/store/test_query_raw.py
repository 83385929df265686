"""``LogStore.query_raw`` on every backend: the page ``query`` returns, as the stored lines
(byte for byte, never parsed), each with whether it is a security or audit record."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from plexichat.core.logging.store import LogQuery, LogStore, QuerySyntaxError, StoredRecord
from plexichat.core.logging.store.base import (
    RawPage,
    is_sensitive,
    object_line,
    record_from_event,
    record_from_line,
)


def _record(seq: int, second: int | None = None, **fields: Any) -> StoredRecord:
    """A record at ``second`` (default ``seq``) seconds past 2026-01-01T00:00:00Z."""
    offset = seq if second is None else second
    event: dict[str, Any] = {
        "timestamp": f"2026-01-01T{offset // 3600:02d}:{offset // 60 % 60:02d}:"
        f"{offset % 60:02d}.000000Z",
        "level": "INFO",
        "category": "system",
        "logger": "app",
        "module": "mod",
        "message": f"message {seq}",
        "stream": "s1",
        "seq": seq,
        **fields,
    }
    return record_from_event(event)


def _parsed(page: RawPage) -> list[Any]:
    return [orjson.loads(line) for line in page.lines]


def _walk_raw(store: LogStore, **query: Any) -> list[bytes]:
    """Every line of a query, page by page with ``query_raw``'s cursors."""
    lines: list[bytes] = []
    cursor: str | None = None
    for _ in range(1000):
        page = store.query_raw(LogQuery(cursor=cursor, **query))
        lines.extend(page.lines)
        if page.next_cursor is None:
            return lines
        cursor = page.next_cursor
    raise AssertionError("pagination never ended")


def test_empty_store_gives_an_empty_last_page(store: LogStore) -> None:
    """No records: no lines, no flags, no cursor."""
    assert store.query_raw(LogQuery()) == RawPage(lines=[], sensitive=0, next_cursor=None)


def test_lines_are_the_stored_bytes(store: LogStore) -> None:
    """A line comes back exactly as stored: key order, spacing, escapes and numbers kept
    (``query`` would parse and re-serialize them)."""
    raw = (
        b'{"timestamp": "2026-01-01T00:00:01Z",  "zeta": 1.50, "level": "INFO",'
        b' "message": "caf\\u00e9 \\"quoted\\"", "alpha": [1, 2e3], "seq": 1}'
    )
    record = record_from_line(raw, stream="s1")
    assert record is not None
    store.append([record])
    page = store.query_raw(LogQuery())
    assert page.lines == [raw]
    assert _parsed(page) == store.query(LogQuery()).entries


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"order": "asc"},
        {"limit": 7},
        {"min_level": "WARNING"},
        {"categories": ("api", "security")},
        {"loggers": ("svc.*",)},
        {"search": "message AND NOT 3"},
        {"where": (("context.user_id", "u1"),)},
        {"exclude_security": True, "order": "asc", "limit": 3},
    ],
    ids=repr,
)
def test_same_page_as_query(store: LogStore, query: dict[str, Any]) -> None:
    """For any query, the lines parse to ``query``'s entries and the cursor is the same."""
    store.append(
        [_record(i, second=i // 2, level=("INFO", "WARNING", "ERROR")[i % 3]) for i in range(20)]
        + [_record(20, category="api", logger="svc.api", context={"user_id": "u1"})]
        + [_record(21, category="security", level="SECURITY", logger="svc")]
    )
    raw = store.query_raw(LogQuery(**query))
    parsed = store.query(LogQuery(**query))
    assert _parsed(raw) == parsed.entries
    assert raw.next_cursor == parsed.next_cursor
    assert raw.sensitive == sum(map(is_sensitive, parsed.entries))


@pytest.mark.parametrize("order", ["desc", "asc"])
def test_pages_give_every_record_once_in_order(store: LogStore, order: str) -> None:
    """Pages of 10 over 45 records (times tie in threes), cursors from query_raw."""
    store.append([_record(i, second=i // 3) for i in range(45)])
    seqs = [orjson.loads(line)["seq"] for line in _walk_raw(store, limit=10, order=order)]
    assert seqs == (list(range(45)) if order == "asc" else list(range(44, -1, -1)))


def test_cursors_are_interchangeable_with_query(store: LogStore) -> None:
    """A cursor from ``query`` continues a ``query_raw`` walk and the other way round."""
    store.append([_record(i) for i in range(30)])
    first = store.query(LogQuery(limit=10))
    second = store.query_raw(LogQuery(limit=10, cursor=first.next_cursor))
    third = store.query(LogQuery(limit=10, cursor=second.next_cursor))
    seqs = [e["seq"] for e in first.entries + _parsed(second) + third.entries]
    assert seqs == list(range(29, -1, -1))
    assert third.next_cursor is None


def test_sensitive_count_matches_exclude_security(store: LogStore) -> None:
    """A record counts as sensitive when it is a security or audit category or level, or
    carries a security event type: exactly the records ``exclude_security`` leaves out."""
    records = [
        _record(1),
        _record(2, category="security"),
        _record(3, category="audit"),
        _record(4, level="SECURITY"),
        _record(5, level="audit"),
        _record(6, metadata={"event_type": "login_failed", "severity": "LOW"}),
        _record(7, context={"event_type": "xss"}),
        _record(8, category="api", level="ERROR"),
    ]
    store.append(records)
    assert store.query_raw(LogQuery()).sensitive == 6
    assert [r.seq for r in records if is_sensitive(r.record)] == [2, 3, 4, 5, 6, 7]
    for record in records:  # each one on its own: a page of that record only
        moment = f"2026-01-01T00:00:{record.seq:02d}Z"
        one = store.query_raw(LogQuery(start=moment, end=moment))
        assert len(one.lines) == 1
        assert one.sensitive == int(is_sensitive(record.record))
    viewer = store.query_raw(LogQuery(order="asc", exclude_security=True))
    assert [orjson.loads(line)["seq"] for line in viewer.lines] == [1, 8]
    assert viewer.sensitive == 0


def test_lines_make_a_valid_json_array_unparsed(store: LogStore) -> None:
    """The lines can be embedded as they are (``orjson.Fragment``) into one JSON body."""
    store.append([_record(i, context={"note": "line\nbreak \u2028 \U0001f600"}) for i in range(5)])
    page = store.query_raw(LogQuery())
    body = orjson.dumps({"entries": [orjson.Fragment(line) for line in page.lines]})
    assert orjson.loads(body)["entries"] == store.query(LogQuery()).entries


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"[1, 2]", "[1, 2]"), (b'"just text"', "just text"), (b"42", "42")],
)
def test_a_line_that_is_not_an_object_comes_back_as_a_message(
    store: LogStore, raw: bytes, message: str
) -> None:
    """A hand-appended line that is valid JSON but not an object comes back as
    ``{"message": ...}``, the entry ``query`` gives for it."""
    record = _record(1)
    store.append([StoredRecord(**{**_fields(record), "raw": raw})])
    page = store.query_raw(LogQuery())
    assert _parsed(page) == [{"message": message}] == store.query(LogQuery()).entries


def _fields(record: StoredRecord) -> dict[str, Any]:
    names = ("ts", "levelno", "level", "category", "logger", "module", "message", "stream")
    return {name: getattr(record, name) for name in (*names, "seq")}


def test_object_line_keeps_objects_and_wraps_the_rest() -> None:
    """Objects (even with spaces around them) are kept as they are; anything else becomes
    a message object."""
    assert object_line(b'{"a": 1}') == b'{"a": 1}'
    assert object_line(b' {"a": 1}\r') == b' {"a": 1}\r'
    assert orjson.loads(object_line(b"not json")) == {"message": "not json"}
    assert orjson.loads(object_line(b"")) == {"message": ""}
    assert orjson.loads(object_line(b"null")) == {"message": "None"}


def test_search_without_words_is_a_syntax_error(store: LogStore) -> None:
    """The store's own error is that of ``query``: a search with no word to match."""
    with pytest.raises(QuerySyntaxError, match="no words"):
        store.query_raw(LogQuery(search="--"))


# -- try_query_raw: the event loop's non-blocking attempt ---------------------------------------


def _embedded(store: LogStore) -> bool:
    return store.url.startswith("sqlite")


def test_try_query_raw_answers_on_the_spot_or_says_none(store: LogStore) -> None:
    """Within a generous budget the embedded store gives ``query_raw``'s page at once; a
    networked store (PostgreSQL) always gives None (its caller then uses a thread)."""
    store.append([_record(i, category="security" if i % 4 == 0 else "system") for i in range(20)])
    query = LogQuery(limit=7, order="asc")
    got = store.try_query_raw(query, 10.0)
    if _embedded(store):
        assert got == store.query_raw(query)
        assert got is not None
        assert got.sensitive == 2
    else:
        assert got is None


def test_try_query_raw_gives_up_at_the_deadline(store: LogStore) -> None:
    """A query still running at the deadline is interrupted and gives None (the records
    are scanned one by one: a number is not in the search index); the connection then
    serves the next attempts normally, records stored meanwhile included (the interrupted
    read kept no snapshot open)."""
    store.append([_record(i, context={"n": i}) for i in range(2000)])
    query = LogQuery(where=(("context.n", "1999"),))
    assert store.try_query_raw(query, 1e-9) is None
    assert store.try_query_raw(LogQuery(limit=1000), 1e-9) is None  # stopped mid-fetch
    store.append([_record(5000, second=7200, context={"n": 1999})])

    def read(query: LogQuery) -> RawPage | None:
        return store.try_query_raw(query, 30.0) if _embedded(store) else store.query_raw(query)

    page = read(query)
    assert page is not None
    assert [orjson.loads(line)["seq"] for line in page.lines] == [5000, 1999]


@pytest.mark.parametrize("budget", [0, -1.0, float("nan"), True, "0.1", None])
def test_try_query_raw_refuses_a_bad_budget(store: LogStore, budget: Any) -> None:
    """The budget must be seconds > 0; the message names the value."""
    with pytest.raises(ValueError, match="invalid budget"):
        store.try_query_raw(LogQuery(), budget)
