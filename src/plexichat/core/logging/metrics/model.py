"""``PerformanceMetric``: one recorded value, as listeners and alert callbacks receive it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._core.errors import PlexiLoggingError

__all__ = ["MetricError", "PerformanceMetric"]


@dataclass(frozen=True, slots=True)
class PerformanceMetric:
    """One recorded value of a metric.

    Attributes:
        name: the metric name (``"response_time"``).
        value: the recorded value, in ``unit``.
        unit: the unit (``"seconds"``, ``"bytes"``, ``"count"``, ``"percent"`` or ``""``).
        timestamp: when it was recorded, in seconds since the epoch.
        tags: the series labels (``{"endpoint": "/api/users"}``).
        metadata: anything else the producer attached (``{"error": "ValueError"}``).

    Example:
        >>> m = PerformanceMetric("response_time", 0.25, "seconds", 1705314645.0, {}, {})
        >>> m.value
        0.25
    """

    name: str
    value: float
    unit: str
    timestamp: float
    tags: Mapping[str, str] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)


class MetricError(PlexiLoggingError, ValueError):
    """A metric call was given an invalid name, tag, unit or value type.

    The message names the bad value, what is allowed and how to fix it.
    """
