"""Threshold alerts on metrics: ``PerformanceAlert`` rules and the ``AlertEngine``.

A rule compares each observed value of one metric with a threshold. The engine keeps a small
state machine per rule and series (a series is one tag set of the metric), with Prometheus
``for:`` semantics:

``inactive`` -> ``pending`` when the condition starts holding; ``pending`` -> ``firing`` (one
notification) once it has held for the whole ``duration``; ``pending`` -> ``inactive`` when
it stops holding first (no notification); ``firing`` -> ``inactive`` when it stops holding (a
"resolved" notification). A series fires again only after it resolved, and never sooner than
``cooldown`` seconds after it last fired.

Evaluation happens on each observed value (the last value holds until the next one) and costs
a dict lookup for metrics without rules. Notifications go to a dispatcher (by default the
background thread in :mod:`.notifiers`), so the recording thread never waits on a callback,
an SMTP server or a webhook.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .._core.errors import error_reporter
from .alerts_rule import CHANNELS, COMPARISONS, PerformanceAlert
from .model import PerformanceMetric

__all__ = [
    "CHANNELS",
    "COMPARISONS",
    "AlertEngine",
    "AlertNotice",
    "PerformanceAlert",
    "get_alert_engine",
]

MAX_SERIES_PER_RULE = 1_000
"""Most tag sets one rule tracks at once (pending, firing or cooling down)."""


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """One notification: an alert fired or resolved for one series.

    Attributes:
        state: ``"firing"`` or ``"resolved"``.
        alert: the rule.
        metric: the observation that changed the state.
        held_for: seconds the condition had held (firing) or had been firing (resolved).
    """

    state: Literal["firing", "resolved"]
    alert: PerformanceAlert
    metric: PerformanceMetric
    held_for: float


_PENDING, _FIRING, _COOLING = 1, 2, 3
SeriesKey = tuple[tuple[str, str], ...]


class _Series:
    __slots__ = ("fired_at", "phase", "since")

    def __init__(self, now: float) -> None:
        self.phase = _PENDING
        self.since = now
        self.fired_at = -math.inf


class _Rule:
    """An alert as the engine evaluates it: the operator resolved once, the series' states."""

    __slots__ = ("alert", "cooldown", "duration", "op", "series", "tags", "threshold")

    def __init__(self, alert: PerformanceAlert) -> None:
        self.alert = alert
        self.op = COMPARISONS[alert.comparison][0]
        self.threshold = alert.threshold
        self.duration = alert.duration
        self.cooldown = alert.cooldown
        self.tags = tuple(alert.tags.items())
        self.series: dict[SeriesKey, _Series] = {}


Dispatch = Callable[[AlertNotice], object]


