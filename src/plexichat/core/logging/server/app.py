"""The standalone log server application (``plexichat-logs serve`` runs it with uvicorn)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.middleware.trustedhost import TrustedHostMiddleware

from . import ui
from .deps import STATE_KEY, Caller
from .origin_guard import OriginGuardMiddleware
from .router import PREFIX, router
from .state import ServerSettings, ServerState
from .token_mask import TokenQueryFilter, install_token_filter

if TYPE_CHECKING:
    from .._config.model import LoggingConfig

__all__ = ["LOOPBACK_HOSTS", "TokenQueryFilter", "create_app", "install_token_filter"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
"""The Host headers an ``insecure_no_auth`` server answers (anything else: 400)."""

_DESCRIPTION = """Search, tail and export the logs of a PlexiChat Logging directory.

Every route except `/api/v2/logs/health` needs `Authorization: Bearer <token>` (tokens from
`plexichat-logs token create --role viewer|security|admin`), this schema
(`/api/v2/logs/openapi.json`) included. The WebSocket `/api/v2/logs/stream` also takes the
subprotocol `bearer.<token>` or `?token=`.
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
    install_token_filter()

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
        # deny by default: the schema needs a token too, and FastAPI's /docs pages would
        # load third-party script from a CDN into a page where admins paste tokens
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    setattr(app.state, STATE_KEY, state)
    app.include_router(router)

    @app.get(PREFIX + "/openapi.json", include_in_schema=False)
    async def openapi_schema(_caller: Caller) -> JSONResponse:
        """The OpenAPI schema of the API (any role)."""
        return JSONResponse(app.openapi())

    if settings.insecure_no_auth:  # no token: at least no other site's page
        # a foreign Origin (cross-site form posts, text/plain fetches) gets 403; inside
        # TrustedHost, which refuses a rebound DNS name first
        app.add_middleware(OriginGuardMiddleware, state=state)
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(LOOPBACK_HOSTS))
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
