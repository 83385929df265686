"""Performance monitoring: timers, custom metrics, alerts, summaries and trends.

Example:
    >>> from plexichat.core.logging.performance_logger import timer, record_metric
    >>> with timer("database_query", tags={"table": "users"}):
    ...     pass
    >>> record_metric("active_users", 1250, "count")

See ``docs/performance.md`` for metric names, units, history, trends and Prometheus.
"""

from __future__ import annotations

from .metrics.alerts import PerformanceAlert
from .metrics.model import MetricError, PerformanceMetric
from .metrics.perf import PerformanceLogger, get_performance_logger
from .metrics.timing import record_metric, time_function, timer

__all__ = [
    "MetricError",
    "PerformanceAlert",
    "PerformanceLogger",
    "PerformanceMetric",
    "get_performance_logger",
    "performance_logger",
    "record_metric",
    "time_function",
    "timer",
]

performance_logger: PerformanceLogger = get_performance_logger()
"""The process-wide performance logger (``performance_logger.add_alert(alert)``)."""
