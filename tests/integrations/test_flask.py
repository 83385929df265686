"""Flask: init_app on a real werkzeug server in a thread, hit with httpx."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from flask import Flask, Response, abort, stream_with_context

from plexichat.core.logging import get_logger
from plexichat.core.logging._core.context import current_context
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.integrations import endpoint_stats
from plexichat.core.logging.integrations.flask import EXTENSION_KEY, init_app
from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.testing import capture_logs
from tests.integrations.servers import serve_wsgi

AGENT = "plexi-test/1.0"


def _access(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("logger") == "plexichat.http"]


def make_app(release: threading.Event | None = None) -> Flask:
    """An application with a converter route, errors, a stream and an early hook."""
    app = Flask(__name__)
    log = get_logger("tests.flask")

    @app.before_request
    def early_hook() -> None:
        log.debug("hook sees context")

    @app.get("/users/<int:user_id>")
    def get_user(user_id: int) -> dict[str, int]:
        log.info("loading user", user_id=user_id)
        return {"id": user_id}

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    @app.get("/teapot")
    def teapot() -> str:
        abort(418)

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            yield "first;"
            released = release.wait(30) if release else True
            yield "released;" if released else "timed-out;"

        return Response(stream_with_context(chunks()), mimetype="text/plain")

    init_app(app)
    return app


def test_request_id_generated_and_echoed() -> None:
    """Without X-Request-ID a 32-hex id is generated, echoed and put in the access record."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        response = httpx.get(f"{url}/users/7")
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    (record,) = _access(events)
    assert record["context"]["request_id"] == request_id


def test_client_request_id_kept() -> None:
    """A safe X-Request-ID is used, echoed and logged as given."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        response = httpx.get(f"{url}/users/7", headers={"X-Request-ID": "flask-1"})
    assert response.headers["x-request-id"] == "flask-1"
    assert _access(events)[0]["context"]["request_id"] == "flask-1"


@pytest.mark.parametrize("hostile", ["x" * 10_240, "<script>alert(1)</script>", "a b"])
def test_hostile_request_id_replaced(hostile: str) -> None:
    """An oversized or unsafe X-Request-ID is replaced by a generated one, and flagged."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        response = httpx.get(f"{url}/users/7", headers={"X-Request-ID": hostile})
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    (record,) = _access(events)
    assert record["context"]["request_id"] == request_id
    assert record["metadata"]["request_id_replaced"] is True
    assert hostile not in str(events)


def test_records_inside_handler_and_hooks_carry_request_id() -> None:
    """The view's records and the application's own before_request hook see the id."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        httpx.get(f"{url}/users/7", headers={"X-Request-ID": "trace-me"})
    (hook,) = [e for e in events if e["message"] == "hook sees context"]
    (inner,) = [e for e in events if e["message"] == "loading user"]
    assert hook["context"] == {"request_id": "trace-me"}
    assert inner["context"] == {"request_id": "trace-me", "user_id": 7}


def test_access_record_fields() -> None:
    """One INFO access record in category api with the rule, path, status, timing, client."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        httpx.get(f"{url}/users/42", headers={"User-Agent": AGENT, "X-Request-ID": "r-1"})
    (record,) = _access(events)
    assert record["level"] == "INFO"
    assert record["category"] == "api"
    assert record["context"] == {
        "request_id": "r-1",
        "method": "GET",
        "route": "/users/<int:user_id>",
        "path": "/users/42",
        "status_code": 200,
        "ip_address": "127.0.0.1",
        "user_agent": AGENT,
    }
    assert record["metadata"]["duration_ms"] >= 0


