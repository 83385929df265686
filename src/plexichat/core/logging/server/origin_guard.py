"""The middleware that keeps other sites' pages off an ``insecure_no_auth`` server's API.

Without tokens, the only thing between a web page the operator visits and the API is the
browser: a page of another origin can send "simple" requests (a form's POST, a
``text/plain`` fetch, an image's GET) that need no CORS preflight and carry no token anyway.
Browsers send ``Origin`` on every such cross-site request, so an HTTP request whose
``Origin`` is present and is neither the server's own origin nor one listed in
``cors_origins`` is refused with 403 before it reaches a route: the same rule as the live
tail's (:func:`.tail_guard.origin_refusal`), which answers WebSockets itself (4403).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from .state import ServerState
from .tail_guard import origin_refusal

__all__ = ["OriginGuardMiddleware"]


class OriginGuardMiddleware:
    """Refuse (403) HTTP requests from a page of a foreign origin; WebSockets pass (the
    stream checks their origin and says why it closes).

    Args:
        app: the application to protect.
        state: the server whose settings (``cors_origins``) list the origins allowed
            besides the server's own.
    """

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 403 for a foreign ``Origin``, else pass the request on."""
        if scope["type"] == "http":
            refusal = origin_refusal(self.state, HTTPConnection(scope))
            if refusal is not None:
                response = JSONResponse(
                    {"detail": f"{refusal} (this server runs without authentication)"},
                    status_code=403,
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
