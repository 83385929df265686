"""FastAPI: the ASGI middleware on a real uvicorn server, hit with httpx."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import StreamingResponse
from starlette.exceptions import StarletteDeprecationWarning

from plexichat.core.logging import get_logger
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.integrations import endpoint_stats
from plexichat.core.logging.integrations import fastapi as fastapi_integration
from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.testing import capture_logs
from tests.integrations.servers import serve_asgi

AGENT = "plexi-test/1.0"
HEX32 = "0123456789abcdef"


def _access(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("logger") == "plexichat.http"]


def make_app(release: threading.Event | None = None) -> FastAPI:
    """An application with a parameterized route, errors, a stream and a WebSocket."""
    app = FastAPI()
    log = get_logger("tests.app")

    @app.get("/users/{user_id}")
    async def get_user(user_id: int) -> dict[str, int]:
        log.info("loading user", user_id=user_id)
        return {"id": user_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(status_code=418, detail="short and stout")

    @app.get("/unavailable")
    async def unavailable() -> None:
        raise HTTPException(status_code=503)

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            released = await asyncio.to_thread(release.wait, 30) if release else True
            yield b"released;" if released else b"timed-out;"

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.websocket("/ws")
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        text = await ws.receive_text()
        log.info("websocket message", text=text)
        await ws.send_text(f"echo: {text}")
        await ws.close()

    fastapi_integration.add_logging_middleware(app)
    return app


def test_request_id_generated_and_echoed() -> None:
    """Without X-Request-ID a 32-hex id is generated, echoed and put in the access record."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        response = httpx.get(f"{url}/users/7")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert set(request_id) <= set(HEX32)
    (record,) = _access(events)
    assert record["context"]["request_id"] == request_id


def test_client_request_id_kept() -> None:
    """A safe X-Request-ID from the client is used, echoed and logged as given."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        response = httpx.get(f"{url}/users/7", headers={"X-Request-ID": "req-42.a:b_c"})
    assert response.headers["x-request-id"] == "req-42.a:b_c"
    (record,) = _access(events)
    assert record["context"]["request_id"] == "req-42.a:b_c"
    assert "request_id_replaced" not in record["metadata"]


@pytest.mark.parametrize(
    "hostile", ["x" * 10_240, "<script>alert(1)</script>", "a b", "id\t2", "x" * 129]
)
def test_hostile_request_id_replaced(hostile: str) -> None:
    """An oversized or unsafe X-Request-ID is replaced by a generated one, and flagged."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        response = httpx.get(f"{url}/users/7", headers={"X-Request-ID": hostile})
    request_id = response.headers["x-request-id"]
    assert request_id != hostile
    assert len(request_id) == 32
    (record,) = _access(events)
    assert record["context"]["request_id"] == request_id
    assert record["metadata"]["request_id_replaced"] is True
    assert hostile not in str(events)


def test_records_inside_handler_carry_request_id() -> None:
    """Everything logged while the request is handled has the request id in its context."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        httpx.get(f"{url}/users/7", headers={"X-Request-ID": "trace-me"})
    (inner,) = [e for e in events if e["message"] == "loading user"]
    assert inner["context"] == {"request_id": "trace-me", "user_id": 7}


def test_access_record_fields() -> None:
    """One INFO access record in category api with method, route, path, status, timing, client."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        httpx.get(f"{url}/users/42", headers={"User-Agent": AGENT, "X-Request-ID": "r-1"})
    (record,) = _access(events)
    assert record["level"] == "INFO"
    assert record["category"] == "api"
    assert record["context"] == {
        "request_id": "r-1",
        "method": "GET",
        "route": "/users/{user_id}",
        "path": "/users/42",
        "status_code": 200,
        "ip_address": "127.0.0.1",
        "user_agent": AGENT,
    }
    assert record["metadata"]["duration_ms"] >= 0
    assert record["message"].startswith("GET /users/42 200 (")


