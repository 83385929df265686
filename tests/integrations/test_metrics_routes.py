"""The Prometheus scrape endpoints: FastAPI and Flask routes, and the standalone server."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from plexichat.core.logging.integrations import fastapi as fastapi_integration
from plexichat.core.logging.integrations import flask as flask_integration
from plexichat.core.logging.metrics.prometheus import start_metrics_server
from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.performance_logger import record_metric
from tests.integrations.servers import serve_asgi, serve_wsgi


def _families(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def test_fastapi_metrics_route_is_scrapeable(registry: MetricsRegistry) -> None:
    """GET /metrics on a real server returns the exposition with the recorded metric and the
    request metrics of the middleware."""
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> str:
        return "pong"

    fastapi_integration.add_logging_middleware(app)
    fastapi_integration.add_metrics_route(app)
    record_metric("active_users", 1250, "count")
    with serve_asgi(app) as base:
        httpx.get(f"{base}/ping")
        response = httpx.get(f"{base}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = _families(response.text)
    assert families["active_users"] == "summary"
    assert families["http_request_duration_seconds"] == "summary"


def test_flask_metrics_route_is_scrapeable(registry: MetricsRegistry) -> None:
    """The Flask route serves the same exposition."""
    app = Flask(__name__)
    flask_integration.add_metrics_route(app, "/internal/metrics")
    record_metric("queue_depth", 7, "count", tags={"queue": "mail"})
    with serve_wsgi(app) as base:
        response = httpx.get(f"{base}/internal/metrics")
    assert response.status_code == 200
    assert 'queue_depth{quantile="0.5",queue="mail"} 7.0' in response.text


def test_standalone_metrics_server(registry: MetricsRegistry) -> None:
    """Without a framework: a loopback server on a free port, stopped cleanly."""
    record_metric("jobs_done", 3, "count")
    server = start_metrics_server(0)
    try:
        response = httpx.get(f"http://127.0.0.1:{server.port}/metrics")
    finally:
        server.stop()
    assert "jobs_done" in _families(response.text)
