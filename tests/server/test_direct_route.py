"""DirectRoute: the hot path's caller check without FastAPI's dependency solving.

It must admit and refuse exactly as the ``require(role)`` dependency does, keep the route
documented as any other, and refuse, when declared, an endpoint it could not serve
faithfully (a skipped dependency would be a skipped check).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from plexichat.core.logging.log_api import ServerSettings, ServerState
from plexichat.core.logging.server.auth import Principal
from plexichat.core.logging.server.deps import STATE_KEY, require
from plexichat.core.logging.server.direct_route import DirectRoute
from tests.integrations.servers import serve_asgi

Security = Annotated[Principal, Depends(require("security"))]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """An app with one DirectRoute needing the security role, served by uvicorn, and a
    token per role."""
    state = ServerState(ServerSettings(directory=tmp_path / "logs", run_indexer=False))
    state.start()
    tokens = {role: state.tokens.create(role, name=role)[0] for role in ("viewer", "security")}
    router = APIRouter(route_class=DirectRoute)

    @router.get("/direct")
    async def direct(request: Request, principal: Security) -> Response:
        return Response(f"{principal.name}:{request.query_params.get('q')}")

    app = FastAPI()
    setattr(app.state, STATE_KEY, state)
    app.include_router(router)
    try:
        with serve_asgi(app) as url:
            yield url, tokens
    finally:
        state.close()


def test_admits_and_refuses_as_the_dependency_does(
    served: tuple[str, dict[str, str]],
) -> None:
    """No token 401, unknown token 401, another scheme 401, role too low 403; the right
    role reaches the endpoint with its principal and the request."""
    url, tokens = served
    with httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/direct").status_code == 401
        assert (
            client.get("/direct", headers={"Authorization": "Bearer plx_nope"}).status_code == 401
        )
        basic = {"Authorization": f"Basic {tokens['security']}"}
        assert client.get("/direct", headers=basic).status_code == 401
        low = client.get("/direct", headers={"Authorization": f"Bearer {tokens['viewer']}"})
        assert low.status_code == 403
        assert "'security'" in low.json()["detail"]
        ok = client.get(
            "/direct", params={"q": "x"}, headers={"Authorization": f"bearer {tokens['security']}"}
        )
        assert (ok.status_code, ok.text) == (200, "security:x")
        refused = client.get("/direct", headers={"Authorization": "Bearer"})
        assert refused.headers["www-authenticate"] == "Bearer"


def test_the_route_is_documented_with_its_security_scheme() -> None:
    """The OpenAPI operation comes from the signature, as for any route."""
    router = APIRouter(route_class=DirectRoute)

    @router.get("/direct")
    async def direct(request: Request, principal: Security) -> Response:
        return Response(principal.name)

    app = FastAPI()
    app.include_router(router)
    operation = app.openapi()["paths"]["/direct"]["get"]
    assert operation["security"] == [{"HTTPBearer": []}]


async def _extra_dependency(
    request: Request, principal: Security, n: Annotated[int, Depends(lambda: 1)]
) -> Response:
    return Response()


async def _query_parameter(
    request: Request, principal: Security, q: Annotated[str, Query()] = ""
) -> Response:
    return Response()


async def _no_check(request: Request) -> Response:
    return Response()


def _sync(request: Request, principal: Security) -> Response:
    return Response()


@pytest.mark.parametrize("endpoint", [_extra_dependency, _query_parameter, _no_check, _sync])
def test_refuses_an_endpoint_it_cannot_serve_faithfully(endpoint: Any) -> None:
    """Anything besides (request, principal) is refused when the route is declared."""
    router = APIRouter(route_class=DirectRoute)
    with pytest.raises(TypeError, match=r"DirectRoute '/x'.*declare other routes with APIRoute"):
        router.add_api_route("/x", endpoint, methods=["GET"])
