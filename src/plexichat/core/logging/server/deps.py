"""FastAPI dependencies shared by every route: the server state, the caller, the audit trail.

Deny by default: a request without a valid bearer token gets 401, a token whose role is too
low 403, a token over its rate limit 429 with ``Retry-After``. ``/health`` is the only route
without a token.
"""

from __future__ import annotations

import math
import threading
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from starlette.requests import HTTPConnection

from .._core.errors import error_reporter
from .auth import Principal, Role
from .state import ServerSettings, ServerState

__all__ = [
    "PREFIX",
    "Caller",
    "Require",
    "STATE_KEY",
    "State",
    "audit",
    "authenticate_websocket",
    "authorize",
    "bearer_token",
    "current_state",
    "get_state",
    "require",
    "websocket_token",
]

PREFIX = "/api/v2/logs"
"""The path under which every route of the API lives."""
STATE_KEY = "plexichat_logs"
_default_state: ServerState | None = None
_default_lock = threading.Lock()
_bearer = HTTPBearer(
    auto_error=False,
    description="An API token from `plexichat-logs token create` (roles viewer, security, admin).",
)


def get_state(conn: HTTPConnection) -> ServerState:
    """The server state of the app serving ``conn``.

    An app made by :func:`create_app` has its own; an app that only includes the router
    gets one for the active logging configuration, started on first use.
    """
    state = getattr(conn.app.state, STATE_KEY, None)
    if isinstance(state, ServerState):
        return state
    global _default_state
    with _default_lock:
        if _default_state is None:
            _default_state = ServerState(ServerSettings.from_config())
            _default_state.start()
        setattr(conn.app.state, STATE_KEY, _default_state)
        return _default_state


async def current_state(conn: HTTPConnection) -> ServerState:
    """:func:`get_state` as an ``async`` dependency: FastAPI runs it on the event loop
    instead of handing it to a worker thread (a plain ``def`` dependency costs a thread
    hop per request). Only the first call of an app that merely includes the router,
    which opens the store, goes to a worker thread."""
    state = getattr(conn.app.state, STATE_KEY, None)
    if isinstance(state, ServerState):
        return state
    return await run_in_threadpool(get_state, conn)


State = Annotated[ServerState, Depends(current_state)]
"""The server state of the request, as a route parameter type."""


def _no_tokens_detail() -> str:
    return (
        "this log server has no API tokens, so it refuses every request: create one with "
        "`plexichat-logs token create --role admin`, or set PLEXICHAT_LOG_API_TOKENS"
    )


def _identify(state: ServerState, token: str | None) -> Principal:
    """The caller a token names (or the anonymous admin of an insecure server).

    Raises:
        HTTPException: 401 for a missing, unknown or revoked token; 429 over the limit.
    """
    principal = state.tokens.authenticate(token) if token else None
    if principal is None and not token:
        principal = state.anonymous()
    if principal is None:
        if not state.tokens.has_tokens() and not state.settings.insecure_no_auth:
            detail = _no_tokens_detail()
        elif token:
            detail = "unknown or revoked API token: ask an admin for a valid one"
        else:
            detail = "missing API token: send the header Authorization: Bearer <token>"
        raise HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
    wait = state.limiter.check(principal.token_id)
    if wait > 0:
        raise HTTPException(
            429,
            f"rate limit of {state.limiter.per_minute} requests per minute exceeded for token "
            f"{principal.name!r}: retry after {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    return principal


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if the request has one
    (what :class:`fastapi.security.HTTPBearer` reads)."""
    scheme, token = get_authorization_scheme_param(conn.headers.get("authorization"))
    return token if token and scheme.lower() == "bearer" else None


async def authorize(conn: HTTPConnection, token: str | None, role: Role) -> Principal:
    """The caller ``token`` names, admitted when its role is at least ``role``.

    It is ``async`` so that FastAPI runs it on the event loop: the check (a hash, a
    dictionary lookup, the token file's mtime) needs no worker thread.

    Raises:
        HTTPException: 401 for a missing, unknown or revoked token, 403 for a role too
            low, 429 over the rate limit.
    """
    state = await current_state(conn)  # not a sub-dependency: one fewer to solve
    principal = _identify(state, token)
    if not principal.allows(role):
        raise HTTPException(
            403,
            f"token {principal.name!r} has role {principal.role!r}; this needs {role!r} "
            "or higher (viewer < security < admin)",
        )
    return principal


class Require:
    """The dependency that admits callers with at least ``role`` and returns them
    (made by :func:`require`); :class:`.direct_route.DirectRoute` reads its ``role``."""

    def __init__(self, role: Role) -> None:
        self.role: Role = role
        self.__name__ = f"require_{role}"

    async def __call__(
        self,
        conn: HTTPConnection,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        """The caller (see :func:`authorize`)."""
        return await authorize(conn, credentials.credentials if credentials else None, self.role)


def require(role: Role) -> Require:
    """A dependency that admits callers with at least ``role`` and returns them."""
    return Require(role)


Caller = Annotated[Principal, Depends(require("viewer"))]
"""Any authenticated caller (role viewer or higher)."""


SUBPROTOCOL = "plexichat-logs"
"""The WebSocket subprotocol the stream speaks; a browser offers it together with
``bearer.<token>`` (browsers cannot set headers on a WebSocket, and a token in the URL ends
up in access logs and proxies)."""
_BEARER_PROTOCOL = "bearer."


def subprotocol_token(ws: WebSocket) -> str | None:
    """The token a client offered as the subprotocol ``bearer.<token>``, if any."""
    for offered in ws.scope.get("subprotocols") or ():
        if isinstance(offered, str) and offered.startswith(_BEARER_PROTOCOL):
            return offered[len(_BEARER_PROTOCOL) :] or None
    return None


def accepted_subprotocol(ws: WebSocket) -> str | None:
    """:data:`SUBPROTOCOL` when the client offered it (it must be echoed), else None."""
    offered = ws.scope.get("subprotocols") or ()
    return SUBPROTOCOL if SUBPROTOCOL in offered else None


def websocket_token(ws: WebSocket) -> str | None:
    """The token a WebSocket offers: the ``Authorization`` header, the subprotocol
    ``bearer.<token>`` (offered with :data:`SUBPROTOCOL`: what browsers use) or
    ``?token=``, in that order."""
    return bearer_token(ws) or subprotocol_token(ws) or ws.query_params.get("token") or None


def authenticate_websocket(state: ServerState, ws: WebSocket) -> Principal | tuple[int, str]:
    """The caller of a WebSocket (its token from :func:`websocket_token`), or why not.

    Returns:
        The principal, or the close code (4401 no or bad token, 4429 rate limited) and the
        reason.
    """
    try:
        return _identify(state, websocket_token(ws))
    except HTTPException as exc:
        return (4429 if exc.status_code == 429 else 4401), str(exc.detail)


def audit(
    principal: Principal,
    action: str,
    resource: str,
    request: Request | WebSocket | None = None,
    outcome: str = "success",
    **details: Any,
) -> None:
    """Write one audit record of a read of security data or an export, naming the token."""
    from ..security.audit import get_audit_logger

    actor: dict[str, Any] = {"token_name": principal.name, "role": principal.role}
    if request is not None and request.client is not None:
        actor["ip_address"] = request.client.host
    try:
        get_audit_logger().log(
            actor, action, resource, outcome, details=details or None, always=True
        )
    except Exception as exc:  # noqa: BLE001 - auditing never breaks a request
        error_reporter.report("server-audit", f"could not audit {action} {resource}: {exc!r}")
