"""The Python examples of docs/integrations.md run as they are and do what the page says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.testing import capture_logs
from tests.integrations.servers import serve_asgi, serve_wsgi

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def _run(index: int) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "docs_example"}
    exec(compile(BLOCKS[index], f"integrations.md block {index}", "exec"), namespace)
    return namespace


def test_the_page_has_its_four_examples() -> None:
    """FastAPI, Flask, endpoint statistics and SQLAlchemy each have a runnable block."""
    assert len(BLOCKS) == 4


@pytest.mark.parametrize(("index", "serve"), [(0, serve_asgi), (1, serve_wsgi)])
def test_web_examples_log_with_the_request_id(index: int, serve: Any) -> None:
    """The FastAPI and Flask blocks: the handler's record carries the request id."""
    app = _run(index)["app"]
    with capture_logs() as events, serve(app) as url:
        httpx.get(f"{url}/users/5", headers={"X-Request-ID": "doc-1"})
    (record,) = [e for e in events if e["message"] == "Loading user"]
    assert record["context"] == {"request_id": "doc-1", "user_id": 5}


def test_endpoint_stats_example_prints_each_endpoint(
    registry: MetricsRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    """The statistics block prints one line per endpoint."""
    tags = {"method": "GET", "route": "/users/{user_id}", "status": "200"}
    registry.histogram("http_request_duration_seconds", tags).observe(0.004)
    _run(2)
    assert capsys.readouterr().out.startswith("GET /users/{user_id}: 1 requests, 0.0% errors")


def test_sqlalchemy_example_times_the_query(registry: MetricsRegistry) -> None:
    """The SQLAlchemy block times its SELECT (fast, so no slow-query record)."""
    with capture_logs() as events:
        engine = _run(3)["engine"]
    (series,) = registry.series("db_query_duration_seconds")
    assert (dict(series.tags), series.sketch().count) == ({"kind": "SELECT"}, 1)
    assert [e for e in events if e["logger"] == "plexichat.db"] == []
    engine.dispose()
