"""The process-wide metrics registry: counters, gauges and histograms keyed by name + tags.

Thread-safe (one lock per series, one for creating series), bounded (a relative-error sketch
per series, a cap on series per metric name with a counted overflow series) and observable
(listeners receive a :class:`PerformanceMetric` for every recorded value).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from .._core.errors import error_reporter
from .model import MetricError, PerformanceMetric
from .naming import RawKey, TagKey, exposed_names, normalize_tags, validate_name
from .sketch import Sketch
from .window import Slots

__all__ = [
    "DEFAULT_MAX_SERIES",
    "OVERFLOW_TAGS",
    "Counter",
    "Gauge",
    "Histogram",
    "Kind",
    "Listener",
    "MetricsRegistry",
    "Series",
    "SeriesSnapshot",
    "get_registry",
    "normalize_tags",
    "validate_name",
]

Kind = Literal["counter", "gauge", "histogram"]
Listener = Callable[[PerformanceMetric], None]

DEFAULT_MAX_SERIES = 1000
"""Distinct tag sets kept per metric name before values go to the overflow series."""
OVERFLOW_TAGS: Mapping[str, str] = MappingProxyType({"overflow": "true"})
"""The tags of the series that collects values whose tag set was over the cap."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_SELF_METRICS = {
    name: f"{base} (a self-metric)"
    for base in ("plexichat_metrics_overflow", "plexichat_metrics_rejected")
    for name in (base, f"{base}_total")
}
"""Exposition names of the self-metrics the Prometheus exposition adds."""


class Series:
    """One metric series (a name and one tag set); use the registry to get one.

    Attributes:
        name: the metric name.
        kind: ``"counter"``, ``"gauge"`` or ``"histogram"``.
        unit: the unit of its values.
        tags: its tags (read-only).
        last: the last recorded value (NaN before the first).
        updated: when it was last recorded (epoch seconds; 0 before the first).
    """

    __slots__ = ("_lock", "_registry", "_slots", "kind", "last", "name", "tags", "unit", "updated")

    def __init__(
        self, registry: MetricsRegistry, kind: Kind, name: str, tags: TagKey, unit: str
    ) -> None:
        self._registry = registry
        self._lock = threading.Lock()
        self.kind: Kind = kind
        self.name = name
        self.unit = unit
        self.tags: Mapping[str, str] = MappingProxyType(dict(tags))
        self.last = math.nan
        self.updated = 0.0
        self._slots = Slots(registry.clock())

    def _record(self, value: float) -> float:
        """Add a checked value; returns the time it was recorded."""
        registry = self._registry
        now = registry.clock()
        with self._lock:
            slots = self._slots
            (slots.cur if now < slots.slot_end else slots.roll(now)).add(value)
            self.last = value
            self.updated = now
        if registry._listeners:
            registry._emit(self, value, now, _EMPTY)
        return now

    def sketch(self) -> Sketch:
        """Every value recorded so far, as a new sketch (count, sum, min, max, quantiles)."""
        with self._lock:
            return self._slots.total()

    def window(self, seconds: float, now: float | None = None) -> Sketch:
        """The values of the last ``seconds`` (slot-aligned: 10 s up to 5 min, 60 s beyond)."""
        at = self._registry.clock() if now is None else now
        with self._lock:
            return self._slots.window(at, seconds)

    def points(self, seconds: float, now: float | None = None) -> list[tuple[float, Sketch]]:
        """(slot start, copy of the slot's sketch) for the last ``seconds``, oldest first."""
        at = self._registry.clock() if now is None else now
        with self._lock:
            return [(t, s.copy()) for t, s in self._slots.points(at, seconds)]


class Counter(Series):
    """A monotonically increasing count (``requests_total``)."""

    __slots__ = ()

    def inc(self, amount: float = 1.0) -> float | None:
        """Add ``amount`` (finite, not negative); a bad amount is reported and dropped.

        Returns:
            When it was recorded (epoch seconds), or None if the amount was dropped.
        """
        if _checked(self, amount) is None:
            return None  # NaN or infinite: already counted and reported
        if amount < 0:
            _reject(self, amount, "a counter only goes up; use a gauge for values that fall")
            return None
        return self._record(float(amount))

    @property
    def value(self) -> float:
        """The total so far."""
        with self._lock:
            return self._slots.closed.sum + self._slots.cur.sum


class Gauge(Series):
    """A value that goes up and down (``memory_usage``); windows keep the values set."""

    __slots__ = ()

    def set(self, value: float) -> float | None:
        """Set the current value (finite); a bad value is reported and dropped.

        Returns:
            When it was recorded (epoch seconds), or None if the value was dropped.
        """
        if _checked(self, value) is None:
            return None
        return self._record(float(value))

    @property
    def value(self) -> float:
        """The current value (NaN before the first ``set``)."""
        return self.last


