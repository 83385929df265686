"""The log server's API: REST and WebSocket endpoints under ``/api/v2/logs``.

Include :data:`router` in any FastAPI app, or run the standalone server made by
:func:`create_app` (``plexichat-logs serve`` does, with uvicorn)::

    from fastapi import FastAPI
    from plexichat.core.logging.log_api import router

    app = FastAPI()
    app.include_router(router)  # /api/v2/logs/entries, /stream, /ui, ...
"""

from __future__ import annotations

from .server.app import create_app
from .server.auth import ROLES, Principal, TokenStore
from .server.router import PREFIX, router
from .server.state import ServerSettings, ServerState

__all__ = [
    "PREFIX",
    "ROLES",
    "Principal",
    "ServerSettings",
    "ServerState",
    "TokenStore",
    "create_app",
    "router",
]
