"""The standalone app's own defences: the schema behind a token, no CDN-loaded docs pages,
loopback Host names only without authentication."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
from websockets.sync.client import connect

from plexichat.core.logging import configure_logging
from plexichat.core.logging.log_api import ServerSettings, create_app
from plexichat.core.logging.store.base import LogQuery
from tests.integrations.servers import serve_asgi
from tests.server.conftest import LiveServer


def test_schema_needs_a_token_and_docs_pages_are_off(live_server: LiveServer) -> None:
    """/api/v2/logs/openapi.json answers any role, nobody without a token; FastAPI's /docs,
    /redoc and /openapi.json (which load script from a CDN) are not served."""
    with live_server.client(None) as anonymous:
        assert anonymous.get("/openapi.json").status_code == 401
    with live_server.client("viewer") as viewer:
        schema = viewer.get("/openapi.json")
    assert schema.status_code == 200
    assert "/api/v2/logs/entries" in schema.json()["paths"]
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(live_server.url + path, timeout=30).status_code == 404, path


def test_insecure_server_answers_loopback_host_names_only(tmp_path: Path) -> None:
    """--insecure-no-auth: a page of another site that rebinds its name to 127.0.0.1 sends
    its own Host header and is refused; loopback names are served."""
    app = create_app(ServerSettings(directory=tmp_path, insecure_no_auth=True, run_indexer=False))
    with serve_asgi(app, lifespan="on") as url:
        port = url.rsplit(":", 1)[1]
        api = url + "/api/v2/logs/stats"
        assert httpx.get(api, timeout=30).status_code == 200
        for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
            assert httpx.get(api, headers={"Host": host}, timeout=30).status_code == 200
        evil = httpx.get(api, headers={"Host": f"evil.example:{port}"}, timeout=30)
        assert evil.status_code == 400


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10"])
def test_insecure_mode_is_refused_off_loopback(tmp_path: Path, host: str) -> None:
    """create_app refuses insecure_no_auth on an address other hosts can reach."""
    with pytest.raises(ValueError, match="only allowed on a loopback address"):
        create_app(directory=tmp_path, insecure_no_auth=True, host=host)


def test_a_token_in_a_websocket_url_never_reaches_the_logs(live_server: LiveServer) -> None:
    """uvicorn logs each WebSocket request line; with redaction off too, the token in
    ``?token=`` is masked before the record is written (the server indexes its own logs, so
    a viewer could otherwise search for an admin's token)."""
    configure_logging(
        directory=live_server.directory, console_enabled=False, redaction_enabled=False
    )
    token = live_server.tokens["admin"]
    with connect(f"{live_server.ws}/stream?level=INFO&token={token}", proxy=None) as ws:
        assert orjson.loads(ws.recv(timeout=30))["type"] == "subscribed"
    query = LogQuery(loggers=("uvicorn.error",), search="WebSocket")
    live_server.wait_for(1, query)
    lines = [e["message"] for e in live_server.state.store.query(query).entries]
    assert any("token=[REDACTED]" in line for line in lines), lines
    everything = b"".join(p.read_bytes() for p in live_server.directory.glob("*.jsonl"))
    assert token.encode() not in everything
