"""``PerformanceLogger``: alerts, current metrics, summaries and trends in one object."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from .._config.units import parse_duration
from .alerts import AlertEngine, PerformanceAlert, get_alert_engine
from .model import MetricError, PerformanceMetric
from .registry import MetricsRegistry, Series, get_registry, normalize_tags, summarize
from .sketch import Sketch
from .timing import record_metric, time_function, timer
from .trends import trend
from .window import HORIZON

__all__ = ["WINDOWS", "PerformanceLogger", "get_performance_logger", "parse_window"]

WINDOWS: Mapping[str, float] = {"1m": 60.0, "5m": 300.0, "1h": 3600.0}
"""The rolling windows reported by :meth:`PerformanceLogger.get_trends`."""


def parse_window(window: float | str) -> float:
    """Seconds of a window given as a number or as text (``"5m"``, ``"1 hour"``).

    Raises:
        MetricError: not a positive duration of at most one hour.
    """
    try:
        seconds = parse_duration(window)
    except (ValueError, TypeError) as exc:
        raise MetricError(f"invalid window {window!r}: {exc}") from None
    if seconds is None or not 0 < seconds <= HORIZON:
        raise MetricError(
            f"invalid window {window!r}: use a duration above 0 and at most one hour "
            '(e.g. 300 or "5m")'
        )
    return float(seconds)


def _matches(series: Series, wanted: tuple[tuple[str, str], ...]) -> bool:
    return all(series.tags.get(k) == v for k, v in wanted)


def _describe(series: Series, s: Sketch) -> dict[str, Any]:
    return {
        "name": series.name,
        "kind": series.kind,
        "unit": series.unit,
        "tags": dict(series.tags),
        "last": None if math.isnan(series.last) else series.last,
        "updated": series.updated,
        **summarize(s),
    }


class PerformanceLogger:
    """Alert rules and read access to the recorded metrics.

    Use the module-level ``performance_logger`` (or :func:`get_performance_logger`); the
    recording functions ``timer``, ``time_function`` and ``record_metric`` are also methods.

    Args:
        registry: the metrics registry (default: the process-wide one).
        engine: the alert engine (default: the process-wide one).
    """

    timer = staticmethod(timer)
    time_function = staticmethod(time_function)
    record_metric = staticmethod(record_metric)

    def __init__(
        self, registry: MetricsRegistry | None = None, engine: AlertEngine | None = None
    ) -> None:
        self._registry = registry
        self._engine = engine

    @property
    def registry(self) -> MetricsRegistry:
        """The registry the metrics are read from."""
        return self._registry if self._registry is not None else get_registry()

    @property
    def engine(self) -> AlertEngine:
        """The alert engine rules are added to."""
        return self._engine if self._engine is not None else get_alert_engine()

    def add_alert(self, alert: PerformanceAlert) -> PerformanceAlert:
        """Start evaluating ``alert`` against every value recorded for its metric.

        Returns:
            The alert (so ``remove_alert`` can be given it later).
        """
        return self.engine.add(alert)

    def remove_alert(self, alert: PerformanceAlert | str) -> bool:
        """Stop an alert, or every alert with that metric name or alert name.

        Returns:
            True when an alert was removed.
        """
        return self.engine.remove(alert)

    def alerts(self) -> tuple[PerformanceAlert, ...]:
        """The alerts being evaluated."""
        return self.engine.alerts()

    def increment(
        self, name: str, amount: float = 1.0, tags: Mapping[str, object] | None = None
    ) -> None:
        """Add ``amount`` to the counter ``name`` (``requests_total``).

        Alert rules on ``name`` are evaluated on the running total.
        """
        series = self.registry.counter(name, tags)
        self._feed(series, series.inc(amount), lambda: series.value)

    def set_gauge(
        self, name: str, value: float, unit: str = "", tags: Mapping[str, object] | None = None
    ) -> None:
        """Set the gauge ``name`` to ``value`` (``queue_depth``).

        Alert rules on ``name`` are evaluated on the value.
        """
        series = self.registry.gauge(name, tags, unit)
        self._feed(series, series.set(value), lambda: series.last)

    def _feed(self, series: Series, now: float | None, value: Callable[[], float]) -> None:
        """Evaluate the alert rules of ``series`` on a value recorded at ``now`` (None: the
        value was dropped); ``value`` is read only when a rule watches the name."""
        engine = self.engine
        if now is None or not engine.active or not engine.watches(series.name):
            return
        current = value()
        engine.observe_value(
            series.name,
            current,
            lambda: PerformanceMetric(series.name, current, series.unit, now, series.tags),
        )

    def get_metrics(
        self,
        name: str | None = None,
        tags: Mapping[str, object] | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """The series recorded so far, one dict per name and tag set.

        Args:
            name: only this metric.
            tags: only series having all of these tags.
            since: epoch seconds: summarize only the values recorded since then (at most one
                hour back, slot-aligned) and leave out series without any.

        Returns:
            ``[{"name", "kind", "unit", "tags", "last", "updated", "count", "sum", "min",
            "max", "mean", "p50", "p95", "p99"}]``; ``kind`` is ``counter``, ``gauge`` or
            ``histogram``; statistics are over every value (or those since ``since``). A
            distribution without any value yet (a decorated function never called) is left
            out.
        """
        wanted = normalize_tags(tags)
        registry = self.registry
        now = registry.clock()
        out = []
        for series in registry.series(name):
            if not _matches(series, wanted):
                continue
            if since is None:
                sketch = series.sketch()
                if sketch.count or series.kind != "histogram":  # not a timer never used yet
                    out.append(_describe(series, sketch))
                continue
            s = series.window(min(max(now - since, 0.0), HORIZON), now)
            if s.count:
                out.append(_describe(series, s))
        return out

    def get_summary(
        self,
        name: str,
        window: float | str = "5m",
        tags: Mapping[str, object] | None = None,
    ) -> dict[str, Any]:
        """Statistics and trend of ``name`` over the last ``window``, all tag sets merged.

        Args:
            name: the metric name.
            window: seconds or text (``"1m"``, ``"5m"``, ``"1h"``); at most one hour.
            tags: only series having all of these tags.

        Returns:
            ``{"name", "unit", "kind", "window", "count", "sum", "min", "max", "mean",
            "p50", "p95", "p99", "rate", "trend"}``: ``rate`` is values per second (for a
            counter: increase per second); ``trend`` is ``{"slope", "direction", "points",
            "anomalies"}`` over the 10-second (60-second past five minutes) slot means.
            Statistics are NaN when nothing was recorded in the window.

        Raises:
            MetricError: the window is not a duration of at most one hour.
        """
        seconds = parse_window(window)
        wanted = normalize_tags(tags)
        registry = self.registry
        now = registry.clock()
        merged = Sketch()
        slots: dict[float, Sketch] = {}
        unit, kind = "", "histogram"
        for series in registry.series(name):
            if not _matches(series, wanted):
                continue
            unit, kind = series.unit, series.kind
            for t, s in series.points(seconds, now):
                merged.merge(s)
                slots.setdefault(t, Sketch()).merge(s)
        counter = kind == "counter"
        points = [(t, s.sum if counter else s.sum / s.count) for t, s in sorted(slots.items())]
        stats = summarize(merged)
        rate = (merged.sum if counter else merged.count) / seconds
        return {
            "name": name,
            "unit": unit,
            "kind": kind,
            "window": seconds,
            **stats,
            "rate": rate,
            "trend": trend(points),
        }

    def get_trends(
        self, name: str, tags: Mapping[str, object] | None = None
    ) -> dict[str, dict[str, Any]]:
        """:meth:`get_summary` over the rolling windows ``"1m"``, ``"5m"`` and ``"1h"``."""
        return {key: self.get_summary(name, seconds, tags) for key, seconds in WINDOWS.items()}


_performance_logger = PerformanceLogger()


def get_performance_logger() -> PerformanceLogger:
    """The process-wide :class:`PerformanceLogger`."""
    return _performance_logger
