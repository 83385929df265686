"""``GET /performance/metrics``: metric history, downsampled, filtered by name, tag and time."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from plexichat.core.logging.metrics.history import HISTORY_LOGGER, HistoryFlusher
from plexichat.core.logging.metrics.registry import MetricsRegistry
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import LiveServer


class _Clock:
    """Epoch seconds that only move when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def history(live_server: LiveServer) -> LiveServer:
    """Three one-minute intervals of history, ending ten minutes ago.

    response_time (histogram, seconds): /a 0.1 0.3 | /a 0.2, /b 0.9 | /a 0.5;
    cpu_usage (gauge, percent): 40 | 60; requests (counter): 5 in the last interval.
    """
    clock = _Clock(math.floor(time.time() / 60) * 60 - 780)
    registry = MetricsRegistry(clock=clock)
    flusher = HistoryFlusher(registry, 60.0, clock=clock)
    response_a = registry.histogram("response_time", {"endpoint": "/a"})
    cpu = registry.gauge("cpu_usage", unit="percent")
    response_a.observe(0.1)
    response_a.observe(0.3)
    cpu.set(40)
    clock.now += 60
    written = flusher.flush()
    response_a.observe(0.2)
    registry.histogram("response_time", {"endpoint": "/b"}).observe(0.9)
    cpu.set(60)
    clock.now += 60
    written += flusher.flush()
    response_a.observe(0.5)
    registry.counter("requests").inc(5)
    clock.now += 60
    written += flusher.flush()
    live_server.wait_for(written, LogQuery(loggers=(HISTORY_LOGGER,)))
    return live_server


def _metrics(client: httpx.Client, url: str = "/performance/metrics", **params: Any) -> Any:
    response = client.get(url, params=params or None)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"metrics", "start_time", "end_time", "interval"}
    return body


def test_spec_request_verbatim(history: LiveServer) -> None:
    """``metric_names=response_time,cpu_usage``: both, one point per minute, summaries."""
    with history.client("viewer") as c:
        body = _metrics(c, "/performance/metrics?metric_names=response_time,cpu_usage")
    assert set(body["metrics"]) == {"response_time", "cpu_usage"}
    response = body["metrics"]["response_time"]
    assert (response["unit"], response["kind"]) == ("seconds", "histogram")
    assert [p["count"] for p in response["points"]] == [2, 2, 1]
    assert set(response["points"][0]) == {
        "timestamp", "count", "sum", "min", "max", "mean", "p50", "p95", "p99", "last",
    }  # fmt: skip
    summary = response["summary"]
    assert summary["count"] == 5
    assert summary["sum"] == pytest.approx(2.0)
    assert summary["max"] == pytest.approx(0.9, rel=0.02)
    assert summary["min"] == pytest.approx(0.1, rel=0.02)
    assert {"p50", "p95", "p99", "mean"} <= set(summary)
    assert set(response["trend"]) == {"slope", "direction", "points", "anomalies"}
    cpu = body["metrics"]["cpu_usage"]
    assert (cpu["unit"], cpu["kind"]) == ("percent", "gauge")
    assert [p["last"] for p in cpu["points"]] == [40, 60]
    assert body["interval"] == 60


def test_default_range_is_the_last_hour(history: LiveServer) -> None:
    """Without times: the hour before now; every recorded metric when no names are given."""
    with history.client("viewer") as c:
        body = _metrics(c)
    start = datetime.fromisoformat(body["start_time"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(body["end_time"].replace("Z", "+00:00"))
    assert (end - start).total_seconds() == 3600
    assert set(body["metrics"]) == {"response_time", "cpu_usage", "requests"}
    assert body["metrics"]["requests"]["summary"]["sum"] == 5


def test_downsampling_tags_unknown_names_and_time_range(history: LiveServer) -> None:
    """Larger intervals merge points; ``tag.NAME`` keeps one series; names never recorded
    are absent; a range before the records is empty."""
    with history.client("viewer") as c:
        wide = _metrics(c, metric_names="response_time", interval=180)
        only_b = _metrics(c, **{"metric_names": "response_time", "tag.endpoint": "/b"})
        unknown = _metrics(c, metric_names="response_time,never_recorded")
        past = _metrics(c, start_time="2020-01-01T00:00:00Z", end_time="2020-01-02T00:00:00Z")
    points = wide["metrics"]["response_time"]["points"]
    assert len(points) in (1, 2)
    assert sum(p["count"] for p in points) == 5
    assert wide["interval"] == 180
    series = only_b["metrics"]["response_time"]
    assert series["summary"]["count"] == 1
    assert series["summary"]["max"] == pytest.approx(0.9, rel=0.02)
    assert set(unknown["metrics"]) == {"response_time"}
    assert past["metrics"] == {}
    assert past["start_time"].startswith("2020-01-01T00:00:00")


@pytest.mark.parametrize(
    ("params", "param", "fragment"),
    [
        ({"interval": 0}, "interval", "greater than or equal to 1"),
        ({"interval": 86401}, "interval", "less than or equal to 86400"),
        ({"start_time": "soon"}, "start_time", "ISO-8601"),
        ({"end_time": "2024-13-01T00:00:00Z"}, "end_time", "ISO-8601"),
        (
            {"start_time": "2024-02-01T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"},
            "start_time",
            "after",
        ),
        ({"metric": "cpu"}, "metric", "unknown parameter"),
        ({"tag.": "x"}, "tag.", "tag.NAME"),
    ],
)
def test_invalid_parameters(
    live_server: LiveServer, params: dict[str, Any], param: str, fragment: str
) -> None:
    """422 naming the parameter and what it allows."""
    with live_server.client("viewer") as c:
        response = c.get("/performance/metrics", params=params)
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", param]
    assert fragment in item["msg"]
