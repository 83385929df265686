"""Hostile input never makes the server answer 500: property tests over every free-text
parameter (quotes, FTS5 and tsquery operators, SQL, NUL bytes, lone surrogates, huge values)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexichat.core.logging import get_logger
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import LiveServer

NASTY = [
    '"',
    '""',
    "'",
    "' OR 1=1 --",
    "'; DROP TABLE records; --",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "NOT",
    "AND OR NOT",
    "(((",
    ")",
    "*",
    "a*",
    "^a",
    "NEAR(a b)",
    "col:value",
    "message : x",
    "a & b | !c",
    "\\",
    '\\"',
    "%",
    "_",
    "2024-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    "-1",
    "99999999999999999999999999",
    "ERROR",
    "é" * 2000,
    "x" * 5000,
    " ",
    "",
]
_TEXT = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=60),
    st.text(alphabet=st.sampled_from('ab "()*:^-\\\x00\ud800OR NOT AND'), max_size=40),
)
_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OK = {200, 400, 422}


def _url(path: str, params: list[tuple[str, str]]) -> str:
    """The URL with each value percent-encoded as UTF-8 (lone surrogates as their bytes,
    which the server decodes as U+FFFD, as a browser would send them)."""
    parts = [
        quote(k.encode("utf-8", "surrogatepass"), safe="")
        + "="
        + quote(v.encode("utf-8", "surrogatepass"), safe="")
        for k, v in params
    ]
    return path + "?" + "&".join(parts)


def _check(response: httpx.Response) -> None:
    assert response.status_code in OK, (response.status_code, response.text[:500])
    body = response.json()
    if response.status_code == 422:
        for item in body["detail"]:
            assert item["loc"][0] in ("query", "body")
            assert item["msg"]
    elif response.status_code == 400:
        assert isinstance(body["detail"], str)


@pytest.fixture
def seeded(live_server: LiveServer) -> LiveServer:
    """A few records so that queries have something to match."""
    log = get_logger("seed")
    log.error('database "quoted" value; DROP TABLE', user_id="u1")
    log.info("plain text NEAR nothing * star", user_id="u2")
    live_server.wait_for(2, LogQuery(loggers=("seed",)))
    return live_server


@_SETTINGS
@given(
    search=_TEXT,
    level=_TEXT,
    start=_TEXT,
    cursor=_TEXT,
    field=st.one_of(st.sampled_from(["user_id", "a.b", 'x"y', "", "é", "\ud800"]), _TEXT),
    value=_TEXT,
)
def test_entries_never_fail(
    seeded: LiveServer, search: str, level: str, start: str, cursor: str, field: str, value: str
) -> None:
    """Arbitrary text in search_query, level, start_time, cursor and context.* for every
    role that can call /entries: only 200, 400 or 422."""
    with seeded.client("admin") as c:
        for params in (
            [("search_query", search)],
            [("level", level)],
            [("start_time", start)],
            [("cursor", cursor)],
            [(f"context.{field}", value)],
            [("metadata." + field, value), ("search_query", search)],
            [("category", value), ("logger", search), ("levels", level), ("end_time", start)],
        ):
            _check(c.get(_url("/entries", params)))


@_SETTINGS
@given(severity=_TEXT, event_type=_TEXT, user=_TEXT, cursor=_TEXT, names=_TEXT, tag=_TEXT)
def test_security_and_metrics_never_fail(
    seeded: LiveServer,
    severity: str,
    event_type: str,
    user: str,
    cursor: str,
    names: str,
    tag: str,
) -> None:
    """The same for /security/events and /performance/metrics parameters."""
    with seeded.client("admin") as c:
        _check(
            c.get(
                _url(
                    "/security/events",
                    [("severity", severity), ("event_type", event_type), ("user_id", user)],
                )
            )
        )
        _check(c.get(_url("/security/events", [("ip_address", user), ("cursor", cursor)])))
        _check(
            c.get(
                _url(
                    "/performance/metrics",
                    [("metric_names", names), ("tag." + tag, tag), ("end_time", severity)],
                )
            )
        )


EXPORT_FIELDS = [
    *("format", "level", "levels", "category", "logger", "search_query", "start_time"),
    *("end_time", "where", "order", "unknown"),
]
_JSON_VALUE = st.one_of(
    _TEXT,
    st.integers(),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.lists(_TEXT, max_size=3),
    st.dictionaries(_TEXT, _TEXT, max_size=2),
)


@_SETTINGS
@given(
    body=st.dictionaries(
        st.sampled_from(EXPORT_FIELDS),
        _JSON_VALUE,
        max_size=5,
    ),
    where=st.dictionaries(_TEXT, _JSON_VALUE, max_size=2),
)
def test_export_never_fails(
    seeded: LiveServer, body: dict[str, Any], where: dict[str, Any]
) -> None:
    """Arbitrary JSON bodies (lone surrogates as JSON escapes included) for /export."""
    with seeded.client("admin") as c:
        for payload in (body, {**body, "where": where}):
            raw = json.dumps(payload).encode()  # ensure_ascii: surrogates become \\udXXX escapes
            response = c.post("/export", content=raw, headers={"content-type": "application/json"})
            _check(response) if response.status_code != 200 else response.read()
            assert response.status_code in OK


def test_forged_cursors_and_edge_times_get_4xx(live_server: LiveServer) -> None:
    """Cursors are not secret: a forged one with ids or times no database integer holds is
    an unknown cursor (400), and a range ending near year 1 is no server error."""

    def forge(ts: int, row_id: int, order: str = "desc") -> str:
        payload = json.dumps([ts, row_id, order], separators=(",", ":")).encode()
        sig = hashlib.sha256(b"plexichat-cursor" + payload).digest()[:6]
        return base64.urlsafe_b64encode(payload + sig).decode().rstrip("=")

    with live_server.client("admin") as c:
        for cursor in (forge(2**63, 1), forge(1, 2**63), forge(1, -5), forge(-(2**64), 1)):
            assert c.get("/entries", params={"cursor": cursor}).status_code == 400
            events = c.get("/security/events", params={"cursor": cursor})
            assert events.status_code == 400
        edge = c.get("/performance/metrics", params={"end_time": "0001-01-01T00:10:00Z"})
        assert edge.status_code == 200
        assert edge.json()["metrics"] == {}
