"""The API router: every REST and WebSocket route under ``/api/v2/logs``."""

from __future__ import annotations

from fastapi import APIRouter

from . import (
    routes_admin,
    routes_entries,
    routes_export,
    routes_metrics,
    routes_security,
    stream,
    ui,
)

__all__ = ["PREFIX", "router"]

PREFIX = "/api/v2/logs"

router = APIRouter(prefix=PREFIX)
"""Include it in any FastAPI app: ``app.include_router(router)``."""

for _module in (
    routes_entries,
    routes_security,
    routes_metrics,
    routes_export,
    routes_admin,
    stream,
    ui,
):
    router.include_router(_module.router)
