"""The live tail's Python filter: it agrees with the store's SQL on the same query, and the
WebSocket's filter dict becomes that query (or an error naming the field)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexichat.core.logging.server.matcher import Matcher, RecordView, parse_filter, tokenize
from plexichat.core.logging.server.params import FilterError
from plexichat.core.logging.store import LogStore
from plexichat.core.logging.store.base import LogQuery, record_from_event
from plexichat.core.logging.store.search import QuerySyntaxError
from tests.store import conftest as store_conftest

T0 = "2026-03-01T12:00:00Z"
store = store_conftest.store  # the store fixture: each backend


def rec(message: str = "hello", **fields: Any) -> dict[str, Any]:
    """A record dict in the PlexiChat schema."""
    return {"timestamp": T0, "level": "INFO", "category": "system", "logger": "app",
            "module": "m", "message": message, **fields}  # fmt: skip


def matches(record: dict[str, Any], **query: Any) -> bool:
    """Whether ``Matcher(LogQuery(**query))`` matches ``record``."""
    return Matcher(LogQuery(**query))(record)


def _fts5_tokens(text: str) -> list[str]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize='unicode61')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
    conn.execute("INSERT INTO t (rowid, x) VALUES (1, ?)", (text,))
    tokens = [row[0] for row in conn.execute("SELECT term FROM v ORDER BY offset")]
    conn.close()
    return tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("DB timeout: user-123", ["db", "timeout", "user", "123"]),
        ("a_b.c/d", ["a", "b", "c", "d"]),
        ("Grüße aus Köln, naïve café", ["gruße", "aus", "koln", "naive", "cafe"]),
        ("ΌΣΟΣ", ["όσοσ"]),
        ("  ", []),
    ],
)
def test_tokenize_splits_and_folds_like_fts5(text: str, tokens: list[str]) -> None:
    """Words are runs of letters and digits, case and Latin diacritics folded."""
    assert tokenize(text) == tokens == _fts5_tokens(text)


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_tokenize_agrees_with_fts5_on_any_text(text: str) -> None:
    """Any text (lone surrogates aside) is tokenized exactly as the store's index does."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return
    assert tokenize(text) == _fts5_tokens(text.replace("\x00", " "))


def test_levels_categories_modules_and_event_types() -> None:
    """Minimum level by number (custom names rank like INFO), exact level names,
    categories, modules and security event types."""
    assert matches(rec(level="ERROR"), min_level="WARNING")
    assert not matches(rec(level="INFO"), min_level="WARNING")
    assert matches(rec(level="AUDIT"), min_level="CRITICAL")
    assert matches(rec(level="chatty"), min_level="INFO")  # unknown names rank as INFO
    assert matches(rec(level="warning"), levels=("WARNING",))
    assert not matches(rec(level="ERROR"), levels=("WARNING",))
    assert matches(rec(category="api"), categories=("api", "db"))
    assert not matches(rec(), categories=("api",))
    assert matches({**rec(), "category": None}, categories=("system",))  # the default
    assert matches(rec(), modules=("m",))
    event = rec(metadata={"event_type": "login_failed", "severity": "HIGH"})
    assert matches(event, event_types=("login_failed",), min_severity="MEDIUM")
    assert not matches(event, min_severity="CRITICAL")
    assert not matches(rec(), min_severity="LOW")


def test_loggers_exact_or_with_children() -> None:
    """``app.*`` is ``app`` and every ``app.x``; not ``appx``."""
    for name, expected in (("app", True), ("app.db", True), ("app.db.x", True), ("appx", False)):
        assert matches(rec(logger=name), loggers=("app.*",)) is expected
    assert not matches(rec(logger="app.db"), loggers=("app",))


def test_time_window_and_a_record_without_time() -> None:
    """start/end are inclusive; a record without a usable time never passes a window."""
    assert matches(rec(), start=T0, end=T0)
    assert not matches(rec(), start="2026-03-01T12:00:00.001Z")
    assert not matches(rec(timestamp="yesterday"), end=T0)
    assert matches(rec(timestamp="yesterday"), min_level="INFO")