def test_client_errors_are_warnings() -> None:
    """4xx answers (a handler's HTTPException, an unknown path) are WARNING records."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        assert httpx.get(f"{url}/teapot").status_code == 418
        assert httpx.get(f"{url}/no/such/path").status_code == 404
    records = _access(events)
    assert [(r["level"], r["context"]["route"], r["context"]["status_code"]) for r in records] == [
        ("WARNING", "/teapot", 418),
        ("WARNING", "<unmatched>", 404),
    ]


def test_exception_logged_with_traceback_and_answered_500(registry: MetricsRegistry) -> None:
    """An exception in the handler: ERROR record with the traceback, the client gets a 500."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        response = httpx.get(f"{url}/boom", headers={"X-Request-ID": "err-1"})
    assert response.status_code == 500
    (record,) = _access(events)
    assert record["level"] == "ERROR"
    assert record["context"]["status_code"] == 500
    assert record["context"]["request_id"] == "err-1"
    assert record["exception"]["type"] == "RuntimeError"
    assert record["exception"]["message"] == "kaboom"
    assert any("raise RuntimeError" in line for line in record["exception"]["traceback"])
    errors = registry.counter("http_request_errors_total", _tags("GET", "/boom", 500))
    assert errors.value == 1


def test_server_error_status_is_error_record(registry: MetricsRegistry) -> None:
    """A 5xx answered by the application (no exception) is an ERROR record and an error."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        assert httpx.get(f"{url}/unavailable").status_code == 503
    (record,) = _access(events)
    assert record["level"] == "ERROR"
    assert "exception" not in record
    assert registry.counter("http_request_errors_total", _tags("GET", "/unavailable", 503)).value


def _tags(method: str, route: str, status: int) -> dict[str, str]:
    return {"method": method, "route": route, "status": str(status)}


def test_metrics_tagged_with_route_template(registry: MetricsRegistry) -> None:
    """Durations and counts go to series tagged with the route template, never the raw path."""
    with serve_asgi(make_app()) as url:
        for user in (1, 2, 3):
            httpx.get(f"{url}/users/{user}")
        httpx.get(f"{url}/nope/1")
        httpx.get(f"{url}/nope/2")
    routes = {s.tags["route"] for s in registry.series("http_request_duration_seconds")}
    assert routes == {"/users/{user_id}", "<unmatched>"}
    ok = registry.histogram("http_request_duration_seconds", _tags("GET", "/users/{user_id}", 200))
    assert ok.sketch().count == 3
    assert registry.counter("http_requests_total", _tags("GET", "<unmatched>", 404)).value == 2


def test_endpoint_stats_per_method_and_route(registry: MetricsRegistry) -> None:
    """endpoint_stats merges the statuses of an endpoint: counts, error rate, percentiles."""
    with serve_asgi(make_app()) as url:
        for user in (1, 2):
            httpx.get(f"{url}/users/{user}")
        httpx.get(f"{url}/users/not-a-number")  # 422 from validation, same route
        httpx.get(f"{url}/boom")
    stats = endpoint_stats()
    users = stats[("GET", "/users/{user_id}")]
    assert (users.requests, users.errors, users.error_rate) == (3, 0, 0.0)
    assert users.statuses == {"200": 2, "422": 1}
    assert 0 < users.p50 <= users.p95 <= users.p99 <= users.max
    boom = stats[("GET", "/boom")]
    assert (boom.requests, boom.errors, boom.error_rate) == (1, 1, 1.0)
    assert boom.as_dict()["route"] == "/boom"
    assert endpoint_stats(window=300)[("GET", "/boom")].requests == 1


def test_streaming_response_still_streams() -> None:
    """The first chunk reaches the client before the handler produces the second one."""
    release = threading.Event()
    with (
        capture_logs() as events,
        serve_asgi(make_app(release)) as url,
        httpx.Client() as client,
        client.stream("GET", f"{url}/stream") as response,
    ):
        chunks = response.iter_raw()
        first = next(chunks)
        release.set()
        rest = b"".join(chunks)
    assert first == b"first;"
    assert rest == b"released;"
    assert response.headers["x-request-id"]
    (record,) = _access(events)
    assert record["context"]["route"] == "/stream"


def test_websocket_route_still_works() -> None:
    """A WebSocket passes through the middleware; its records carry the request id.

    Neither ``websockets`` nor ``wsproto`` is installed for uvicorn, so starlette's
    TestClient drives the app (it warns that it prefers ``httpx2`` over ``httpx``).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StarletteDeprecationWarning)
        from starlette.testclient import TestClient

    with (
        capture_logs() as events,
        TestClient(make_app()) as client,
        client.websocket_connect("/ws", headers={"X-Request-ID": "ws-1"}) as ws,
    ):
        ws.send_text("hi")
        assert ws.receive_text() == "echo: hi"
    (record,) = [e for e in events if e["message"] == "websocket message"]
    assert record["context"] == {"request_id": "ws-1", "text": "hi"}
    assert _access(events) == []


