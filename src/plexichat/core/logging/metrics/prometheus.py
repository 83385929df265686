"""Prometheus text exposition of the metrics registry (for a ``/metrics`` endpoint).

Mapping (Prometheus naming conventions):

- histogram (``timer``, ``record_metric``) -> ``summary`` with quantiles 0.5, 0.95, 0.99
  (from the 1%-accurate sketch), ``_sum`` and ``_count``;
- counter -> ``counter`` (``_total``); gauge -> ``gauge``;
- names: ``.`` and ``:`` become ``_``, the base unit is appended unless already there
  (``db.query_time`` in seconds -> ``db_query_time_seconds``); ``ms``/``us`` values are
  converted to seconds; the unit ``count`` adds no suffix;
- tags become labels; prometheus_client escapes their values. The registry refuses a metric
  whose exposed names would clash with another's (``api.latency`` and ``api:latency``, a
  gauge ``jobs_count`` beside a distribution ``jobs``), and the tag ``quantile`` on a
  distribution, so every family and sample is unique.

Two self-metrics tell when data was not kept: ``plexichat_metrics_overflow_total{metric}``
(values sent to the overflow series) and ``plexichat_metrics_rejected_total`` (NaN,
infinite or negative-duration values dropped).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from .naming import prometheus_name
from .registry import MetricsRegistry, Series, get_registry

__all__ = [
    "CONTENT_TYPE",
    "MetricsServer",
    "RegistryCollector",
    "exposition",
    "prometheus_name",
    "start_metrics_server",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""The ``Content-Type`` of the text exposition format."""

QUANTILES = (0.5, 0.95, 0.99)


class RegistryCollector(Collector):
    """A prometheus_client collector that reads a :class:`MetricsRegistry` on each scrape.

    Args:
        registry: the registry to expose (default: the process-wide one).
    """

    def __init__(self, registry: MetricsRegistry | None = None) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        """Yield one metric family per metric name, then the self-metrics."""
        registry = self.registry if self.registry is not None else get_registry()
        families: dict[str, list[Series]] = {}
        for series in registry.series():
            families.setdefault(series.name, []).append(series)
        for members in families.values():
            yield _family(members)
        overflow = Metric(
            "plexichat_metrics_overflow", "Values sent to a metric's overflow series.", "counter"
        )
        for name, count in sorted(registry.overflowed.items()):
            overflow.add_sample("plexichat_metrics_overflow_total", {"metric": name}, count)
        yield overflow
        rejected = Metric(
            "plexichat_metrics_rejected",
            "NaN, infinite or negative-duration values dropped.",
            "counter",
        )
        rejected.add_sample("plexichat_metrics_rejected_total", {}, registry.rejected)
        yield rejected


def _family(members: list[Series]) -> Metric:
    first = members[0]
    name, scale = prometheus_name(first.name, first.unit)
    doc = f"{first.name} ({first.unit})" if first.unit else first.name
    if first.kind == "counter":
        name = name.removesuffix("_total")
        family = Metric(name, doc, "counter")
        for s in members:
            family.add_sample(f"{name}_total", dict(s.tags), s.sketch().sum * scale)
        return family
    if first.kind == "gauge":
        family = Metric(name, doc, "gauge")
        for s in members:
            value = s.last * scale if not math.isnan(s.last) else math.nan
            family.add_sample(name, dict(s.tags), value)
        return family
    family = Metric(name, doc, "summary")
    for s in members:
        sketch = s.sketch()
        labels = dict(s.tags)
        for q, v in zip(QUANTILES, sketch.quantiles(QUANTILES), strict=True):
            family.add_sample(name, {**labels, "quantile": str(q)}, v * scale)
        family.add_sample(f"{name}_sum", labels, sketch.sum * scale)
        family.add_sample(f"{name}_count", labels, sketch.count)
    return family


def exposition(registry: MetricsRegistry | None = None) -> tuple[bytes, str]:
    """The registry in the Prometheus text format, and its ``Content-Type``.

    Example:
        >>> body, content_type = exposition()
        >>> content_type.startswith("text/plain")
        True
    """
    target = CollectorRegistry(auto_describe=False)
    target.register(RegistryCollector(registry))
    return generate_latest(target), CONTENT_TYPE


class MetricsServer:
    """A running ``/metrics`` HTTP endpoint (see :func:`start_metrics_server`)."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.port: int = server.server_address[1]
        """The port it listens on (useful with ``port=0``)."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and join the serving thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout)


def start_metrics_server(
    port: int = 9464, addr: str = "127.0.0.1", registry: MetricsRegistry | None = None
) -> MetricsServer:
    """Serve the registry for Prometheus scrapes on ``http://addr:port/metrics``.

    For applications without a web framework (with FastAPI or Flask, mount the route from
    ``plexichat.core.logging.integrations`` instead). Binds to loopback unless told
    otherwise; the metrics carry no secrets but do describe the application.

    Raises:
        OSError: the address is in use or cannot be bound.
    """
    from prometheus_client.exposition import start_http_server

    target = CollectorRegistry(auto_describe=False)
    target.register(RegistryCollector(registry))
    server, thread = start_http_server(port, addr=addr, registry=target)
    return MetricsServer(server, thread)
