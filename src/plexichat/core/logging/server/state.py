"""What one log server holds: its settings, the store, the tokens and the indexer thread.

One :class:`ServerState` serves one log directory. :func:`create_app` makes one and keeps
it in ``app.state.plexichat_logs``; the shared :data:`~..router` included in any other
FastAPI app finds it there, or builds the default one from the active logging
configuration on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core.errors import ConfigError, error_reporter
from ..store.base import LogStore, StoredRecord, open_store
from ..store.indexer import Indexer, IndexReport
from .auth import Principal, RateLimiter, TokenStore

if TYPE_CHECKING:
    from .._config.model import LoggingConfig

__all__ = ["ServerSettings", "ServerState"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class ServerSettings:
    """How a log server runs.

    Args:
        directory: the log directory it serves (and indexes).
        store_url: its store (default: the embedded SQLite store in ``directory``).
        insecure_no_auth: serve every request as an anonymous admin; only with a loopback
            ``host`` (refused otherwise).
        host: the address the server binds to (checked against ``insecure_no_auth``).
        demo: the ``make run`` demo (an admin token is created and printed).
        cors_origins: origins a browser may call the API from; empty: CORS off.
        rate_limit: requests per minute per token; 0: no limit.
        api_tokens: ``"TOKEN:ROLE,..."`` bootstrap tokens (``PLEXICHAT_LOG_API_TOKENS``).
        run_indexer: index the directory in a background thread (off: the store is filled
            by someone else, e.g. ``plexichat-logs index`` on each host).
        index_interval: seconds between two indexer passes.
        heartbeat_seconds: seconds between two WebSocket heartbeats.
        client_queue: records buffered per live-tail client before it gets ``dropped``.
    """

    directory: Path
    store_url: str | None = None
    insecure_no_auth: bool = False
    host: str = "127.0.0.1"
    demo: bool = False
    cors_origins: list[str] = field(default_factory=list)
    rate_limit: int = 600
    api_tokens: str | None = None
    run_indexer: bool = True
    index_interval: float = 0.05
    heartbeat_seconds: float = 15.0
    client_queue: int = 1000

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        if self.insecure_no_auth and self.host not in LOOPBACK:
            raise ConfigError(
                f"--insecure-no-auth serves every request without a token, so it is only "
                f"allowed on a loopback address, not {self.host!r}: bind to 127.0.0.1 or "
                "create tokens with `plexichat-logs token create`"
            )
        if self.index_interval <= 0 or self.heartbeat_seconds <= 0 or self.client_queue < 1:
            raise ConfigError(
                "index_interval and heartbeat_seconds must be > 0 and client_queue >= 1, got "
                f"{self.index_interval!r}, {self.heartbeat_seconds!r}, {self.client_queue!r}"
            )

    @classmethod
    def from_config(cls, config: LoggingConfig | None = None, **overrides: Any) -> ServerSettings:
        """Settings from a logging configuration (default: the active one) and overrides."""
        if config is None:
            from ..config import get_logging_config

            config = get_logging_config()
        values: dict[str, Any] = {
            "directory": config.directory,
            "store_url": config.effective_store_url,
            "cors_origins": list(config.api_cors_origins),
            "rate_limit": config.api_rate_limit,
            "api_tokens": (
                config.api_tokens.get_secret_value() if config.api_tokens is not None else None
            ),
        }
        values.update(overrides)
        return cls(**values)

    @property
    def effective_store_url(self) -> str:
        """``store_url`` or the embedded store of ``directory``."""
        from .._config.model import embedded_store_url

        return self.store_url or embedded_store_url(self.directory)


class ServerState:
    """The running parts of one log server.

    ``start()`` opens the store and starts the indexer thread; ``close()`` stops them.
    Listeners added with :meth:`add_listener` are called (in the indexer thread) after
    every pass that stored new records: the live tail wakes up there.
    """

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.tokens = TokenStore.for_directory(settings.directory, settings.api_tokens)
        self.limiter = RateLimiter(settings.rate_limit)
        self._store: LogStore | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listeners: list[Callable[[list[StoredRecord]], None]] = []
        self._closers: list[Callable[[], None]] = []
        self.last_index: IndexReport | None = None
        self.extras: dict[str, Any] = {}
        """Per-server objects of other modules (the live-tail hub, the last report)."""

    @property
    def store(self) -> LogStore:
        """The store, opened on first use."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.settings.effective_store_url)
            return self._store

    def anonymous(self) -> Principal | None:
        """The caller used without a token: an admin with ``insecure_no_auth``, else None."""
        if self.settings.insecure_no_auth:
            return Principal(name="anonymous (insecure-no-auth)", role="admin", token_id="-")
        return None

    def add_listener(self, listener: Callable[[list[StoredRecord]], None]) -> None:
        """Call ``listener`` with each batch of records the indexer stores."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[list[StoredRecord]], None]) -> None:
        """Stop calling ``listener`` (no error when it was not added)."""
        with suppress(ValueError):
            self._listeners.remove(listener)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the server closes (before the store is closed)."""
        self._closers.append(closer)

    def start(self) -> None:
        """Open the store and start the indexer thread (idempotent)."""
        _ = self.store
        if not self.settings.run_indexer or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._index_loop, name="plexichat-log-indexer", daemon=True
        )
        self._thread.start()

    def _on_records(self, batch: list[StoredRecord]) -> None:
        for listener in list(self._listeners):
            try:
                listener(batch)
            except Exception as exc:  # noqa: BLE001 - a listener never stops the indexer
                error_reporter.report("server-listener", f"live-tail listener failed: {exc!r}")

    def _index_loop(self) -> None:
        indexer = Indexer(self.settings.directory, self.store, on_records=self._on_records)
        while not self._stop.is_set():
            try:
                self.last_index = indexer.run_once()
            except Exception as exc:  # noqa: BLE001 - the indexer retries at the next pass
                error_reporter.report("server-indexer", f"indexer pass failed: {exc!r}")
            self._stop.wait(self.settings.index_interval)

    def close(self) -> None:
        """Stop the indexer thread and close the store."""
        self._stop.set()
        for closer in reversed(self._closers):
            try:
                closer()
            except Exception as exc:  # noqa: BLE001 - close the rest regardless
                error_reporter.report("server-close", f"closing a server part failed: {exc!r}")
        self._closers.clear()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
