"""Findings of a security audit of the log server, each pinned by a test: a token in a
percent-encoded URL key, unaudited /stats reads, too many equality filters, long asset names,
deeply nested bodies and filters, cross-site requests to an insecure server, unknown
/security/events parameters."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from plexichat.core.logging import configure_logging
from plexichat.core.logging.log_api import ServerSettings, create_app
from plexichat.core.logging.server import ui
from plexichat.core.logging.server.params import MAX_WHERE
from plexichat.core.logging.server.routes_export import MAX_BODY_DEPTH
from plexichat.core.logging.server.token_mask import TokenQueryFilter, mask_query_tokens
from plexichat.core.logging.store.base import LogQuery
from tests.integrations.servers import serve_asgi
from tests.server.conftest import LiveServer

TIMEOUT = 30.0


def _recv(ws: Connection) -> dict[str, Any]:
    message: dict[str, Any] = orjson.loads(ws.recv(timeout=TIMEOUT))
    return message


def _reply(ws: Connection) -> dict[str, Any]:
    """The next message that is not a live entry or heartbeat."""
    while True:
        message = _recv(ws)
        if message["type"] not in ("entry", "heartbeat", "dropped"):
            return message


def _detail(response: httpx.Response) -> tuple[list[Any], str]:
    """The ``loc`` and ``msg`` of a 422 answer's only error."""
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    return error["loc"], error["msg"]


# --- 1. tokens in URLs ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "whole", "expected"),
    [
        ("/s?%74oken=abc&level=INFO", True, "/s?%74oken=[REDACTED]&level=INFO"),
        ("/s?level=INFO&tok%65n=abc", True, "/s?level=INFO&tok%65n=[REDACTED]"),
        ("/s?%2574oken=abc", True, "/s?%2574oken=[REDACTED]"),
        ("/s?TOKEN=abc&Access_Token=def", True, "/s?TOKEN=[REDACTED]&Access_Token=[REDACTED]"),
        (
            '1.2.3.4 - "WebSocket /s?%74oken=abc" 403',
            False,
            '1.2.3.4 - "WebSocket /s?%74oken=[REDACTED]" 403',
        ),
        (
            '"GET /e?a=1&%54OKEN=x&b=2 HTTP/1.1" 200',
            False,
            '"GET /e?a=1&%54OKEN=[REDACTED]&b=2 HTTP/1.1" 200',
        ),
    ],
)
def test_token_parameters_are_masked_whatever_their_encoding(
    text: str, whole: bool, expected: str
) -> None:
    """Every parameter whose decoded name holds "token" is masked, the rest is kept."""
    assert mask_query_tokens(text, whole=whole) == expected


def test_the_filter_masks_uvicorn_request_line_arguments() -> None:
    """uvicorn passes the path with its raw query string as an argument: masked."""
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/v2/logs/stream?%74oken=plx_secret"),
        None,
    )
    assert TokenQueryFilter().filter(record)
    assert "plx_secret" not in record.getMessage()
    assert "%74oken=[REDACTED]" in record.getMessage()


def test_a_percent_encoded_token_key_never_reaches_the_logs(live_server: LiveServer) -> None:
    """Starlette decodes ``?%74oken=`` to ``token`` and admits the admin; uvicorn's request
    line holds the raw key, and the token is masked there all the same (redaction off), so
    no viewer can read it back from the store or the files."""
    configure_logging(
        directory=live_server.directory, console_enabled=False, redaction_enabled=False
    )
    token = live_server.tokens["admin"]
    for key in ("%74oken", "tok%65n"):
        with connect(f"{live_server.ws}/stream?{key}={token}", proxy=None) as ws:
            hello = _recv(ws)
            assert hello["type"] == "subscribed"
            assert hello["role"] == "admin"
    query = LogQuery(loggers=("uvicorn.error",), search="WebSocket")
    live_server.wait_for(2, query)
    lines = [e["message"] for e in live_server.state.store.query(query).entries]
    assert any("%74oken=[REDACTED]" in line for line in lines), lines
    assert any("tok%65n=[REDACTED]" in line for line in lines), lines
    everything = LogQuery(limit=1000)
    assert all(
        token not in orjson.dumps(e).decode()
        for e in live_server.state.store.query(everything).entries
    )
    for path in live_server.directory.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