class Histogram(Series):
    """A distribution of values (``response_time`` in seconds) with quantiles within 1%."""

    __slots__ = ()

    def observe(self, value: float) -> float | None:
        """Add one value (finite; not negative in ``seconds``).

        Returns:
            When it was recorded (epoch seconds), or None if the value was dropped: NaN,
            infinite and negative durations are reported once on stderr, counted in
            ``registry.rejected`` and never added.

        Raises:
            MetricError: ``value`` is not an int or float.
        """
        cls = value.__class__
        if (cls is float or cls is int) and value - value == 0 and value >= 0:
            return self._record(value)  # the common case: a finite, non-negative number
        if _checked(self, value) is None:
            return None
        if value < 0 and self.unit == "seconds":
            _reject(self, value, "a duration cannot be negative")
            return None
        return self._record(float(value))

    def quantile(self, q: float) -> float:
        """The value at quantile ``q`` (0..1) over every value so far (NaN when empty)."""
        return self.sketch().quantile(q)

    def summary(self) -> dict[str, float]:
        """``count, sum, min, max, mean, p50, p95, p99`` over every value so far."""
        return summarize(self.sketch())


def summarize(s: Sketch) -> dict[str, float]:
    """The standard summary of a sketch: count, sum, min, max, mean, p50, p95, p99."""
    if s.count == 0:
        nan = math.nan
        return {"count": 0, "sum": 0.0, "min": nan, "max": nan, "mean": nan} | {
            "p50": nan,
            "p95": nan,
            "p99": nan,
        }
    p50, p95, p99 = s.quantiles((0.5, 0.95, 0.99))
    return {
        "count": s.count,
        "sum": s.sum,
        "min": s.min,
        "max": s.max,
        "mean": s.sum / s.count,
        "p50": p50,
        "p95": p95,
        "p99": p99,
    }


