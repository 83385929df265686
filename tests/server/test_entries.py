"""``GET /entries``: every filter, cursors under concurrent inserts, errors and auditing."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from plexichat.core.logging import get_logger
from plexichat.core.logging.security_logger import get_security_logger
from plexichat.core.logging.server.params import FilterError, filter_to_query
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import LiveServer


def _entries(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/entries", params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"entries", "next_cursor"}
    entries: list[dict[str, Any]] = body["entries"]
    return entries


def _messages(entries: list[dict[str, Any]]) -> list[str]:
    return [e["message"] for e in entries]


def _error(response: httpx.Response, param: str) -> str:
    """The message of a 422 about ``param`` (FastAPI's standard shape)."""
    assert response.status_code == 422, response.text
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", param]
    assert item["type"] in ("value_error", "literal_error", "greater_than_equal", "less_than_equal")
    return str(item["msg"])


def test_spec_request_verbatim(live_server: LiveServer) -> None:
    """``level=ERROR&limit=100&search_query=database``: errors about the database, newest first."""
    log = get_logger("app.db")
    for i in range(3):
        log.error("database connection timeout %d", i)
    log.error("cache miss")
    log.info("database healthy")
    live_server.wait_for(5, LogQuery(loggers=("app.db",)))
    with live_server.client("viewer") as c:
        response = c.get("/entries?level=ERROR&limit=100&search_query=database")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert _messages(body["entries"]) == [f"database connection timeout {i}" for i in (2, 1, 0)]
    assert body["next_cursor"] is None


def test_level_levels_category_logger_and_module(live_server: LiveServer) -> None:
    """Minimum level, exact levels, categories (repeated and comma), logger trees, modules."""
    get_logger("svc.api").info("api call", category="api")
    get_logger("svc.api.v2").warning("api slow", category="performance")
    get_logger("svc.db").error("db down", category="database")
    get_logger("svcx").critical("other tree", category="system")
    live_server.wait_for(4, LogQuery(loggers=("svc.*", "svcx")))
    with live_server.client("viewer") as c:
        assert set(_messages(_entries(c, level="warning", logger="svc.*"))) == {
            "api slow",
            "db down",
        }
        assert _messages(_entries(c, levels="ERROR,CRITICAL", logger=["svc.*", "svcx"])) == [
            "other tree",
            "db down",
        ]
        assert set(_messages(_entries(c, category=["api", "database"]))) == {"api call", "db down"}
        assert set(_messages(_entries(c, category="api,performance"))) == {"api call", "api slow"}
        assert _messages(_entries(c, logger="svc.api")) == ["api call"]
        assert set(_messages(_entries(c, logger="svc.api.*"))) == {"api call", "api slow"}
        assert len(_entries(c, module="test_entries", logger="svc.*")) == 3
        assert _entries(c, module="elsewhere", logger="svc.*") == []


def test_context_and_metadata_filters(live_server: LiveServer) -> None:
    """``context.NAME`` and ``metadata.NAME`` match equal values; numbers match their text."""
    log = get_logger("shop")
    log.info("order placed", user_id="u1", extra={"metadata": {"status": 201, "region": "eu"}})
    log.info("order placed", user_id="u2", extra={"metadata": {"status": 500, "region": "eu"}})
    log.info("order failed", user_id="u1", extra={"metadata": {"status": 500, "region": "us"}})
    live_server.wait_for(3, LogQuery(loggers=("shop",)))
    with live_server.client("viewer") as c:
        found = _entries(c, **{"context.user_id": "u1"})
        assert [e["context"]["user_id"] for e in found] == ["u1", "u1"]
        found = _entries(c, **{"context.user_id": "u1", "metadata.status": "500"})
        assert _messages(found) == ["order failed"]
        found = _entries(c, **{"metadata.region": "eu", "search_query": "placed"})
        assert sorted(e["context"]["user_id"] for e in found) == ["u1", "u2"]
        assert _entries(c, **{"context.user_id": "nobody"}) == []


def test_search_syntax_and_time_range(live_server: LiveServer) -> None:
    """Phrases, OR, NOT and parentheses; start_time/end_time are inclusive bounds."""
    log = get_logger("search")
    for text in ("connection refused by db", "refused connection", "timeout on cache", "ok"):
        log.warning(text)
    live_server.wait_for(4, LogQuery(loggers=("search",)))
    with live_server.client("viewer") as c:
        assert _messages(_entries(c, logger="search", search_query='"connection refused"')) == [
            "connection refused by db"
        ]
        found = _entries(c, logger="search", search_query="refused OR timeout", order="asc")
        assert _messages(found) == [
            "connection refused by db",
            "refused connection",
            "timeout on cache",
        ]
        found = _entries(c, logger="search", search_query="(refused OR timeout) NOT db")
        assert set(_messages(found)) == {"refused connection", "timeout on cache"}
        every = _entries(c, logger="search", order="asc")
        first, last = every[0]["timestamp"], every[-1]["timestamp"]
        assert len(_entries(c, logger="search", start_time=first, end_time=last)) == 4
        assert _entries(c, logger="search", end_time="2000-01-01T00:00:00Z") == []
        assert _entries(c, logger="search", start_time="2999-01-01T00:00:00+02:00") == []


def test_cursor_pages_have_no_duplicates_or_gaps_under_concurrent_inserts(
    live_server: LiveServer,
) -> None:
    """Walking 250 records 17 at a time, in both orders, while new records keep arriving,
    returns each stored record exactly once."""
    log = get_logger("pager")
    for i in range(250):
        log.info("item %d", i)
    live_server.wait_for(250, LogQuery(loggers=("pager",)))
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 2000:
            log.info("late %d", n)
            n += 1
            stop.wait(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with live_server.client("viewer") as c:
            for order in ("desc", "asc"):
                seen: list[tuple[str, int]] = []
                cursor: str | None = None
                pages = 0
                while True:
                    params: dict[str, Any] = {"logger": "pager", "limit": 17, "order": order}
                    if cursor is not None:
                        params["cursor"] = cursor
                    body = c.get("/entries", params=params).json()
                    seen.extend((e["stream"], e["seq"]) for e in body["entries"])
                    pages += 1
                    cursor = body["next_cursor"]
                    if cursor is None or (order == "asc" and pages > 30):
                        break
                assert len(seen) == len(set(seen)), f"duplicates in {order} order"
                items = set(seen)
                assert pages >= 15
                originals = live_server.state.store.query(
                    LogQuery(loggers=("pager",), search="item", limit=1000)
                ).entries
                assert len(originals) == 250
                assert {(e["stream"], e["seq"]) for e in originals} <= items
    finally:
        stop.set()
        thread.join()


def test_invalid_parameters_name_the_parameter(live_server: LiveServer) -> None:
    """422 in FastAPI's shape naming the parameter and what is allowed; 400 for cursors."""
    with live_server.client("viewer") as c:
        assert "allowed are" in _error(c.get("/entries", params={"level": "LOUD"}), "level")
        assert "ISO-8601" in _error(c.get("/entries", params={"start_time": "May"}), "start_time")
        msg = _error(
            c.get("/entries", params={"start_time": "2024-02-01", "end_time": "2024-01-01"}),
            "start_time",
        )
        assert "after" in msg
        assert "unbalanced quote" in _error(
            c.get("/entries", params={"search_query": 'say "hi'}), "search_query"
        )
        assert "NOT" in _error(c.get("/entries", params={"search_query": "NOT x"}), "search_query")
        _error(c.get("/entries", params={"limit": 0}), "limit")
        _error(c.get("/entries", params={"limit": 1001}), "limit")
        _error(c.get("/entries", params={"order": "sideways"}), "order")
        msg = _error(c.get("/entries", params={"serach_query": "x"}), "serach_query")
        assert "unknown parameter" in msg
        assert "search_query" in msg
        assert "context.NAME" in _error(c.get("/entries?context.=x"), "context.")
        response = c.get("/entries", params={"cursor": "not-a-cursor"})
        assert response.status_code == 400
        assert "unknown cursor" in response.json()["detail"]


def test_cursor_of_the_other_order_is_refused(live_server: LiveServer) -> None:
    """A desc cursor cannot continue an asc walk: 400 telling to keep the order."""
    for i in range(3):
        get_logger("flip").info("r%d", i)
    live_server.wait_for(3, LogQuery(loggers=("flip",)))
    with live_server.client("viewer") as c:
        cursor = c.get("/entries", params={"logger": "flip", "limit": 1}).json()["next_cursor"]
        assert cursor
        response = c.get("/entries", params={"logger": "flip", "cursor": cursor, "order": "asc"})
    assert response.status_code == 400
    assert "same order" in response.json()["detail"]


def _audit_reads(live_server: LiveServer, token: str) -> list[dict[str, Any]]:
    page = live_server.state.store.query(
        LogQuery(categories=("audit",), where=(("metadata.resource", "logs/entries"),))
    )
    return [e for e in page.entries if e["metadata"]["details"]["token_name"] == token]


@pytest.mark.parametrize("role", ["security", "admin"])
def test_sensitive_pages_are_audited_for_privileged_roles(
    live_server: LiveServer, role: str
) -> None:
    """A security/admin page holding security records writes one audit record naming the
    token, the filters and the count; a page without any writes none."""
    get_security_logger().log_event("data_export", "HIGH", user_id="u5", ip_address="10.1.1.1")
    get_logger("plain").info("nothing secret")
    live_server.wait_for(1, LogQuery(categories=("security",)))
    live_server.wait_for(1, LogQuery(loggers=("plain",)))
    with live_server.client(role) as c:
        assert len(_entries(c, logger="plain")) == 1
        found = _entries(c, category="security")
        assert [e["metadata"]["event_type"] for e in found] == ["data_export"]
    live_server.wait_for(1, LogQuery(categories=("audit",)))
    (record,) = _audit_reads(live_server, f"test-{role}")
    assert record["metadata"]["action"] == "read"
    assert record["metadata"]["actor"]["role"] == role
    assert record["metadata"]["details"]["filters"]["category"] == ["security"]
    assert record["metadata"]["details"]["count"] == 1


def test_filter_to_query_is_the_same_parser_for_the_live_tail() -> None:
    """The live tail's entry point: plain dict filters (lists, numbers, None) become the
    same LogQuery, and a bad field raises FilterError naming it."""
    query = filter_to_query(
        {
            "level": "error",
            "category": ["security", "audit,system"],
            "logger": "app.*",
            "search_query": '"disk full" OR quota',
            "context.user_id": "u1",
            "metadata.status": 500,
            "metadata.flag": True,
            "event_type": "LOGIN_FAILURE",
            "severity": "high",
            "end_time": None,
        },
        exclude_security=True,
        limit=5,
    )
    assert query.min_level == 40
    assert query.categories == ("security", "audit", "system")
    assert query.where == (
        ("context.user_id", "u1"),
        ("metadata.status", "500"),
        ("metadata.flag", "true"),
    )
    assert (query.event_types, query.min_severity) == (("login_failure",), "HIGH")
    assert (query.exclude_security, query.limit, query.end) == (True, 5, None)
    for bad, field in (
        ({"level": "LOUD"}, "level"),
        ({"category": {"a": 1}}, "category"),
        ({"search_query": "(a"}, "search_query"),
        ({"context.": "x"}, "context."),
        ({"metadata.x": "\ud800"}, "metadata.x"),
        ({"colour": "red"}, "colour"),
        ({"start_time": "2024-02-01", "end_time": "2024-01-01"}, "start_time"),
    ):
        with pytest.raises(FilterError) as caught:
            filter_to_query(bad, exclude_security=False)
        assert caught.value.field == field
        assert caught.value.message
    with pytest.raises(FilterError) as caught:
        filter_to_query({}, exclude_security=False, cursor="nope")
    assert caught.value.field == "cursor"
