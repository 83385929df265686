"""A real log server for the server tests: uvicorn on loopback, one token per role.

``live_server`` serves a fresh log directory that this process also logs into (console off),
so a test logs with ``get_logger`` and reads the records back through the API once the
server's indexer has stored them (``live.wait_for``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from plexichat.core.logging import configure_logging, flush_logging
from plexichat.core.logging.log_api import ServerSettings, ServerState, create_app
from plexichat.core.logging.server.auth import ROLES, TokenStore
from plexichat.core.logging.server.deps import STATE_KEY
from plexichat.core.logging.store.base import LogQuery
from tests.integrations.servers import serve_asgi

API = "/api/v2/logs"


@dataclass
class LiveServer:
    """A running log server and what a test needs to talk to it."""

    url: str
    directory: Path
    state: ServerState
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        """The API's base URL (``http://127.0.0.1:PORT/api/v2/logs``)."""
        return self.url + API

    @property
    def ws(self) -> str:
        """The WebSocket base URL (``ws://127.0.0.1:PORT/api/v2/logs``)."""
        return "ws" + self.api[len("http") :]

    def client(self, role: str | None = "admin", **kwargs: Any) -> httpx.Client:
        """An httpx client for the API, with the token of ``role`` (None: no token)."""
        headers = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.Client(base_url=self.api, headers=headers, timeout=30, **kwargs)

    def wait_for(self, count: int, query: LogQuery | None = None, timeout: float = 15.0) -> int:
        """Flush the logging pipeline and wait until the store holds ``count`` records
        matching ``query``; returns the count (fails the test on timeout)."""
        flush_logging()
        query = query or LogQuery()
        deadline = time.monotonic() + timeout
        while True:
            found = self.state.store.count(query)
            if found >= count:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"only {found} of {count} records indexed after {timeout} s")
            time.sleep(0.05)


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """ServerSettings overrides for ``live_server`` (a test module may override this)."""
    return {}


@pytest.fixture
def live_server(tmp_path: Path, server_settings: dict[str, Any]) -> Iterator[LiveServer]:
    """A log server on a free loopback port over ``tmp_path/logs``, tokens for every role."""
    directory = tmp_path / "logs"
    configure_logging(directory=directory, console_enabled=False, level="DEBUG")
    store = TokenStore.for_directory(directory)
    tokens: dict[str, str] = {r: store.create(r, name=f"test-{r}")[0] for r in ROLES}
    settings = ServerSettings(
        directory=directory,
        index_interval=0.05,
        **{"heartbeat_seconds": 30.0, **server_settings},
    )
    app = create_app(settings)
    with serve_asgi(app, lifespan="on") as url:
        yield LiveServer(
            url=url, directory=directory, state=getattr(app.state, STATE_KEY), tokens=tokens
        )
