"""What the live tail checks before and while it serves a connection.

- :func:`origin_refusal`: a browser page of another origin may not open the live tail
  (WebSockets ignore the same-origin policy; without this check every website the
  operator visits could read an ``insecure_no_auth`` server's logs). Allowed: no ``Origin``
  header (non-browser clients), the server's own origin (the request's scheme and ``Host``;
  ``https`` is also accepted on a plain ``ws`` connection, for a TLS-terminating proxy),
  and the ``cors_origins`` setting (``api_cors_origins``,
  ``PLEXICHAT_LOG_API_CORS_ORIGINS``). ``"*"`` there admits any origin, except on an
  ``insecure_no_auth`` server, whose origins must be listed one by one.
- :class:`ConnectionLimits`: at most :data:`MAX_CONNECTIONS` live tails per server and
  :data:`MAX_CONNECTIONS_PER_TOKEN` per token (module constants: the settings have no
  field for them); beyond, the connection closes with 4429.
- :func:`check_resume_id`: a resume cursor's row id and time must be 64-bit values (cursors
  are not keyed: they can be forged).
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from .auth import Principal
from .state import ServerState

__all__ = [
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_TOKEN",
    "ConnectionLimits",
    "check_resume_id",
    "connection_limits",
    "origin_refusal",
    "token_file_mark",
]

MAX_CONNECTIONS = 500
"""Live-tail connections one server holds at once; more close with 4429."""
MAX_CONNECTIONS_PER_TOKEN = 20
"""Live-tail connections of one token at once (the anonymous caller of an
``insecure_no_auth`` server counts as one token); more close with 4429."""
LIMITS_KEY = "live_tail_limits"
_MAX_ID = 2**63 - 1
_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _origin(scheme: str, host: str) -> str:
    """``scheme://host[:port]`` lower-cased, without the scheme's default port."""
    scheme, host = scheme.lower(), host.lower().rstrip(".")
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and host.endswith(f":{default}"):
        host = host[: -len(default) - 1]
    return f"{scheme}://{host}"


def origin_refusal(state: ServerState, conn: HTTPConnection) -> str | None:
    """Why the ``Origin`` of ``conn`` may not open the live tail (or, on an
    ``insecure_no_auth`` server, call the API: see :mod:`.origin_guard`), or None when it
    may."""
    offered = conn.headers.get("origin")
    if offered is None:
        return None  # not a browser: browsers always send Origin on a WebSocket
    parts = urlsplit(offered.strip())
    allowed: set[str] = set()
    host = conn.headers.get("host")
    if host:
        secure = conn.scope.get("scheme") in ("wss", "https")
        allowed.add(_origin("https", host))
        if not secure:
            allowed.add(_origin("http", host))
    settings = state.settings
    listed = [o.strip().rstrip("/") for o in settings.cors_origins]
    if "*" in listed and not settings.insecure_no_auth:
        return None
    allowed.update(_origin(*o.split("://", 1)) for o in listed if "://" in o)
    if parts.scheme and parts.netloc and _origin(parts.scheme, parts.netloc) in allowed:
        return None
    shown = offered[:200]
    return (
        f"origin {shown!r} refused: list it in api_cors_origins (PLEXICHAT_LOG_API_CORS_ORIGINS)"
        " to allow it; pages of this server's own origin are always allowed"
    )


class ConnectionLimits:
    """Live-tail connections open per server and per token (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.per_token: dict[str, int] = {}

    def acquire(self, caller: Principal) -> str | None:
        """Count a new connection of ``caller``; the reason it is refused, or None."""
        with self._lock:
            if self.total >= MAX_CONNECTIONS:
                return (
                    f"too many live tails: this server serves {MAX_CONNECTIONS} at once; "
                    "retry later"
                )
            mine = self.per_token.get(caller.token_id, 0)
            if mine >= MAX_CONNECTIONS_PER_TOKEN:
                return (
                    f"token {caller.name!r} has {mine} live tails open, the most allowed: "
                    "close one and retry"
                )
            self.total += 1
            self.per_token[caller.token_id] = mine + 1
            return None

    def release(self, caller: Principal) -> None:
        """Forget one connection of ``caller`` (counted by :meth:`acquire`)."""
        with self._lock:
            self.total -= 1
            left = self.per_token.get(caller.token_id, 1) - 1
            if left > 0:
                self.per_token[caller.token_id] = left
            else:
                self.per_token.pop(caller.token_id, None)


def connection_limits(state: ServerState) -> ConnectionLimits:
    """The connection counts of the server ``state``."""
    limits = state.extras.get(LIMITS_KEY)
    if isinstance(limits, ConnectionLimits):
        return limits
    made = ConnectionLimits()
    found = state.extras.setdefault(LIMITS_KEY, made)  # atomic: one per server
    return found if isinstance(found, ConnectionLimits) else made


def check_resume_id(ts: int, row_id: int) -> str | None:
    """Why a resume cursor's ``(ts, row_id)`` is refused, or None."""
    if not 0 <= row_id <= _MAX_ID:
        return f"after: the cursor's row id {row_id} is out of range 0..{_MAX_ID}"
    if not -_MAX_ID - 1 <= ts <= _MAX_ID:
        return f"after: the cursor's time {ts} is out of range"
    return None


def token_file_mark(path: Path | None) -> tuple[int, int, int] | None:
    """What changes when the token file at ``path`` is rewritten (None: no file)."""
    if path is None:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino, st.st_size