def test_excluded_path_has_no_record_nor_metrics(registry: MetricsRegistry) -> None:
    """/health (the default exclusion) gets an id but no access record and no metrics."""
    with capture_logs() as events, serve_asgi(make_app()) as url:
        response = httpx.get(f"{url}/health")
    assert response.headers["x-request-id"]
    assert _access(events) == []
    assert registry.series("http_requests_total") == []


def test_own_exclusions_replace_the_setting() -> None:
    """exclude_paths given in code wins; a trailing * excludes a prefix."""
    app = FastAPI()

    @app.get("/static/{name}")
    async def static(name: str) -> str:
        return name

    @app.get("/health")
    async def health() -> str:
        return "ok"

    fastapi_integration.add_logging_middleware(app, exclude_paths=["/static/*"])
    with capture_logs() as events, serve_asgi(app) as url:
        httpx.get(f"{url}/static/app.js")
        httpx.get(f"{url}/health")
    assert [r["context"]["path"] for r in _access(events)] == ["/health"]


def test_metrics_failure_never_breaks_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing registry is reported once; the request succeeds and is still logged."""

    def broken() -> None:
        raise RuntimeError("registry down")

    monkeypatch.setattr("plexichat.core.logging.integrations._http.get_registry", broken)
    with capture_logs() as events, serve_asgi(make_app()) as url:
        response = httpx.get(f"{url}/users/1")
    assert response.json() == {"id": 1}
    assert len(_access(events)) == 1
    assert error_reporter.counts["integrations.metrics"] == 1


def test_application_request_id_header_kept() -> None:
    """A response that already has X-Request-ID keeps it, without a duplicate."""
    app = FastAPI()

    @app.get("/own")
    async def own() -> Any:
        from fastapi.responses import PlainTextResponse

        return PlainTextResponse("x", headers={"X-Request-ID": "from-app"})

    fastapi_integration.add_logging_middleware(app)
    with serve_asgi(app) as url:
        response = httpx.get(f"{url}/own")
    assert response.headers.get_list("x-request-id") == ["from-app"]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [({"exclude_paths": ["health"]}, "'health'"), ({"request_id_header": "X Id"}, "'X Id'")],
)
def test_bad_options_rejected_at_install(kwargs: dict[str, Any], needle: str) -> None:
    """A bad excluded path or header name fails when installing, naming the value."""
    with pytest.raises(ValueError, match=needle):
        fastapi_integration.add_logging_middleware(FastAPI(), **kwargs)


def test_mounted_routes_keep_their_prefix(registry: MetricsRegistry) -> None:
    """A route of a mounted sub-application is tagged with the mount prefix and its template;
    a mounted plain ASGI app with ``/{path}``."""
    sub = FastAPI()

    @sub.get("/items/{item_id}")
    async def item(item_id: int) -> int:
        return item_id

    async def files(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"file"})

    app = FastAPI()
    app.mount("/api", sub)
    app.mount("/files", files)
    fastapi_integration.add_logging_middleware(app)
    with capture_logs() as events, serve_asgi(app) as url:
        httpx.get(f"{url}/api/items/5")
        httpx.get(f"{url}/files/a/b.txt")
    routes = [r["context"]["route"] for r in _access(events)]
    assert routes == ["/api/items/{item_id}", "/files/{path}"]
