"""``ThreatDetector``: runs the detection rules over security events and calls alert hooks.

The security logger hands it every event it writes (never the events the detector derives
itself, nor events logged from inside an alert hook), writes the derived events it returns
as SECURITY records and then passes each alert to the hooks. Ordinary log records never
reach it: with detection off, or for records that are not security events, it costs nothing.

Thread-safe: one lock guards the rules' state; the injection scan runs before taking it.
State is bounded: each rule's maps hold at most ``max_keys`` keys (least recently used
evicted and counted), whatever number of IPs or users an attacker uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from .._core.errors import error_reporter
from .._core.event import safe_repr
from .detection_config import merged_rules
from .detection_patterns import scan_event
from .detection_rules import EventView, Rule, ThreatAlert, build_rules
from .detection_state import ip_key, text_key
from .events import DETECTION_SOURCE, SecurityEvent, event_type_of, resolved_severity

__all__ = ["AlertHook", "ThreatAlert", "ThreatDetector", "get_threat_detector"]

AlertHook = Callable[[ThreatAlert], object]
"""An alert hook: any callable taking a :class:`ThreatAlert`; its result is ignored."""

DEFAULT_MAX_KEYS = 100_000


class ThreatDetector:
    """Configurable detection rules over sliding windows keyed by IP and user.

    Args:
        rules: overrides of :data:`DEFAULT_THREAT_RULES` (validated like the
            ``threat_rules`` setting), e.g. ``{"brute_force": {"threshold": 3}}``.
        max_keys: the most keys each map of each rule holds.
        clock: seconds from an arbitrary origin; inject a fake one in tests.

    Raises:
        ValueError: a rule or parameter is invalid (named in the message).

    Example:
        >>> detector = ThreatDetector({"brute_force": {"threshold": 2}})
        >>> failure = SecurityEvent("login_failure", user_id="ann", ip_address="10.0.0.1")
        >>> detector.observe(failure)
        []
        >>> [alert.event.event_type.value for alert in detector.observe(failure)]
        ['brute_force_attempt']
    """

    def __init__(
        self,
        rules: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        max_keys: int = DEFAULT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._hooks: tuple[AlertHook, ...] = ()
        self._hooks_lock = threading.Lock()
        self._followed: object = None
        self._applied: tuple[object, int] | None = None
        self.settings: dict[str, dict[str, Any]] = {}
        self.max_keys: int = max_keys
        self._rules: list[Rule] = []
        self._scan_length = 0
        self.alerts: dict[str, int] = {}
        """Alerts raised per rule since the last :meth:`configure` or :meth:`reset`."""
        self.configure(rules, max_keys=max_keys)

    # --- configuration -------------------------------------------------------------------

    def configure(
        self, rules: Mapping[str, Mapping[str, Any]] | None = None, *, max_keys: int | None = None
    ) -> None:
        """Replace the rule settings (overrides of the defaults); all state starts afresh.

        Raises:
            ValueError: a rule, parameter or ``max_keys`` is invalid.
        """
        settings = merged_rules(rules)
        cap: object = self.max_keys if max_keys is None else max_keys
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1:
            raise ValueError(f"invalid max_keys {cap!r}: expected a whole number >= 1")
        built = build_rules(settings, cap)
        injection = settings["injection"]
        with self._lock:
            self.settings = settings
            self.max_keys = cap
            self._rules = built
            self._scan_length = int(injection["max_length"]) if injection["enabled"] else 0
            self.alerts = {}
            self._followed, self._applied = None, None  # follow_config applies config again

    def follow_config(self, config: Any) -> None:
        """Apply a logging configuration's ``threat_rules`` and ``threat_max_tracked_keys``
        when they changed (state is kept when they did not)."""
        if config is self._followed:
            return
        wanted = (config.threat_rules, config.threat_max_tracked_keys)
        if wanted != self._applied:
            self.configure(config.threat_rules, max_keys=config.threat_max_tracked_keys)
            self._applied = wanted
        self._followed = config

    def reset(self) -> None:
        """Forget all state and alert counts; the settings stay."""
        self.configure(self.settings, max_keys=self.max_keys)

    # --- detection -----------------------------------------------------------------------

    def observe(self, event: SecurityEvent) -> list[ThreatAlert]:
        """Run every enabled rule on ``event``; return the alerts it raises. Never raises.

        Events the detector derived (``source == "threat_detection"``) are ignored.
        """
        try:
            if getattr(event, "source", None) == DETECTION_SOURCE:
                return []
            view = self._view(event)
            now = self._clock()
            alerts: list[ThreatAlert] = []
            with self._lock:
                for rule in self._rules:
                    found = rule.observe(view, now)
                    if found:
                        alerts.extend(found)
                for alert in alerts:
                    self.alerts[alert.rule] = self.alerts.get(alert.rule, 0) + 1
            return alerts
        except Exception as exc:  # noqa: BLE001 - detection never breaks logging
            error_reporter.report("threat-detection", f"threat detection failed: {exc!r}")
            return []

    def _view(self, event: SecurityEvent) -> EventView:
        raw_type = getattr(event, "event_type", None)
        event_type = event_type_of(raw_type)
        type_key = event_type.value if event_type is not None else text_key(raw_type) or "unknown"
        scan = self._scan_length
        return EventView(
            event,
            event_type,
            type_key,
            resolved_severity(getattr(event, "severity", None), event_type),
            text_key(getattr(event, "user_id", None)),
            ip_key(getattr(event, "ip_address", None)),
            scan_event(event, scan) if scan else [],
        )

    # --- alert hooks ---------------------------------------------------------------------

    def add_alert_hook(self, hook: AlertHook) -> AlertHook:
        """Call ``hook(alert)`` for every alert from now on; returns ``hook`` (a decorator).

        Hooks run on the thread that logged the triggering event, right after the derived
        event is written: keep them fast (hand slow work such as HTTP calls to a queue). A
        hook that raises is reported once on stderr and never affects logging. Security
        events a hook logs are written but not analyzed (no detection loops).
        """
        with self._hooks_lock:
            if hook not in self._hooks:
                self._hooks = (*self._hooks, hook)
        return hook

    def remove_alert_hook(self, hook: AlertHook) -> bool:
        """Stop calling ``hook``; False when it was not registered."""
        with self._hooks_lock:
            if hook not in self._hooks:
                return False
            self._hooks = tuple(h for h in self._hooks if h != hook)
            return True

    @property
    def alert_hooks(self) -> tuple[AlertHook, ...]:
        """The registered hooks, in registration order."""
        return self._hooks

    def notify(self, alert: ThreatAlert) -> None:
        """Pass ``alert`` to every hook; a failing hook is reported, never raised."""
        for hook in self._hooks:
            try:
                hook(alert)
            except Exception as exc:  # noqa: BLE001 - a hook never breaks logging
                name = getattr(hook, "__qualname__", None) or safe_repr(hook)
                error_reporter.report(
                    f"alert-hook-{name}", f"threat alert hook {name} failed: {exc!r}"
                )

    # --- statistics ----------------------------------------------------------------------

    @property
    def tracked_keys(self) -> int:
        """How many keys all rules hold right now."""
        with self._lock:
            return sum(len(m) for rule in self._rules for m in rule.maps())

    def stats(self) -> dict[str, Any]:
        """Enabled rules, keys held per rule, the per-map cap, evictions and alerts."""
        with self._lock:
            keys = {rule.name: sum(len(m) for m in rule.maps()) for rule in self._rules}
            evictions = {rule.name: sum(m.evictions for m in rule.maps()) for rule in self._rules}
            return {
                "rules": [rule.name for rule in self._rules],
                "tracked_keys": sum(keys.values()),
                "keys": keys,
                "max_keys": self.max_keys,
                "evictions": evictions,
                "alerts": dict(self.alerts),
            }


_detector: ThreatDetector | None = None
_detector_lock = threading.Lock()


def get_threat_detector() -> ThreatDetector:
    """Return the process-wide detector the security logger uses.

    It follows the logging configuration (``threat_detection_enabled``, ``threat_rules``,
    ``threat_max_tracked_keys``); register alert hooks on it with
    :meth:`ThreatDetector.add_alert_hook`.
    """
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                _detector = ThreatDetector()
    return _detector