# --- 2. /stats is audited for the security roles --------------------------------------------
def test_stats_reads_of_the_security_roles_are_audited(live_server: LiveServer) -> None:
    """/stats shows security and audit records' patterns and counts to security and admin
    callers: each such read writes an audit record; the viewer's (which holds none) not."""
    for role in ("viewer", "security", "admin"):
        with live_server.client(role) as c:
            assert c.get("/stats", params={"window": 3600}).status_code == 200
    query = LogQuery(categories=("audit",), where=(("metadata.resource", "stats"),))
    live_server.wait_for(2, query)
    records = live_server.state.store.query(query).entries
    roles = sorted(r["metadata"]["actor"]["role"] for r in records)
    assert roles == ["admin", "security"]
    for record in records:
        meta = record["metadata"]
        assert meta["action"] == "read"
        assert meta["details"]["window"] == 3600
        assert meta["details"]["token_name"] == f"test-{meta['actor']['role']}"


# --- 3. the number of equality filters ------------------------------------------------------
def test_entries_refuses_more_equality_filters_than_the_limit(live_server: LiveServer) -> None:
    """33 or 1000 ``context.NAME`` filters: 422 naming the limit (not the database's
    "Expression tree is too large" as a 500); 32 are served."""
    with live_server.client("viewer") as c:
        ok = c.get("/entries", params=[(f"context.k{i}", "v") for i in range(MAX_WHERE)])
        assert ok.status_code == 200, ok.text
        for n in (MAX_WHERE + 1, 1000):
            loc, msg = _detail(c.get("/entries", params=[(f"context.k{i}", "v") for i in range(n)]))
            assert loc == ["query", f"context.k{MAX_WHERE}"]
            assert f"{n} equality filters" in msg
            assert f"the limit is {MAX_WHERE}" in msg


def test_export_refuses_more_equality_filters_than_the_limit(live_server: LiveServer) -> None:
    """An export's ``where`` with more than the limit: 422 on ``body.where``."""
    where = {f"context.k{i}": "v" for i in range(1000)}
    with live_server.client("admin") as c:
        loc, msg = _detail(c.post("/export", json={"where": where}))
        ok = c.post("/export", json={"where": dict(list(where.items())[:MAX_WHERE])})
    assert loc == ["body", "where"]
    assert f"the limit is {MAX_WHERE}" in msg
    assert ok.status_code == 200, ok.text


def test_the_live_tail_refuses_more_equality_filters_than_the_limit(
    live_server: LiveServer,
) -> None:
    """In the URL: an error message and close 4400; in ``update_filter``: an error reply,
    the connection and its previous filter stay."""
    token = live_server.tokens["viewer"]
    many = "&".join(f"context.k{i}=v" for i in range(MAX_WHERE + 1))
    with connect(f"{live_server.ws}/stream?{many}&token={token}", proxy=None) as ws:
        error = _recv(ws)
        assert error["type"] == "error"
        assert error["code"] == 4400
        assert f"the limit is {MAX_WHERE}" in error["error"]
    with connect(f"{live_server.ws}/stream?token={token}", proxy=None) as ws:
        assert _recv(ws)["type"] == "subscribed"
        where = {f"context.k{i}": "v" for i in range(1000)}
        ws.send(orjson.dumps({"type": "update_filter", "filter": where}).decode())
        error = _reply(ws)
        assert error["type"] == "error"
        assert error["field"] == f"context.k{MAX_WHERE}"
        assert f"the limit is {MAX_WHERE}" in error["error"]
        ws.send('{"type": "ping"}')
        assert _reply(ws) == {"type": "pong"}


# --- 4. asset names -------------------------------------------------------------------------
def test_an_overlong_asset_name_is_a_404(live_server: LiveServer) -> None:
    """A name longer than the file system allows is no asset (it was an OSError: 500)."""
    assert ui._asset("x" * 300 + ".js") is None
    response = httpx.get(f"{live_server.api}/ui/static/{'x' * 300}.js", timeout=TIMEOUT)
    assert response.status_code == 404
    assert httpx.get(f"{live_server.api}/ui/static/viewer.js", timeout=TIMEOUT).status_code == 200


