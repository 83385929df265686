"""DirectRoute: the hot path's caller check without FastAPI's dependency solving.

It must admit and refuse exactly as the ``require(role)`` dependency does, keep the route
documented as any other, and leave to FastAPI every route it could not serve exactly
(a skipped dependency would be a skipped check).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response

from plexichat.core.logging.log_api import ServerSettings, ServerState
from plexichat.core.logging.server.auth import Principal
from plexichat.core.logging.server.deps import STATE_KEY, require
from plexichat.core.logging.server.direct_route import DirectRoute
from tests.integrations.servers import serve_asgi

_CHECK = require("security")
Security = Annotated[Principal, Depends(_CHECK)]


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


def _deny() -> None:
    raise HTTPException(403, "denied by an included dependency")


async def _extra_dependency(
    request: Request, principal: Security, _: Annotated[None, Depends(_deny)]
) -> Response:
    return Response("served")


async def _query_parameter(
    request: Request, principal: Security, q: Annotated[str, Query()] = ""
) -> Response:
    return Response(f"q={q}")


async def _no_check(request: Request) -> Response:
    return Response("open")


def _sync(request: Request, principal: Security) -> Response:
    return Response(principal.name)


@pytest.mark.parametrize(
    ("endpoint", "status", "body"),
    [
        (_extra_dependency, 403, None),
        (_query_parameter, 200, "q=x"),
        (_no_check, 200, "open"),
        (_sync, 200, "security"),
    ],
)
def test_any_other_endpoint_is_served_by_fastapi_with_every_dependency(
    tmp_path: Path, endpoint: Any, status: int, body: str | None
) -> None:
    """An endpoint of another shape is served by FastAPI's own handler, so its extra
    dependency runs (here: refuses), its parameters are read, and so on."""
    with _app_with(tmp_path, endpoint) as (client, tokens):
        got = client.get("/x", params={"q": "x"}, headers=_auth(tokens["security"]))
        assert got.status_code == status
        if body is not None:
            assert got.text == body


def test_dependencies_added_where_the_router_is_included_are_never_skipped(
    tmp_path: Path,
) -> None:
    """``include_router(..., dependencies=...)`` and ``FastAPI(dependencies=...)`` add a
    check to a DirectRoute: it runs (the caller is refused) as for any other route."""
    for where in ("include", "app"):
        router = APIRouter(route_class=DirectRoute)

        @router.get("/x")
        async def direct(request: Request, principal: Security) -> Response:
            return Response(principal.name)

        with _app_with(tmp_path / where, None, router=router, where=where) as (client, tokens):
            got = client.get("/x", headers=_auth(tokens["security"]))
            assert (got.status_code, got.json()["detail"]) == (
                403,
                "denied by an included dependency",
            )


def test_dependency_overrides_of_the_app_apply(tmp_path: Path) -> None:
    """With ``app.dependency_overrides`` set, FastAPI's handler serves the route, so an
    override of the caller check is honoured (as tests of an including app expect)."""
    router = APIRouter(route_class=DirectRoute)

    @router.get("/x")
    async def direct(request: Request, principal: Security) -> Response:
        return Response(principal.name)

    with _app_with(tmp_path, None, router=router) as (client, _tokens):
        first = client.get("/x")
        assert first.status_code == 401, first.text
        app = _app_with.last_app  # type: ignore[attr-defined]
        app.dependency_overrides[_CHECK] = lambda: Principal(
            token_id="t", name="override", role="admin"
        )
        got = client.get("/x")
        assert (got.status_code, got.text) == (200, "override")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def _app_with(
    tmp_path: Path,
    endpoint: Any,
    *,
    router: APIRouter | None = None,
    where: str | None = None,
) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """A TestClient of an app with ``endpoint`` at /x on a DirectRoute router (or
    ``router``), ``_deny`` added at ``where`` (include, app), and a token per role."""
    state = ServerState(ServerSettings(directory=tmp_path / "logs", run_indexer=False))
    state.start()
    tokens = {role: state.tokens.create(role, name=role)[0] for role in ("viewer", "security")}
    if router is None:
        router = APIRouter(route_class=DirectRoute)
        router.add_api_route("/x", endpoint, methods=["GET"])
    app = FastAPI(dependencies=[Depends(_deny)] if where == "app" else None)
    setattr(app.state, STATE_KEY, state)
    app.include_router(router, dependencies=[Depends(_deny)] if where == "include" else None)
    _app_with.last_app = app  # type: ignore[attr-defined]
    try:
        with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=10) as client:
            yield client, tokens
    finally:
        state.close()