def test_client_errors_are_warnings() -> None:
    """abort(418) and an unknown path are WARNING records; the unknown one is unmatched."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        assert httpx.get(f"{url}/teapot").status_code == 418
        assert httpx.get(f"{url}/no/such/path").status_code == 404
    records = _access(events)
    assert [(r["level"], r["context"]["route"], r["context"]["status_code"]) for r in records] == [
        ("WARNING", "/teapot", 418),
        ("WARNING", "<unmatched>", 404),
    ]


def test_exception_logged_with_traceback_and_answered_500(registry: MetricsRegistry) -> None:
    """An exception in the view: ERROR record with the traceback, the client gets a 500
    that still carries the request id."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        response = httpx.get(f"{url}/boom", headers={"X-Request-ID": "err-1"})
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "err-1"
    (record,) = _access(events)
    assert record["level"] == "ERROR"
    assert record["context"]["status_code"] == 500
    assert record["context"]["request_id"] == "err-1"
    assert record["exception"]["type"] == "RuntimeError"
    assert any("raise RuntimeError" in line for line in record["exception"]["traceback"])
    tags = {"method": "GET", "route": "/boom", "status": "500"}
    assert registry.counter("http_request_errors_total", tags).value == 1


def test_metrics_and_endpoint_stats(registry: MetricsRegistry) -> None:
    """Series are tagged with the URL rule; endpoint_stats sums them per endpoint."""
    with serve_wsgi(make_app()) as url:
        for user in (1, 2, 3):
            httpx.get(f"{url}/users/{user}")
        httpx.get(f"{url}/boom")
    routes = {s.tags["route"] for s in registry.series("http_request_duration_seconds")}
    assert routes == {"/users/<int:user_id>", "/boom"}
    stats = endpoint_stats()
    users = stats[("GET", "/users/<int:user_id>")]
    assert (users.requests, users.errors) == (3, 0)
    assert 0 < users.p50 <= users.p99
    assert stats[("GET", "/boom")].error_rate == 1.0


def test_streaming_response_still_streams() -> None:
    """A streamed body arrives chunk by chunk; the request id header is on it."""
    release = threading.Event()
    with (
        capture_logs() as events,
        serve_wsgi(make_app(release)) as url,
        httpx.Client() as client,
        client.stream("GET", f"{url}/stream") as response,
    ):
        chunks = response.iter_raw()
        first = next(chunks)
        release.set()
        rest = b"".join(chunks)
    assert (first, rest) == (b"first;", b"released;")
    assert response.headers["x-request-id"]
    (record,) = _access(events)
    assert record["context"]["route"] == "/stream"


def test_excluded_path_has_no_record_nor_metrics(registry: MetricsRegistry) -> None:
    """/health gets an id but no access record and no metrics."""
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        response = httpx.get(f"{url}/health")
    assert response.headers["x-request-id"]
    assert _access(events) == []
    assert registry.series("http_requests_total") == []


def test_init_app_twice_replaces_the_hooks() -> None:
    """A second init_app replaces the first: one access record per request, new options."""
    app = make_app()
    init_app(app, logger_name="second.http")
    with capture_logs() as events, serve_wsgi(app) as url:
        httpx.get(f"{url}/users/1")
    assert [e["logger"] for e in events if e["category"] == "api"] == ["second.http"]
    assert app.extensions[EXTENSION_KEY].observer.logger_name == "second.http"


def test_context_unbound_after_the_request() -> None:
    """The request id does not leak into what the worker logs after the request."""
    app = make_app()
    with app.test_request_context("/users/1"):
        app.preprocess_request()
        assert current_context()["request_id"]
        app.do_teardown_request(None)
        assert "request_id" not in current_context()


def test_hook_failure_never_breaks_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while preparing is reported; the view still answers, unobserved."""

    def broken(value: str | None) -> tuple[str, bool]:
        raise RuntimeError("id generator down")

    monkeypatch.setattr("plexichat.core.logging.integrations.flask.accept_request_id", broken)
    with capture_logs() as events, serve_wsgi(make_app()) as url:
        response = httpx.get(f"{url}/users/3")
    assert response.json() == {"id": 3}
    assert "x-request-id" not in response.headers
    assert _access(events) == []
    assert error_reporter.counts["integrations.flask"] == 1
