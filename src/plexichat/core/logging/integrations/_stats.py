"""Per-endpoint application metrics (request count, error rate, latency percentiles).

Read from the registry series the HTTP middlewares record; nothing is stored twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..metrics.registry import MetricsRegistry, get_registry
from ..metrics.sketch import Sketch
from ._http import ERRORS_TOTAL, REQUEST_DURATION

__all__ = ["EndpointStats", "endpoint_stats"]


@dataclass(frozen=True, slots=True)
class EndpointStats:
    """Request count, error rate and response-time percentiles of one endpoint.

    Attributes:
        method: the HTTP method (``"GET"``; non-standard methods are ``"OTHER"``).
        route: the route template (``"/users/{user_id}"``) or ``"<unmatched>"``.
        requests: requests answered.
        errors: requests answered 5xx or ended by an exception.
        error_rate: ``errors / requests``.
        p50: median response time in seconds.
        p95: 95th percentile response time in seconds.
        p99: 99th percentile response time in seconds.
        mean: mean response time in seconds.
        max: slowest response time in seconds.
        statuses: requests per status code (``{"200": 12, "404": 1}``).
    """

    method: str
    route: str
    requests: int
    errors: int
    error_rate: float
    p50: float
    p95: float
    p99: float
    mean: float
    max: float
    statuses: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        """The fields as a plain dict (for JSON)."""
        return asdict(self)


def endpoint_stats(
    window: float | None = None, *, registry: MetricsRegistry | None = None
) -> dict[tuple[str, str], EndpointStats]:
    """Per ``(method, route)``: request count, error rate and p50/p95/p99 response times.

    Built from the ``http_request_duration_seconds`` histograms and the
    ``http_request_errors_total`` counters that the FastAPI and Flask integrations record
    (one series per method, route and status; the statuses of an endpoint are merged here).

    Args:
        window: only the last ``window`` seconds (10 s resolution up to five minutes, 60 s up
            to an hour); None for everything since the start (or the last registry clear).
        registry: the registry to read; the process-wide one by default.

    Returns:
        ``{("GET", "/users/{user_id}"): EndpointStats(...), ...}``

    Example:
        >>> stats = endpoint_stats()
        >>> stats[("GET", "/users/{user_id}")].p95  # doctest: +SKIP
        0.0123
    """
    reg = registry if registry is not None else get_registry()
    merged: dict[tuple[str, str], Sketch] = {}
    statuses: dict[tuple[str, str], dict[str, int]] = {}
    for series in reg.series(REQUEST_DURATION):
        key = (series.tags.get("method", "OTHER"), series.tags.get("route", "<unmatched>"))
        sketch = series.sketch() if window is None else series.window(window)
        if sketch.count == 0:
            continue
        merged.setdefault(key, Sketch()).merge(sketch)
        status = series.tags.get("status", "")
        per_status = statuses.setdefault(key, {})
        per_status[status] = per_status.get(status, 0) + sketch.count
    errors: dict[tuple[str, str], int] = {}
    for series in reg.series(ERRORS_TOTAL):
        key = (series.tags.get("method", "OTHER"), series.tags.get("route", "<unmatched>"))
        sketch = series.sketch() if window is None else series.window(window)
        errors[key] = errors.get(key, 0) + round(sketch.sum)
    out: dict[tuple[str, str], EndpointStats] = {}
    for key in sorted(merged, key=lambda k: (k[1], k[0])):
        s = merged[key]
        p50, p95, p99 = s.quantiles((0.5, 0.95, 0.99))
        failed = min(errors.get(key, 0), s.count)
        out[key] = EndpointStats(
            method=key[0],
            route=key[1],
            requests=s.count,
            errors=failed,
            error_rate=failed / s.count,
            p50=p50,
            p95=p95,
            p99=p99,
            mean=s.sum / s.count,
            max=s.max,
            statuses=dict(sorted(statuses[key].items())),
        )
    return out
