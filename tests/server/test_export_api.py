"""``POST /export``: streamed downloads in every format, filters, validation and auditing."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import threading
import time
from typing import Any

import httpx
import pytest

from plexichat.core.logging import get_logger
from plexichat.core.logging.security_logger import get_security_logger
from plexichat.core.logging.store.base import LogQuery
from plexichat.core.logging.store.export import CSV_COLUMNS
from tests.server.conftest import LiveServer

_FILENAME = re.compile(
    r'^attachment; filename="plexichat-logs-\d{8}T\d{6}Z\.(json|ndjson|csv|txt)"$'
)


@pytest.fixture
def logged(live_server: LiveServer) -> LiveServer:
    """Ten records of the logger ``exp`` (levels INFO/WARNING/ERROR) and one security event."""
    log = get_logger("exp")
    for i in range(10):
        level = ("info", "warning", "error")[i % 3]
        getattr(log, level)("export me %d, =formula", i, user_id=f"u{i % 2}")
    get_security_logger().log_event("data_export", "LOW", user_id="u0")
    live_server.wait_for(10, LogQuery(loggers=("exp",)))
    live_server.wait_for(1, LogQuery(categories=("security",)))
    return live_server


def _export(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    response = client.post("/export", json=body)
    assert response.status_code == 200, response.text
    match = _FILENAME.match(response.headers["content-disposition"])
    assert match is not None, response.headers["content-disposition"]
    assert match.group(1) == body.get("format", "json")
    return response


def test_spec_request_verbatim(logged: LiveServer) -> None:
    """The spec's body: a JSON array (empty: nothing was logged in January 2024); the same
    filters over today give the WARNING and ERROR records."""
    body = {
        "format": "json",
        "level": "WARNING",
        "start_time": "2024-01-01T00:00:00Z",
        "end_time": "2024-01-31T23:59:59Z",
    }
    with logged.client("admin") as c:
        january = _export(c, body)
        today = _export(c, {**body, "start_time": "2000-01-01T00:00:00Z", "end_time": None})
    assert january.headers["content-type"] == "application/json"
    assert json.loads(january.content) == []
    records = json.loads(today.content)
    exp = [r for r in records if r["logger"] == "exp"]
    assert len(exp) == 6
    assert {r["level"] for r in records} <= {"WARNING", "ERROR", "CRITICAL", "SECURITY", "AUDIT"}
    assert [r["seq"] for r in exp] == sorted(r["seq"] for r in exp)  # oldest first


def test_csv_parses_and_filters_apply(logged: LiveServer) -> None:
    """CSV: the fixed header, one row per record, formula cells escaped, filters applied."""
    with logged.client("admin") as c:
        response = _export(
            c,
            {
                "format": "csv",
                "logger": "exp",
                "levels": ["ERROR", "WARNING"],
                "where": {"context.user_id": "u1"},
                "order": "desc",
            },
        )
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8"), newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    data = [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]
    assert [d["message"] for d in data] == [
        "export me 7, =formula",
        "export me 5, =formula",
        "export me 1, =formula",
    ]
    assert {json.loads(d["context"])["user_id"] for d in data} == {"u1"}


def test_ndjson_and_txt(logged: LiveServer) -> None:
    """NDJSON: one stored record per line; text: the console format, one line per record."""
    with logged.client("admin") as c:
        nd = _export(c, {"format": "ndjson", "category": "security"})
        txt = _export(c, {"format": "txt", "logger": ["exp"], "search_query": '"export me 3"'})
    assert nd.headers["content-type"] == "application/x-ndjson"
    lines = nd.content.decode().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["metadata"]["event_type"] for r in records] == ["data_export"]
    assert txt.headers["content-type"] == "text/plain; charset=utf-8"
    (line,) = txt.content.decode().splitlines()
    assert "export me 3" in line
    assert "INFO" in line


def test_large_export_is_streamed_in_chunks(live_server: LiveServer) -> None:
    """A few megabytes arrive chunked (no Content-Length), in many pieces, complete."""
    log = get_logger("bulk")
    payload = "x" * 400
    for i in range(6000):
        log.info("bulk %d %s", i, payload)
    live_server.wait_for(6000, LogQuery(loggers=("bulk",)))
    pieces = 0
    buffer = bytearray()
    with (
        live_server.client("admin") as c,
        c.stream("POST", "/export", json={"format": "ndjson", "logger": "bulk"}) as response,
    ):
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        for chunk in response.iter_raw():
            pieces += 1
            buffer += chunk
    lines = bytes(buffer).splitlines()
    assert len(lines) == 6000
    assert json.loads(lines[-1])["message"].startswith("bulk 5999 ")
    assert pieces > 5


def _export_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "plexichat-log-export"]


def test_a_client_that_goes_away_stops_the_export(live_server: LiveServer) -> None:
    """Closing the download after its first chunk ends the export thread (it does not wait
    forever on a full pipe)."""
    log = get_logger("gone")
    for i in range(6000):
        log.info("gone %d %s", i, "y" * 400)
    live_server.wait_for(6000, LogQuery(loggers=("gone",)))
    with (
        live_server.client("admin") as c,
        c.stream("POST", "/export", json={"format": "json", "logger": "gone"}) as response,
    ):
        assert response.status_code == 200
        next(response.iter_raw())
        assert _export_threads()
    deadline = time.monotonic() + 20
    while _export_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _export_threads()


@pytest.mark.parametrize(
    ("body", "loc", "fragment"),
    [
        ({"format": "xml"}, ["body", "format"], "json"),
        ({"level": "LOUD"}, ["body", "level"], "allowed are"),
        ({"start_time": "last tuesday"}, ["body", "start_time"], "ISO-8601"),
        ({"search_query": "AND"}, ["body", "search_query"], "search"),
        ({"search_query": "***"}, ["body", "search_query"], "no words"),
        ({"where": {"user_id": "u1"}}, ["body", "where"], "context.NAME"),
        ({"where": {"context.": "u1"}}, ["body", "context."], "context.NAME"),
        ({"columns": ["a"]}, ["body", "columns"], "Extra inputs"),
        ({"order": "random"}, ["body", "order"], "asc"),
    ],
)
def test_invalid_bodies_are_refused_before_any_byte(
    live_server: LiveServer, body: dict[str, Any], loc: list[str], fragment: str
) -> None:
    """422 in FastAPI's shape naming the field."""
    with live_server.client("admin") as c:
        response = c.post("/export", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    item = response.json()["detail"][0]
    assert item["loc"] == loc
    assert fragment in item["msg"]


def test_lone_surrogates_in_the_body_are_refused(live_server: LiveServer) -> None:
    """A JSON escape of a lone surrogate anywhere in the body: 422 naming where, never 500."""
    with live_server.client("admin") as c:
        for raw in (
            b'{"format": "\\ud800"}',
            b'{"where": {"context.user_id": "\\udfff"}}',
            b'{"where": {"context.\\ud800": "x"}}',
            b'{"category": ["ok", "\\ud83d"]}',
        ):
            response = c.post("/export", content=raw, headers={"content-type": "application/json"})
            assert response.status_code == 422, raw
            assert "lone surrogate" in response.json()["detail"][0]["msg"]


def test_exports_are_audited_with_the_token_name(logged: LiveServer) -> None:
    """Each export writes an audit record: action export, the format and the filters."""
    with logged.client("admin") as c:
        _export(c, {"format": "csv", "level": "ERROR", "where": {"context.user_id": "u1"}})
    query = LogQuery(categories=("audit",), where=(("metadata.action", "export"),))
    logged.wait_for(1, query)
    (record,) = logged.state.store.query(query).entries
    meta = record["metadata"]
    assert meta["resource"] == "logs/export"
    assert meta["details"]["token_name"] == "test-admin"
    assert meta["actor"]["role"] == "admin"
    assert meta["details"]["format"] == "csv"
    assert meta["details"]["filters"]["level"] == "ERROR"
    assert meta["details"]["filters"]["context.user_id"] == "u1"


def _raw_post(live: LiveServer, headers: str, body: bytes) -> str:
    """POST /export over a raw socket; the status line the server answered with."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(
            f"POST /api/v2/logs/export HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode() + body
        )
        reply = sock.recv(4096).decode("latin-1")
    return reply.split("\r\n", 1)[0]


def test_export_refuses_before_reading_a_body_without_a_token(live_server: LiveServer) -> None:
    """A caller without a token gets 401 without the server reading (or waiting for) the
    400 MB body it announced: the body is read only after authentication."""
    status = _raw_post(
        live_server, "Content-Type: application/json\r\nContent-Length: 400000000\r\n", b"{"
    )
    assert status == "HTTP/1.1 401 Unauthorized"


def test_export_bodies_over_64_kib_get_413(live_server: LiveServer) -> None:
    """An admin's body is read up to 64 KiB: beyond, 413 (announced or streamed)."""
    auth = f"Authorization: Bearer {live_server.tokens['admin']}\r\n"
    announced = _raw_post(
        live_server, auth + "Content-Type: application/json\r\nContent-Length: 10000000\r\n", b"{"
    )
    assert announced == "HTTP/1.1 413 Request Entity Too Large"
    with live_server.client("admin") as c:
        big = c.post("/export", content=b'{"search_query": "' + b"a" * 70_000 + b'"}')
    assert big.status_code == 413
    assert "64" in big.json()["detail"] or "65536" in big.json()["detail"]
