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
from .deps import PREFIX

__all__ = ["PREFIX", "router"]

router = APIRouter(prefix=PREFIX)
"""Include it in any FastAPI app: ``app.include_router(router)``."""

# Each module's router carries the prefix itself, and their routes are listed here directly
# rather than through ``include_router``: FastAPI resolves an included router's routes on
# every request (~5 us per level), and this router is included once more by the app.
for _module in (
    routes_entries,
    routes_security,
    routes_metrics,
    routes_export,
    routes_admin,
    stream,
    ui,
):
    router.routes.extend(_module.router.routes)