# --- 5. deeply nested export bodies ---------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b'{"where":' + b"[" * 990 + b"]" * 990 + b"}",
        b'{"where": {"context.a": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}}",
        b"[" * 5000 + b"]" * 5000,
        b"[" * 30000,
    ],
    ids=["where-990", "objects-200", "arrays-5000", "unclosed-30000"],
)
def test_deeply_nested_export_bodies_get_400(live_server: LiveServer, body: bytes) -> None:
    """Nesting past the limit (or the interpreter's stack) is a 400 saying so, not a 500."""
    with live_server.client("admin") as c:
        response = c.post("/export", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert f"nested more than {MAX_BODY_DEPTH} levels" in response.json()["detail"]


# --- 6. deeply nested live-tail filters -----------------------------------------------------
def test_a_deeply_nested_filter_update_gets_an_error_reply(live_server: LiveServer) -> None:
    """``update_filter`` with a 990-deep array: the documented error reply, and the
    connection stays (it was dropped by a RecursionError)."""
    with connect(f"{live_server.ws}/stream?token={live_server.tokens['viewer']}", proxy=None) as ws:
        assert _recv(ws)["type"] == "subscribed"
        ws.send('{"type": "update_filter", "filter": ' + "[" * 990 + "]" * 990 + "}")
        error = _reply(ws)
        assert error["type"] == "error"
        assert error["field"] == "filter"
        assert "got an array, expected an object" in error["error"]
        ws.send('{"type": "update_filter", "filter": {"level": "ERROR"}}')
        assert _reply(ws) == {"type": "filter_updated", "filter": {"level": "ERROR"}}


# --- 7. cross-site requests -----------------------------------------------------------------
@pytest.fixture
def insecure_url(tmp_path: Path) -> Iterator[str]:
    """An ``insecure_no_auth`` server's base URL."""
    app = create_app(ServerSettings(directory=tmp_path, insecure_no_auth=True, run_indexer=False))
    with serve_asgi(app, lifespan="on") as url:
        yield url


def test_an_insecure_server_refuses_other_origins(insecure_url: str) -> None:
    """Without tokens, a page of another site (its ``Origin``) gets 403 on every route,
    form-like posts included; the server's own pages and non-browser clients are served."""
    api = insecure_url + "/api/v2/logs"
    evil = {"Origin": "https://evil.example"}
    post = httpx.post(
        api + "/export",
        content=b'{"format":"csv"}',
        headers={**evil, "Content-Type": "text/plain;charset=UTF-8"},
        timeout=TIMEOUT,
    )
    assert post.status_code == 403
    assert "'https://evil.example' refused" in post.json()["detail"]
    refused = httpx.get(
        api + "/integrity", params={"refresh": "true"}, headers=evil, timeout=TIMEOUT
    )
    assert refused.status_code == 403
    for origin in ("null", "http://127.0.0.1.evil.example"):
        assert (
            httpx.get(api + "/stats", headers={"Origin": origin}, timeout=TIMEOUT).status_code
            == 403
        )
    own = {"Origin": insecure_url}
    assert httpx.get(api + "/stats", headers=own, timeout=TIMEOUT).status_code == 200
    assert httpx.get(api + "/stats", timeout=TIMEOUT).status_code == 200
    exported = httpx.post(api + "/export", json={"format": "csv"}, headers=own, timeout=TIMEOUT)
    assert exported.status_code == 200


@pytest.mark.parametrize(
    "content_type",
    ["text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data", None],
)
def test_export_needs_a_json_content_type(
    live_server: LiveServer, content_type: str | None
) -> None:
    """A body not sent as ``application/json`` (what a cross-site form or simple fetch
    sends) gets 415 naming the type allowed; JSON with a charset, and no body, are served."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    with live_server.client("admin") as c:
        response = c.post("/export", content=b'{"format": "csv"}', headers=headers)
        assert response.status_code == 415
        assert "application/json" in response.json()["detail"]
        charset = {"Content-Type": "application/json; charset=utf-8"}
        assert c.post("/export", content=b'{"format": "csv"}', headers=charset).status_code == 200
        assert c.post("/export").status_code == 200


# --- /security/events parameters ------------------------------------------------------------
def test_security_events_refuses_unknown_parameters(live_server: LiveServer) -> None:
    """An unknown parameter is a 422 naming the allowed ones (it was ignored: every event
    came back unfiltered); every documented parameter is still accepted."""
    with live_server.client("security") as c:
        loc, msg = _detail(c.get("/security/events", params={"context.session_id": "x"}))
        assert loc == ["query", "context.session_id"]
        assert "unknown parameter" in msg
        assert "severity" in msg
        assert "ip_address" in msg
        operation = c.get("/openapi.json").json()["paths"]["/api/v2/logs/security/events"]["get"]
        documented = {p["name"] for p in operation["parameters"]}
        params: dict[str, str | int] = {
            "severity": "HIGH",
            "event_type": "login_failure",
            "user_id": "u",
            "ip_address": "10.0.0.1",
            "search_query": "x",
            "start_time": "2024-01-01T00:00:00Z",
            "end_time": "2099-01-01T00:00:00Z",
            "limit": 5,
            "order": "asc",
        }
        assert documented == {*params, "cursor"}
        assert c.get("/security/events", params=params).status_code == 200
