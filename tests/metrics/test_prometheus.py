"""Prometheus exposition: parsed back with prometheus_client's own parser."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from plexichat.core.logging.metrics.prometheus import CONTENT_TYPE, exposition, prometheus_name
from plexichat.core.logging.metrics.registry import MetricsRegistry


def _parse(registry: MetricsRegistry) -> dict[str, tuple[str, list[Sample]]]:
    body, content_type = exposition(registry)
    assert content_type == CONTENT_TYPE
    return {f.name: (f.type, f.samples) for f in text_string_to_metric_families(body.decode())}


def test_histograms_are_summaries_with_quantiles_in_seconds() -> None:
    """A timer series becomes a summary with 0.5/0.95/0.99 quantiles, _sum and _count."""
    registry = MetricsRegistry()
    h = registry.histogram("db.query_time", {"table": "users"})
    for v in (0.1, 0.2, 0.3, 0.4):
        h.observe(v)
    kind, samples = _parse(registry)["db_query_time_seconds"]
    assert kind == "summary"
    by_name = {(s.name, s.labels.get("quantile")): s for s in samples}
    assert by_name[("db_query_time_seconds", "0.5")].value == pytest.approx(0.2, rel=0.01)
    assert by_name[("db_query_time_seconds", "0.99")].value == pytest.approx(0.4, rel=0.01)
    assert by_name[("db_query_time_seconds_count", None)].value == 4
    assert by_name[("db_query_time_seconds_sum", None)].value == pytest.approx(1.0)
    assert by_name[("db_query_time_seconds_count", None)].labels == {"table": "users"}


def test_counters_and_gauges_keep_their_types() -> None:
    """Counters end in _total; gauges show the last value; units are in the names."""
    registry = MetricsRegistry()
    registry.counter("requests", {"code": 200}).inc(3)
    registry.gauge("cpu_usage", unit="percent").set(12.5)
    registry.gauge("memory", unit="bytes").set(1024)
    families = _parse(registry)
    assert families["requests"][0] == "counter"
    assert families["requests"][1][0].name == "requests_total"
    assert families["requests"][1][0].value == 3.0
    assert families["requests"][1][0].labels == {"code": "200"}
    assert families["cpu_usage_percent"] == ("gauge", [Sample("cpu_usage_percent", {}, 12.5)])
    assert families["memory_bytes"][1][0].value == 1024.0


def test_label_values_are_escaped() -> None:
    """Quotes, backslashes and newlines in tag values survive the round trip."""
    registry = MetricsRegistry()
    tricky = 'a "quoted"\\path\nnext'
    registry.counter("hits", {"path": tricky}).inc()
    body, _ = exposition(registry)
    assert b"\\n" in body
    (sample,) = _parse(registry)["hits"][1]
    assert sample.labels == {"path": tricky}


def test_milliseconds_are_converted_to_seconds() -> None:
    """A metric recorded in ms is exposed in base units (seconds)."""
    registry = MetricsRegistry()
    registry.histogram("render", unit="ms").observe(250.0)
    samples = _parse(registry)["render_seconds"][1]
    total = next(s for s in samples if s.name == "render_seconds_sum")
    assert total.value == pytest.approx(0.25)


def test_overflow_and_rejected_values_are_visible() -> None:
    """The self-metrics count overflowed and rejected values."""
    registry = MetricsRegistry(max_series=1)
    registry.counter("c", {"u": "1"}).inc()
    registry.counter("c", {"u": "2"}).inc()
    registry.gauge("g").set(math.nan)
    families = _parse(registry)
    overflow = families["plexichat_metrics_overflow"][1]
    assert overflow == [Sample("plexichat_metrics_overflow_total", {"metric": "c"}, 1.0)]
    rejected = families["plexichat_metrics_rejected"][1]
    assert rejected[0].value == 1.0
    labels = [s.labels for s in families["c"][1]]
    assert labels == [{"u": "1"}, {"overflow": "true"}]


@pytest.mark.parametrize(
    ("name", "unit", "expected"),
    [
        ("response_time", "seconds", ("response_time_seconds", 1.0)),
        ("response_time_seconds", "seconds", ("response_time_seconds", 1.0)),
        ("active_users", "count", ("active_users", 1.0)),
        ("latency", "us", ("latency_seconds", 1e-6)),
        ("ns:metric.x", "", ("ns_metric_x", 1.0)),
        ("size", "KiB", ("size_kib", 1.0)),
    ],
)
def test_prometheus_names(name: str, unit: str, expected: tuple[str, float]) -> None:
    """Names follow Prometheus conventions: base unit suffix once, no dots or colons."""
    assert prometheus_name(name, unit) == expected


def test_an_unset_gauge_is_nan() -> None:
    """A gauge created but never set is exposed as NaN (valid in the format)."""
    registry = MetricsRegistry()
    registry.gauge("pending")
    (sample,) = _parse(registry)["pending"][1]
    assert math.isnan(sample.value)
