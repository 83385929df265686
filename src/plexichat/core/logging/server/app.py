"""The standalone log server application (``plexichat-logs serve`` runs it with uvicorn)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from . import ui
from .deps import STATE_KEY
from .router import router
from .state import ServerSettings, ServerState

if TYPE_CHECKING:
    from .._config.model import LoggingConfig

__all__ = ["create_app"]

_DESCRIPTION = """Search, tail and export the logs of a PlexiChat Logging directory.

Every route except `/api/v2/logs/health` needs `Authorization: Bearer <token>` (tokens from
`plexichat-logs token create --role viewer|security|admin`). The WebSocket
`/api/v2/logs/stream` also takes `?token=`.
"""


def create_app(config: LoggingConfig | ServerSettings | None = None, **overrides: Any) -> FastAPI:
    """The log server as a FastAPI app: API under ``/api/v2/logs``, web viewer at ``/``.

    Args:
        config: a logging configuration (its directory, store, API tokens, CORS origins and
            rate limit are used; default: the active configuration) or full
            :class:`ServerSettings`.
        **overrides: :class:`ServerSettings` fields, e.g. ``directory="logs"``,
            ``insecure_no_auth=True``.

    Example:
        >>> from plexichat.core.logging.log_api import create_app
        >>> app = create_app(directory="logs")  # doctest: +SKIP
        >>> # uvicorn.run(app, host="127.0.0.1", port=8000)
    """
    if isinstance(config, ServerSettings):
        settings = config
        for key, value in overrides.items():
            setattr(settings, key, value)
        settings.__post_init__()
    else:
        settings = ServerSettings.from_config(config, **overrides)
    state = ServerState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.close()

    from .. import __version__

    app = FastAPI(
        title="PlexiChat Logging",
        version=__version__,
        description=_DESCRIPTION,
        lifespan=lifespan,
    )
    setattr(app.state, STATE_KEY, state)
    app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    ui.mount_root(app)
    return app
