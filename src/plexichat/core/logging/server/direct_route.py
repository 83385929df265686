"""A route class for the hot path: the caller's check without FastAPI's dependency solving.

FastAPI solves an endpoint's dependencies anew for every request (the sub-dependency
tree, the security scheme, an exit stack): ~40 us of a ~250 us ``GET /entries``. A
:class:`DirectRoute` is declared like any route, so its OpenAPI operation (the bearer
scheme, the parameters, the responses) comes from the same signature, but at request time
it calls :func:`.deps.authorize` itself and then the endpoint with ``(request, principal)``.

It does so only when that is exactly what FastAPI would do: the endpoint is
``async def f(request: Request, principal: Annotated[Principal, Depends(require(role))])``
and, as included (``include_router(..., dependencies=...)``, ``FastAPI(dependencies=...)``),
the route has no other dependency. Otherwise, and for a request while the app has
``dependency_overrides``, FastAPI's own handler serves it: a dependency is never skipped.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, cast

import fastapi.routing
from fastapi import Request, Response
from fastapi.routing import APIRoute

from .auth import Principal, Role
from .deps import Require, authorize, bearer_token

# FastAPI >= 0.16x builds an included route's handler with its effective context (the
# dependencies added where it is included); older versions copy included routes instead
_EFFECTIVE: ContextVar[Any] | None = getattr(fastapi.routing, "_effective_route_context_var", None)

__all__ = ["DirectRoute"]

Endpoint = Callable[[Request, Principal], Awaitable[Response]]


class DirectRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose endpoint is
    ``async def endpoint(request: Request, principal: <require(role)>) -> Response``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The request handler: authorize, then call the endpoint; FastAPI's own handler
        when the route (as included) is anything else."""
        standard = super().get_route_handler()
        effective: Any = self
        context = _EFFECTIVE.get() if _EFFECTIVE is not None else None
        if context is not None and getattr(context, "original_route", None) is self:
            effective = context
        role = _required_role(effective.dependant, self.endpoint)
        if role is None:
            return standard
        endpoint = cast(Endpoint, self.endpoint)
        provider = getattr(effective, "dependency_overrides_provider", None)

        async def handler(request: Request) -> Response:
            if provider is not None and getattr(provider, "dependency_overrides", None):
                return await standard(request)  # overrides apply: let FastAPI solve them
            principal = await authorize(request, bearer_token(request), role)
            return await endpoint(request, principal)

        return handler


def _required_role(dependant: Any, endpoint: Callable[..., Any]) -> Role | None:
    """The role the endpoint's one dependency requires, or None when the route has any
    other shape than ``(request, principal)`` (then FastAPI's handler serves it)."""
    if dependant is None:
        return None
    names = [p.name for p in (*dependant.path_params, *dependant.query_params)]
    names += [p.name for p in (*dependant.header_params, *dependant.cookie_params)]
    names += [p.name for p in dependant.body_params]
    deps = dependant.dependencies
    extras = (
        "websocket_param_name",
        "http_connection_param_name",
        "response_param_name",
        "background_tasks_param_name",
        "security_scopes_param_name",
    )
    if (
        names
        or len(deps) != 1
        or not isinstance(deps[0].call, Require)
        or dependant.request_param_name != "request"
        or not inspect.iscoroutinefunction(endpoint)
        or any(getattr(dependant, extra, None) is not None for extra in extras)
    ):
        return None
    role: Role = deps[0].call.role
    return role
