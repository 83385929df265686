"""A route class for the hot path: the caller's check without FastAPI's dependency solving.

FastAPI solves an endpoint's dependencies anew for every request (the sub-dependency
tree, the security scheme, an exit stack): ~40 us of a ~250 us ``GET /entries``. A
:class:`DirectRoute` is declared like any route, so its OpenAPI operation (the bearer
scheme, the parameters, the responses) comes from the same signature, but at request time
it calls :func:`.deps.authorize` itself and then the endpoint with ``(request, principal)``.

It accepts only endpoints it can serve exactly as FastAPI would: the signature
``(request: Request, principal: Annotated[Principal, Depends(require(role))])`` and
nothing else. Anything more (another dependency, a body, a path parameter) is refused
when the route is declared, so a dependency can never be skipped silently.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, cast

from fastapi import Request, Response
from fastapi.routing import APIRoute

from .auth import Principal
from .deps import Require, authorize, bearer_token

__all__ = ["DirectRoute"]

Endpoint = Callable[[Request, Principal], Awaitable[Response]]


class DirectRoute(APIRoute):
    """An :class:`~fastapi.routing.APIRoute` whose endpoint is
    ``async def endpoint(request: Request, principal: <require(role)>) -> Response``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The request handler: authorize, then call the endpoint.

        Raises:
            TypeError: the endpoint has another signature than the one above.
        """
        role = _required_role(self)
        endpoint = cast(Endpoint, self.endpoint)

        async def handler(request: Request) -> Response:
            principal = await authorize(request, bearer_token(request), role)
            return await endpoint(request, principal)

        return handler


def _required_role(route: APIRoute) -> Any:
    """The role the endpoint's one dependency requires.

    Raises:
        TypeError: the endpoint is not ``(request, principal)`` as described above.
    """
    dependant = route.dependant
    names = [p.name for p in (*dependant.path_params, *dependant.query_params)]
    names += [p.name for p in (*dependant.header_params, *dependant.cookie_params)]
    names += [p.name for p in dependant.body_params]
    deps = dependant.dependencies
    if (
        names
        or len(deps) != 1
        or not isinstance(deps[0].call, Require)
        or dependant.request_param_name != "request"
        or not inspect.iscoroutinefunction(route.endpoint)
        or any(
            getattr(dependant, extra) is not None
            for extra in (
                "websocket_param_name",
                "http_connection_param_name",
                "response_param_name",
                "background_tasks_param_name",
                "security_scopes_param_name",
            )
        )
    ):
        raise TypeError(
            f"DirectRoute {route.path!r}: the endpoint must be `async def "
            "f(request: Request, principal: Annotated[Principal, Depends(require(role))])` "
            "and declare nothing else; declare other routes with APIRoute"
        )
    return deps[0].call.role
