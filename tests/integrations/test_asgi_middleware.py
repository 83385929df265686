"""LoggingMiddleware as a plain ASGI callable: what servers never deliver, failure paths."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.integrations import fastapi as fastapi_integration
from plexichat.core.logging.integrations._http import AccessObserver
from plexichat.core.logging.testing import capture_logs


def _access(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("logger") == "plexichat.http"]


def test_request_id_with_cr_lf_replaced() -> None:
    """A CR/LF id (servers usually refuse it; the ASGI app may still see one) is replaced."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    middleware = fastapi_integration.LoggingMiddleware(app)
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/x",
        "headers": [(b"x-request-id", b"abc\r\nSet-Cookie: session=evil")],
    }
    with capture_logs() as events:
        asyncio.run(middleware(scope, receive, send))
    headers = dict(sent[0]["headers"])
    assert b"\r" not in headers[b"x-request-id"]
    assert len(headers[b"x-request-id"]) == 32
    (record,) = _access(events)
    assert record["metadata"]["request_id_replaced"] is True
    assert "evil" not in str(record)


def test_application_exception_propagates_even_if_logging_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The application's own exception reaches the server even when the record fails."""

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("logging down")

    monkeypatch.setattr(AccessObserver, "_log", broken)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("application bug")

    middleware = fastapi_integration.LoggingMiddleware(app)
    with pytest.raises(KeyError, match="application bug"):
        asyncio.run(middleware({"type": "http", "path": "/", "headers": []}, _never, _never))
    assert error_reporter.counts["integrations.access"] == 1


async def _never(*args: Any) -> Any:
    raise AssertionError("not called")


def test_unreadable_scope_passes_through() -> None:
    """A scope the middleware cannot read is handed to the application unobserved."""
    called: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope["path"])

    middleware = fastapi_integration.LoggingMiddleware(app)
    scope = {"type": "http", "path": "/odd", "headers": [b"not-a-pair"]}
    asyncio.run(middleware(scope, _never, _never))
    assert called == ["/odd"]
    assert error_reporter.counts["integrations.asgi"] == 1


def test_lifespan_passes_through() -> None:
    """Scopes other than http and websocket reach the application untouched."""
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    scope = {"type": "lifespan"}
    asyncio.run(fastapi_integration.LoggingMiddleware(app)(scope, _never, _never))
    assert seen == [{"type": "lifespan"}]


def test_route_template_without_a_usable_route() -> None:
    """A route object without a path template counts as unmatched, as does no route."""
    assert fastapi_integration.route_template({"route": object()}) == "<unmatched>"
    assert fastapi_integration.route_template({}) == "<unmatched>"