def test_context_equality_compares_text_or_json_text() -> None:
    """``"2"`` matches 2 and "2"; ``true``/``null`` their JSON values; ``context.a.b`` the
    key ``a.b`` or the nested ``a`` -> ``b``; a missing key never matches."""
    where = (("context.n", "2"),)
    assert matches(rec(context={"n": 2}), where=where)
    assert matches(rec(context={"n": "2"}), where=where)
    assert not matches(rec(context={"n": 2.5}), where=where)
    assert matches(rec(context={"ok": True}), where=(("context.ok", "true"),))
    assert matches(rec(context={"x": None}), where=(("context.x", "null"),))
    assert not matches(rec(context={}), where=(("context.x", "null"),))
    nested = (("context.a.b", "v"),)
    assert matches(rec(context={"a": {"b": "v"}}), where=nested)
    assert matches(rec(context={"a.b": "v"}), where=nested)
    assert matches(rec(metadata={"k": "v w"}), where=(("metadata.k", "v w"),))
    assert matches({**rec(), "performance_data": {"ms": 5}}, where=(("performance_data.ms", "5"),))


def test_search_words_phrases_and_operators() -> None:
    """Words match whole tokens in message, logger and context/metadata values (not keys),
    any case; phrases need the words in a row; AND, OR, NOT combine."""
    record = rec("Database timeout after 5 s", logger="db.pool", context={"user": "Alice"})
    for search, expected in [
        ("database", True),
        ("DATA", False),
        ("database AND timeout", True),
        ("database AND missing", False),
        ("missing OR pool", True),
        ("timeout NOT alice", False),
        ("timeout NOT bob", True),
        ('"timeout after"', True),
        ('"after timeout"', False),
        ('"timeout pool"', False),  # a phrase never spans two columns
        ("user", False),  # a key, not a value
        ("alice db", True),
    ]:
        assert matches(record, search=search) is expected, search


def test_search_values_nested_deeper_than_the_index_are_not_searched() -> None:
    """The store indexes context values six levels deep; the matcher does the same."""
    deep: dict[str, Any] = {"k": "needle"}
    for _ in range(6):
        deep = {"k": deep}
    assert matches(rec(context={"a": {"k": "needle"}}), search="needle")
    assert not matches(rec(context=deep), search="needle")


def test_search_without_words_is_refused() -> None:
    """A search of only punctuation fails, as in the store."""
    with pytest.raises(QuerySyntaxError, match="no words"):
        Matcher(LogQuery(search="*** --"))
    assert matches(rec("an error"), search="error AND *")  # the wordless part is dropped


def test_exclude_security_leaves_out_security_and_audit_records() -> None:
    """Category, level or event type marks a record as sensitive."""
    for record in (
        rec(category="security"),
        rec(level="AUDIT"),
        rec(metadata={"event_type": "x"}),
    ):
        assert not matches(record, exclude_security=True)
    assert matches(rec(), exclude_security=True)


def test_record_view_of_a_stored_record_uses_its_columns() -> None:
    """The hub passes the stored form: no second derivation from the dict."""
    doc = rec(level="ERROR")
    view = RecordView(doc, record_from_event(doc))
    assert Matcher(LogQuery(min_level="ERROR"))(view)


# --- the filter dict ------------------------------------------------------------------------


def test_parse_filter_compiles_and_normalizes_the_filter() -> None:
    """The REST names, lists or comma lists; the echo has one type per key."""
    matcher, normalized = parse_filter(
        {
            "level": "warn",
            "category": "api, database",
            "logger": ["app.*"],
            "search_query": "db AND slow",
            "context.user_id": "u1",
            "context.attempt": 2,
            "severity": "high",
        },
        sees_sensitive=True,
    )
    assert normalized == {
        "level": "WARNING",
        "category": ["api", "database"],
        "logger": ["app.*"],
        "search_query": "db AND slow",
        "severity": "HIGH",
        "context.user_id": "u1",
        "context.attempt": "2",
    }
    context = {"user_id": "u1", "attempt": 2}
    record = rec("slow db", level="ERROR", category="api", context=context)
    record["metadata"] = {"severity": "HIGH"}
    assert matcher(record)
    assert not matcher({**record, "category": "security"})
    assert parse_filter({}, sees_sensitive=True)[1] == {}


