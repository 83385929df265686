"""The search syntax: words, phrases, AND/OR/NOT, parentheses, and clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging.store.base import LogQuery, decode_cursor, encode_cursor
from plexichat.core.logging.store.search import (
    And,
    Not,
    Or,
    Phrase,
    QuerySyntaxError,
    Term,
    parse_search,
)


def test_adjacent_words_mean_and() -> None:
    """'database timeout' is the same as 'database AND timeout'."""
    assert parse_search("database timeout") == And((Term("database"), Term("timeout")))
    assert parse_search("database AND timeout") == parse_search("database timeout")


def test_or_binds_looser_than_and() -> None:
    """'a b OR c' is (a AND b) OR c."""
    assert parse_search("a b OR c") == Or((And((Term("a"), Term("b"))), Term("c")))


def test_phrases_not_and_parentheses() -> None:
    """Phrases, NOT and parentheses build the expected tree."""
    assert parse_search('"connection refused" NOT (debug OR trace)') == And(
        (Phrase("connection refused"), Not(Or((Term("debug"), Term("trace")))))
    )


def test_quoted_operator_is_a_word() -> None:
    """A quoted AND searches for the word itself."""
    assert parse_search('"AND"') == Phrase("AND")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty search"),
        ("database AND", "ends where a word"),
        ("(database", "never closed"),
        ("database)", "unexpected"),
        ('"unclosed', "unbalanced quote"),
        ("NOT debug", "NOT needs something"),
        ("OR x", "where a word or phrase is expected"),
        ("x" * 1001, "limit is 1000"),
    ],
)
def test_syntax_errors_are_explained(text: str, fragment: str) -> None:
    """Each malformed search raises QuerySyntaxError saying what is wrong."""
    with pytest.raises(QuerySyntaxError, match=fragment):
        parse_search(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_raises_query_syntax_error(text: str) -> None:
    """No input makes the parser fail with anything but QuerySyntaxError."""
    try:
        parse_search(text)
    except QuerySyntaxError:
        pass


def test_query_validates_its_parts() -> None:
    """LogQuery rejects bad limits, fields, levels, severities and inverted ranges."""
    with pytest.raises(QuerySyntaxError, match=r"1\.\.1000"):
        LogQuery(limit=0)
    with pytest.raises(QuerySyntaxError, match=r"context\.NAME"):
        LogQuery(where=(("user_id", "u1"),))
    with pytest.raises(QuerySyntaxError, match="invalid log level"):
        LogQuery(min_level="LOUD")
    with pytest.raises(QuerySyntaxError, match="allowed are LOW"):
        LogQuery(min_severity="bad")
    with pytest.raises(QuerySyntaxError, match="is after end"):
        LogQuery(start="2024-02-01T00:00:00Z", end="2024-01-01T00:00:00Z")
    with pytest.raises(QuerySyntaxError, match="ISO-8601"):
        LogQuery(start="yesterday")


def test_cursor_round_trip_and_tamper_check() -> None:
    """A cursor decodes to what was encoded; an edited or foreign one is refused."""
    cursor = encode_cursor(1_705_314_645_000_000, 42, "desc")
    assert decode_cursor(cursor, "desc") == (1_705_314_645_000_000, 42)
    with pytest.raises(QuerySyntaxError, match="unknown cursor"):
        decode_cursor(cursor, "asc")
    with pytest.raises(QuerySyntaxError, match="unknown cursor"):
        decode_cursor(cursor[:-2] + "AA", "desc")
    with pytest.raises(QuerySyntaxError, match="unknown cursor"):
        decode_cursor("'; DROP TABLE records; --", "desc")


def test_deep_nesting_is_refused_clearly() -> None:
    """Hundreds of nested parentheses give a QuerySyntaxError, not a RecursionError."""
    with pytest.raises(QuerySyntaxError, match="deeper than"):
        parse_search("(" * 300 + "a" + ")" * 300)


def test_out_of_range_seq_and_level_are_bounded() -> None:
    """A seq or level number too big for a database integer never reaches the store."""
    from plexichat.core.logging.store.base import record_from_event

    rec = record_from_event(
        {"timestamp": "2024-01-15T10:30:45Z", "level": "99999999999", "seq": 2**64 - 1},
        seq=7,
    )
    assert rec.seq == 7
    assert rec.levelno == 2**31 - 1


def _format_1(ts: int, row_id: int, order: str) -> str:
    """A cursor as versions before cursor kinds made them."""
    import base64
    import hashlib

    import orjson

    payload = orjson.dumps([ts, row_id, order])
    sig = hashlib.sha256(b"plexichat-cursor" + payload).digest()[:6]
    return base64.urlsafe_b64encode(payload + sig).decode().rstrip("=")


def test_page_and_live_tail_cursors_are_not_interchangeable() -> None:
    """A live-tail cursor is refused as a page cursor and the reverse (they count rows
    differently); an old page cursor is refused (SQLite pages changed keys), an old
    live-tail cursor still resumes (its meaning did not change)."""
    tail = encode_cursor(5, 42, "asc", "tail")
    page = encode_cursor(5, 42, "asc")
    assert decode_cursor(tail, "asc", "tail") == (5, 42)
    with pytest.raises(QuerySyntaxError, match="next_cursor of the previous page"):
        decode_cursor(tail, "asc")
    with pytest.raises(QuerySyntaxError, match="an entry's cursor"):
        decode_cursor(page, "asc", "tail")
    with pytest.raises(QuerySyntaxError, match="unknown cursor"):
        decode_cursor(_format_1(5, 42, "desc"), "desc")
    assert decode_cursor(_format_1(5, 42, "asc"), "asc", "tail") == (5, 42)
