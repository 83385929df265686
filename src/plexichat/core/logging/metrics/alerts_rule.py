"""``PerformanceAlert``: one validated threshold rule (see :mod:`.alerts` for the engine)."""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .model import PerformanceMetric

__all__ = ["CHANNELS", "COMPARISONS", "SEVERITIES", "AlertCallback", "PerformanceAlert"]

COMPARISONS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "gt": (operator.gt, ">"),
    "gte": (operator.ge, ">="),
    "lt": (operator.lt, "<"),
    "lte": (operator.le, "<="),
    "eq": (operator.eq, "=="),
    "ne": (operator.ne, "!="),
}
"""Allowed comparisons: name -> (operator, symbol)."""

CHANNELS = ("callback", "log", "email", "webhook")
"""Notification channels an alert can use (``notify=``)."""

SEVERITIES = ("warning", "error")

AlertCallback = Callable[[PerformanceMetric], object]


def _number(what: str, value: object, fix: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"invalid {what} {value!r}: expected a number; {fix}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"invalid {what} {value!r}: NaN and infinity are not allowed; {fix}")
    return number


def _seconds(what: str, value: object) -> float:
    fix = f"give the {what} in seconds (a number >= 0), e.g. {what}=60"
    seconds = _number(what, value, fix)
    if seconds < 0:
        raise ValueError(f"invalid {what} {value!r}: must not be negative; {fix}")
    return seconds


@dataclass(frozen=True, slots=True, eq=False)
class PerformanceAlert:
    """A threshold rule on one metric, sustained for a duration.

    Args:
        metric_name: the metric the rule watches, e.g. ``"response_time"``.
        threshold: the value compared with each observation (a finite number).
        comparison: ``"gt"``, ``"gte"``, ``"lt"``, ``"lte"``, ``"eq"`` or ``"ne"``: the
            condition is ``value <comparison> threshold``.
        duration: seconds the condition must hold before the alert fires (0: at once).
        callback: called with the :class:`PerformanceMetric` that made the alert fire, on a
            background thread; an exception it raises is logged, never propagated.
        name: a label for notifications (default: ``"response_time > 2"``).
        tags: watch only series whose tags include all of these.
        cooldown: the least number of seconds between two firings of the same series.
        severity: ``"warning"`` or ``"error"``: the level of the log record and the tone of
            e-mails and webhook messages.
        notify: the channels used, a subset of ``callback``, ``log``, ``email`` and
            ``webhook``; default all (e-mail and webhook only when configured and
            ``alerts_enabled``).

    Raises:
        ValueError: an argument is invalid; the message names it, what is allowed and the fix.

    Example:
        >>> alert = PerformanceAlert(metric_name="response_time", threshold=2.0,
        ...                          comparison="gt", duration=60)
        >>> alert.name, alert.holds(2.5), alert.holds(1.0)
        ('response_time > 2', True, False)
    """

    metric_name: str
    threshold: float
    comparison: Literal["gt", "gte", "lt", "lte", "eq", "ne"] = "gt"
    duration: float = 0.0
    callback: AlertCallback | None = None
    name: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    cooldown: float = 0.0
    severity: Literal["warning", "error"] = "warning"
    notify: Collection[str] = frozenset(CHANNELS)

    def __post_init__(self) -> None:
        put = object.__setattr__
        if not isinstance(self.metric_name, str) or not self.metric_name.strip():
            raise ValueError(
                f"invalid metric_name {self.metric_name!r}: expected the non-empty name of a "
                'metric, e.g. metric_name="response_time"'
            )
        put(self, "threshold", _number("threshold", self.threshold, "e.g. threshold=2.0"))
        if self.comparison not in COMPARISONS:
            raise ValueError(
                f"invalid comparison {self.comparison!r}: allowed are "
                f"{', '.join(COMPARISONS)}; e.g. comparison='gt' for 'greater than'"
            )
        put(self, "duration", _seconds("duration", self.duration))
        put(self, "cooldown", _seconds("cooldown", self.cooldown))
        if self.callback is not None and not callable(self.callback):
            raise ValueError(
                f"invalid callback {self.callback!r}: expected a function taking the metric, "
                "e.g. callback=lambda metric: print(metric.value), or None"
            )
        if self.severity not in SEVERITIES:
            raise ValueError(
                f"invalid severity {self.severity!r}: allowed are {', '.join(SEVERITIES)}"
            )
        put(self, "tags", _tags(self.tags))
        put(self, "notify", _channels(self.notify))
        if not isinstance(self.name, str):
            raise ValueError(f"invalid name {self.name!r}: expected a string or leave it out")
        if not self.name:
            symbol = COMPARISONS[self.comparison][1]
            put(self, "name", f"{self.metric_name} {symbol} {self.threshold:g}")

    @property
    def symbol(self) -> str:
        """The comparison as an operator: ``">"``, ``">="``, ..."""
        return COMPARISONS[self.comparison][1]

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the condition (``value <comparison> threshold``)."""
        return bool(COMPARISONS[self.comparison][0](value, self.threshold))

    def matches(self, tags: Mapping[str, str]) -> bool:
        """Whether a series with ``tags`` is watched (it has every tag of the rule)."""
        return all(tags.get(k) == v for k, v in self.tags.items())


def _tags(value: object) -> Mapping[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(
            f"invalid tags {value!r}: expected a mapping of strings to strings, "
            'e.g. tags={"endpoint": "/api/users"}'
        )
    return dict(value)


def _channels(value: object) -> frozenset[str]:
    if value is None:
        return frozenset(CHANNELS)
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ValueError(f"invalid notify {value!r}: expected channel names from {CHANNELS}")
    chosen = frozenset(items)
    unknown = sorted(str(c) for c in chosen if c not in CHANNELS)
    if unknown:
        raise ValueError(
            f"invalid notify {value!r}: unknown channel {unknown[0]!r}; allowed are "
            f"{', '.join(CHANNELS)}, e.g. notify={{'log', 'webhook'}}"
        )
    return chosen