def test_parse_filter_for_a_viewer_excludes_security_records() -> None:
    """The viewer's matcher leaves out security and audit records, as its REST queries do."""
    matcher, normalized = parse_filter({"level": "INFO"}, sees_sensitive=False)
    assert normalized == {"level": "INFO"}
    assert matcher(rec())
    assert not matcher(rec(category="audit"))


@pytest.mark.parametrize(
    ("filt", "field", "fragment"),
    [
        ({"level": "LOUD"}, "level", "allowed are"),
        ({"colour": "red"}, "colour", "allowed are level"),
        ({"search_query": "(a"}, "search_query", "never closed"),
        ({"search_query": "--"}, "search_query", "no words"),
        ({"start_time": "soon"}, "start_time", "ISO-8601"),
        ({"category": {"a": 1}}, "category", "give a string"),
    ],
)
def test_parse_filter_errors_name_the_field(
    filt: dict[str, Any], field: str, fragment: str
) -> None:
    """Every refusal names the key, and says what is allowed."""
    with pytest.raises(FilterError) as info:
        parse_filter(filt, sees_sensitive=False)
    assert info.value.field == field
    assert fragment in info.value.message


# --- agreement with the store ---------------------------------------------------------------

LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "SECURITY", "AUDIT"]
CATEGORIES = ["system", "api", "database", "security"]
LOGGERS = ["app", "app.db", "app.db.pool", "app.dbx", "other"]
WORDS = ["database", "timeout", "error", "db-pool", "user_42", "Café", "slow", "refused"]
USERS = ["u1", "u2", "u 3"]
TIMES = ["2026-03-01T12:00:00Z", "2026-03-01T12:00:01Z", "2026-03-02T00:00:00Z"]

records = st.lists(
    st.fixed_dictionaries(
        {
            "timestamp": st.sampled_from(TIMES),
            "level": st.sampled_from(LEVELS),
            "category": st.sampled_from(CATEGORIES),
            "logger": st.sampled_from(LOGGERS),
            "module": st.sampled_from(["m", "n"]),
            "message": st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
            "context": st.fixed_dictionaries(
                {},
                optional={
                    "user_id": st.sampled_from(USERS),
                    "n": st.integers(0, 2) | st.sampled_from(["1", "2"]),
                    "tag": st.sampled_from(WORDS),
                },
            ),
        }
    ),
    max_size=12,
)
word = st.sampled_from(["database", "timeout", "error", "db", "pool", "cafe", "42", "slow"])
searches = st.one_of(
    word,
    st.tuples(word, st.sampled_from(["AND", "OR", "NOT"]), word).map(" ".join),
    st.tuples(word, word).map(lambda w: f'"{w[0]} {w[1]}"'),
)
queries = st.fixed_dictionaries(
    {},
    optional={
        "min_level": st.sampled_from(LEVELS),
        "levels": st.lists(st.sampled_from(LEVELS), max_size=2).map(tuple),
        "categories": st.lists(st.sampled_from(CATEGORIES), max_size=2).map(tuple),
        "loggers": st.lists(st.sampled_from(["app", "app.*", "app.db.*", "other"]), max_size=2).map(
            tuple
        ),
        "modules": st.sampled_from([("m",), ("n",)]),
        "start": st.sampled_from(TIMES),
        "where": st.sampled_from(
            [(("context.user_id", u),) for u in USERS] + [(("context.n", "1"),)]
        ),
        "search": searches,
        "exclude_security": st.booleans(),
    },
)


@given(docs=records, query=queries)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_matcher_agrees_with_the_store(
    store: LogStore, docs: list[dict[str, Any]], query: dict[str, Any]
) -> None:
    """For random records and filters, the matcher keeps exactly what the store returns."""
    store.clear()
    docs = [{**doc, "seq": i} for i, doc in enumerate(docs)]
    store.append([record_from_event(doc, stream="h", seq=i) for i, doc in enumerate(docs)])
    log_query = LogQuery(**query, limit=1000, order="asc")
    from_store = sorted(entry["seq"] for entry in store.query(log_query).entries)
    matcher = Matcher(log_query)
    assert [doc["seq"] for doc in docs if matcher(doc)] == from_store