class AlertEngine:
    """Evaluates alert rules on observed metrics and hands notifications to a dispatcher.

    Args:
        clock: monotonic seconds; inject a fake clock in tests.
        dispatch: receives each :class:`AlertNotice` (default: the background dispatcher of
            :mod:`.notifiers`); it must be quick and must not raise.

    Thread-safe: one lock guards the states. Observing a metric without rules, or a value
    that meets no rule's condition while nothing is pending or firing, takes no lock.
    """

    def __init__(
        self, *, clock: Callable[[], float] = time.monotonic, dispatch: Dispatch | None = None
    ) -> None:
        self.clock = clock
        """Monotonic seconds used for durations and cooldowns (replace it in tests)."""
        self._dispatch = dispatch
        self._lock = threading.Lock()
        self._index: dict[str, tuple[_Rule, ...]] = {}
        self.fired = 0
        self.resolved = 0
        self.evicted = 0

    # --- rules ---------------------------------------------------------------------------

    def add(self, alert: PerformanceAlert) -> PerformanceAlert:
        """Start evaluating ``alert``; adding the same alert again changes nothing.

        Raises:
            TypeError: ``alert`` is not a :class:`PerformanceAlert`.
        """
        if not isinstance(alert, PerformanceAlert):
            raise TypeError(
                f"expected a PerformanceAlert, got {alert!r}; build one with "
                'PerformanceAlert(metric_name="response_time", threshold=2.0, comparison="gt")'
            )
        with self._lock:
            rules = self._index.get(alert.metric_name, ())
            if all(r.alert is not alert for r in rules):
                index = dict(self._index)
                index[alert.metric_name] = (*rules, _Rule(alert))
                self._index = index  # replaced, never mutated: observe reads it without a lock
        return alert

    def remove(self, alert: PerformanceAlert | str) -> bool:
        """Stop evaluating an alert, or every alert with that metric name or alert name.

        Returns:
            True when something was removed.
        """
        with self._lock:
            index: dict[str, tuple[_Rule, ...]] = {}
            removed = False
            for name, rules in self._index.items():
                kept = tuple(r for r in rules if not _is(r.alert, alert))
                removed = removed or len(kept) != len(rules)
                if kept:
                    index[name] = kept
            self._index = index
            return removed

    def clear(self) -> None:
        """Remove every alert."""
        with self._lock:
            self._index = {}

    def alerts(self) -> tuple[PerformanceAlert, ...]:
        """The registered alerts, in the order they were added per metric."""
        return tuple(rule.alert for rules in self._index.values() for rule in rules)

    @property
    def active(self) -> bool:
        """Whether any alert is registered (recording skips the engine when not)."""
        return bool(self._index)

    def watches(self, metric_name: str) -> bool:
        """Whether any alert watches ``metric_name`` (check it before building a metric)."""
        return metric_name in self._index

    def states(self, alert: PerformanceAlert) -> dict[SeriesKey, str]:
        """The non-inactive series of ``alert``: sorted tag pairs -> pending/firing/cooling."""
        names = {_PENDING: "pending", _FIRING: "firing", _COOLING: "cooling"}
        with self._lock:
            for rule in self._index.get(alert.metric_name, ()):
                if rule.alert is alert:
                    return {k: names[s.phase] for k, s in rule.series.items()}
        return {}

    def stats(self) -> dict[str, int]:
        """Rules, series being tracked, notifications fired and resolved, evicted series."""
        with self._lock:
            rules = [rule for rules in self._index.values() for rule in rules]
            tracked = sum(len(rule.series) for rule in rules)
        return {
            "rules": len(rules),
            "series": tracked,
            "fired": self.fired,
            "resolved": self.resolved,
            "evicted": self.evicted,
        }

    # --- evaluation ----------------------------------------------------------------------

    def observe_value(
        self, name: str, value: float, build: Callable[[], PerformanceMetric]
    ) -> None:
        """:meth:`observe` for a value not yet wrapped in a :class:`PerformanceMetric`:
        ``build`` is called only when a rule of ``name`` holds or has a series to follow,
        so values that concern no rule cost a comparison per rule and nothing else."""
        rules = self._index.get(name)
        if rules is None or value != value:
            return
        for rule in rules:
            if rule.series or rule.op(value, rule.threshold):
                break
        else:
            return
        self.observe(build())

    def observe(self, metric: PerformanceMetric) -> None:
        """Evaluate the alerts of ``metric.name`` on ``metric.value``. Never raises.

        NaN values are ignored (no data); the metric's tags select the series.
        """
        rules = self._index.get(metric.name)
        if rules is None:
            return
        notices: list[AlertNotice] = []
        try:
            value = metric.value
            if value != value:  # NaN: no data, the state stays as it was
                return
            tags = metric.tags
            key: SeriesKey | None = None
            for rule in rules:
                held = rule.op(value, rule.threshold)
                if not held and not rule.series:
                    continue  # the common case: nothing to start, nothing to resolve
                if rule.tags and not all(tags.get(k) == v for k, v in rule.tags):
                    continue
                if key is None:
                    key = tuple(sorted(tags.items())) if tags else ()
                with self._lock:
                    self._step(rule, key, held, self.clock(), metric, notices)
        except Exception as exc:  # noqa: BLE001 - recording never fails because of alerts
            error_reporter.report("alert-evaluate", f"could not evaluate alerts: {exc!r}")
        for notice in notices:
            self._send(notice)

    def _step(
        self,
        rule: _Rule,
        key: SeriesKey,
        held: bool,
        now: float,
        metric: PerformanceMetric,
        notices: list[AlertNotice],
    ) -> None:
        series = rule.series
        state = series.get(key)
        if held:
            if state is None:
                if len(series) >= MAX_SERIES_PER_RULE:
                    self._evict(series)
                state = series[key] = _Series(now)
            elif state.phase == _COOLING:
                state.phase, state.since = _PENDING, now
            if (
                state.phase == _PENDING
                and now - state.since >= rule.duration
                and now - state.fired_at >= rule.cooldown
            ):
                state.phase, state.fired_at = _FIRING, now
                self.fired += 1
                notices.append(AlertNotice("firing", rule.alert, metric, now - state.since))
            return
        if state is None:
            return
        if state.phase == _FIRING:
            self.resolved += 1
            notices.append(AlertNotice("resolved", rule.alert, metric, now - state.fired_at))
        if now - state.fired_at < rule.cooldown:
            state.phase = _COOLING  # remembered so the cooldown still applies
        else:
            del series[key]

    def _evict(self, series: dict[SeriesKey, _Series]) -> None:
        """Make room: forget the oldest series that is not firing (else the oldest)."""
        victim = next((k for k, s in series.items() if s.phase != _FIRING), None)
        del series[victim if victim is not None else next(iter(series))]
        self.evicted += 1

    def _send(self, notice: AlertNotice) -> None:
        dispatch = self._dispatch
        try:
            if dispatch is None:
                from .notifiers import get_dispatcher

                dispatch = get_dispatcher().submit
            dispatch(notice)
        except Exception as exc:  # noqa: BLE001
            error_reporter.report("alert-dispatch", f"could not dispatch an alert: {exc!r}")


def _is(rule: PerformanceAlert, wanted: PerformanceAlert | str) -> bool:
    if isinstance(wanted, str):
        return wanted in (rule.metric_name, rule.name)
    return rule is wanted


_engine: AlertEngine | None = None
_engine_lock = threading.Lock()


def get_alert_engine() -> AlertEngine:
    """Return the process-wide engine that ``performance_logger.add_alert`` registers with."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = AlertEngine()
    return _engine