def _checked(series: Series, value: object) -> float | None:
    """``value`` as a float if it is a finite real number, else report, count and None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MetricError(
            f"invalid value {value!r} for metric {series.name!r}: pass an int or float "
            "(e.g. record_metric(name, 12.5, 'ms'))"
        )
    if value - value != 0:  # NaN or infinite
        _reject(series, value, "the value must be finite")
        return None
    return float(value)


def _reject(series: Series, value: object, why: str) -> None:
    series._registry.rejected += 1
    error_reporter.report(
        "metrics.value",
        f"dropped value {value!r} of metric {series.name!r}: {why} (counted in "
        "registry.rejected; reported once)",
    )


@dataclass(frozen=True, slots=True)
class SeriesSnapshot:
    """A series at one moment, for exposition (Prometheus, the API, history)."""

    name: str
    kind: Kind
    unit: str
    tags: Mapping[str, str]
    last: float
    updated: float
    summary: Mapping[str, float] = field(default_factory=dict)


class MetricsRegistry:
    """Counters, gauges and histograms keyed by name and tags.

    Args:
        max_series: distinct tag sets per metric name; beyond it values go to the series
            tagged ``{"overflow": "true"}`` and are counted in :attr:`overflowed`.
        clock: returns the time in epoch seconds (a fake clock in tests).
    """

    def __init__(
        self, *, max_series: int = DEFAULT_MAX_SERIES, clock: Callable[[], float] = time.time
    ) -> None:
        self.max_series = max_series
        self.clock = clock
        self._lock = threading.Lock()
        self._lookup: dict[tuple[str, RawKey], Series] = {}
        self._by_name: dict[str, tuple[Kind, str, dict[TagKey, Series]]] = {}
        self._listeners: tuple[Listener, ...] = ()
        self.overflowed: dict[str, int] = {}
        """Per metric name, values routed to the overflow series."""
        self.rejected = 0
        """Values dropped because they were NaN, infinite or negative where not allowed."""
        self._exposed: dict[str, str] = dict(_SELF_METRICS)
        """Prometheus exposition name -> the metric name that takes it."""

    def counter(
        self, name: str, tags: Mapping[str, object] | None = None, unit: str = "count"
    ) -> Counter:
        """The counter ``name`` with ``tags`` (created on first use)."""
        return self._get(Counter, "counter", name, tags, unit)  # type: ignore[return-value]

    def gauge(self, name: str, tags: Mapping[str, object] | None = None, unit: str = "") -> Gauge:
        """The gauge ``name`` with ``tags`` (created on first use)."""
        return self._get(Gauge, "gauge", name, tags, unit)  # type: ignore[return-value]

    def histogram(
        self, name: str, tags: Mapping[str, object] | None = None, unit: str = "seconds"
    ) -> Histogram:
        """The histogram ``name`` with ``tags`` (created on first use)."""
        return self._get(Histogram, "histogram", name, tags, unit)  # type: ignore[return-value]

    def _get(
        self,
        cls: type[Series],
        kind: Kind,
        name: str,
        tags: Mapping[str, object] | None,
        unit: str,
    ) -> Series:
        try:
            raw = (name, tuple(tags.items())) if tags else (name, ())
            found = self._lookup.get(raw)
        except (TypeError, AttributeError):  # unhashable or not a mapping: the slow path says
            raw, found = None, None
        if found is not None and found.kind == kind and found.unit == unit:
            return found
        return self._create(cls, kind, name, tags, unit, raw)

    def _create(
        self,
        cls: type[Series],
        kind: Kind,
        name: str,
        tags: Mapping[str, object] | None,
        unit: str,
        raw: tuple[str, RawKey] | None,
    ) -> Series:
        validate_name(name)
        if not isinstance(unit, str):
            raise MetricError(f"invalid unit {unit!r} for metric {name!r}: pass text such as 'ms'")
        key = normalize_tags(tags)
        if kind == "histogram" and any(k == "quantile" for k, _ in key):
            raise MetricError(
                f"invalid tag name 'quantile' for the distribution {name!r}: the Prometheus "
                "exposition uses it for the quantiles; use another name (e.g. 'bucket')"
            )
        if raw is not None and any(v.__class__ is not str for _, v in raw[1]):
            raw = None  # 1, 1.0 and True are equal keys: only text tags take the cache
        with self._lock:
            family = self._by_name.get(name)
            if family is None:
                self._claim(name, kind, unit)
                family = (kind, unit, {})
                self._by_name[name] = family
            elif family[0] != kind or family[1] != unit:
                raise MetricError(
                    f"metric {name!r} is a {family[0]} in {family[1]!r}, not a {kind} in "
                    f"{unit!r}: use one kind and unit per name, or another name"
                )
            members = family[2]
            series = members.get(key)
            if series is None:
                if len(members) >= self.max_series:
                    self.overflowed[name] = self.overflowed.get(name, 0) + 1
                    over = tuple(OVERFLOW_TAGS.items())
                    series = members.get(over)
                    if series is None:
                        series = members[over] = cls(self, kind, name, over, unit)
                    error_reporter.report(
                        "metrics.cardinality",
                        f"metric {name!r} has more than {self.max_series} tag sets; further "
                        f"ones (first: {dict(key)!r}) are counted in the series tagged "
                        "overflow=true; keep unbounded values (ids, raw paths) out of tags",
                    )
                    return series
                series = members[key] = cls(self, kind, name, key, unit)
            if raw is not None:
                self._lookup[raw] = series
            return series

    def _claim(self, name: str, kind: Kind, unit: str) -> None:
        """Reserve the exposition names of a new metric; MetricError when another metric
        (or a self-metric) already has one of them. Called with the lock held."""
        names = exposed_names(name, kind, unit)
        for exposed in names:
            other = self._exposed.get(exposed)
            if other is not None:
                raise MetricError(
                    f"metric {name!r} ({kind} in {unit!r}) clashes with {other!r}: both "
                    f"would be exposed to Prometheus as {exposed!r}; rename one of them"
                )
        for exposed in names:
            self._exposed[exposed] = name

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn`` synchronously with every recorded value (it must be cheap, never raise)."""
        with self._lock:
            self._listeners = (*self._listeners, fn)

    def remove_listener(self, fn: Listener) -> None:
        """Stop calling ``fn`` (no error if it was not added)."""
        with self._lock:
            self._listeners = tuple(f for f in self._listeners if f != fn)

    def _emit(self, series: Series, value: float, now: float, meta: Mapping[str, Any]) -> None:
        metric = PerformanceMetric(series.name, value, series.unit, now, series.tags, meta)
        for fn in self._listeners:
            try:
                fn(metric)
            except Exception as exc:  # noqa: BLE001 - a listener never breaks recording
                error_reporter.report("metrics.listener", f"metric listener {fn!r} failed: {exc!r}")

    def series(self, name: str | None = None) -> list[Series]:
        """Every series (of ``name`` if given), in creation order."""
        with self._lock:
            families = [self._by_name[name]] if name in self._by_name else []
            if name is None:
                families = list(self._by_name.values())
            return [s for fam in families for s in fam[2].values()]

    def snapshot(self) -> list[SeriesSnapshot]:
        """Every series with its lifetime summary (count, sum, min, max, mean, quantiles)."""
        return [
            SeriesSnapshot(s.name, s.kind, s.unit, s.tags, s.last, s.updated, summarize(s.sketch()))
            for s in self.series()
        ]

    def clear(self) -> None:
        """Forget every series, listener and counter (tests and reconfiguration)."""
        with self._lock:
            self._lookup.clear()
            self._by_name.clear()
            self._listeners = ()
            self.overflowed.clear()
            self.rejected = 0
            self._exposed = dict(_SELF_METRICS)


_registry = MetricsRegistry()


def get_registry() -> MetricsRegistry:
    """The process-wide registry."""
    return _registry
