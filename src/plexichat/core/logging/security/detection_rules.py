"""The threat detection rules: each one looks at security events and returns alerts.

A rule is a small class with ``observe(view, now) -> list[ThreatAlert]``; ``now`` comes from
the detector's clock (monotonic seconds, injectable in tests) and ``view`` is the event with
its keys and injection findings worked out once. Rules keep their state in
:class:`~.detection_state.BoundedMap` instances listed by ``maps()``; the detector holds one
lock around every call, so rules need no locking of their own.

Defaults and parameters: :data:`~.detection_config.DEFAULT_THREAT_RULES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from .detection_patterns import Finding
from .detection_state import BoundedMap, CountWindow, DistinctWindow
from .events import (
    DETECTION_SOURCE,
    SecurityEvent,
    SecurityEventType,
    SecuritySeverity,
)

__all__ = ["EventView", "Rule", "ThreatAlert", "build_rules"]

_T = SecurityEventType


@dataclass(frozen=True, slots=True)
class ThreatAlert:
    """What a rule found, handed to every alert hook.

    Attributes:
        rule: the rule's name (``"brute_force"``, ``"injection"``, ...).
        event: the derived security event (written as a SECURITY record), or, for
            ``critical_event``, the observed event itself.
        key_type: what the rule counted by: ``"user"``, ``"ip"`` or ``"event_type"``.
        key: the user name, IP (an IPv6 /64 network) or event type.
        count: how many events made the rule fire (1 for single-event rules).
        derived: True when ``event`` is new (it is written); False when it is the observed
            event, already written.
    """

    rule: str
    event: SecurityEvent
    key_type: str
    key: str
    count: int
    derived: bool = True


@dataclass(slots=True)
class EventView:
    """An observed event with what the rules need worked out once."""

    event: SecurityEvent
    event_type: SecurityEventType | None
    type_key: str
    severity: SecuritySeverity | None
    user: str | None
    ip: str | None
    findings: list[Finding] = field(default_factory=list)


class Rule(Protocol):
    """A detection rule."""

    name: str

    def observe(self, view: EventView, now: float) -> list[ThreatAlert]:
        """Update the rule's state with one event; return the alerts it raises."""

    def maps(self) -> tuple[BoundedMap[Any], ...]:
        """The rule's state (for size limits and statistics)."""


def _derived(
    view: EventView,
    event_type: SecurityEventType,
    severity: str,
    details: dict[str, Any],
    indicator: str,
    mitigations: list[str],
) -> SecurityEvent:
    """A detector event about ``view``'s event: same user, address and request fields."""
    source = view.event
    return SecurityEvent(
        event_type,
        severity,
        user_id=source.user_id,
        ip_address=source.ip_address,
        details=details,
        source=DETECTION_SOURCE,
        endpoint=source.endpoint,
        threat_indicators=[indicator],
        mitigation_actions=mitigations,
        correlation_id=source.correlation_id,
    )


@dataclass(frozen=True, slots=True)
class _CountSpec:
    """What a counting rule counts, by which keys, and what it reports."""

    types: frozenset[SecurityEventType]
    keys: tuple[tuple[str, str], ...]  # (key type, threshold parameter)
    first_key_only: bool
    derived_type: SecurityEventType
    noun: str
    mitigations: Mapping[str, list[str]]
    extra: Mapping[str, Any] = field(default_factory=dict)


_COUNT_SPECS: dict[str, _CountSpec] = {
    "brute_force": _CountSpec(
        frozenset({_T.LOGIN_FAILURE}),
        (("user", "threshold"), ("ip", "ip_threshold")),
        False,
        _T.BRUTE_FORCE_ATTEMPT,
        "failed logins",
        {"user": ["require_mfa", "slow_down_logins"], "ip": ["block_ip", "require_captcha"]},
    ),
    "account_lockout": _CountSpec(
        frozenset({_T.LOGIN_FAILURE}),
        (("user", "threshold"),),
        True,
        _T.ACCOUNT_LOCKOUT,
        "failed logins",
        {"user": ["lock_account"]},
        {"recommendation": "lock_account"},
    ),
    "privilege_escalation": _CountSpec(
        frozenset({_T.PERMISSION_DENIED, _T.UNAUTHORIZED_ACCESS, _T.ACCESS_VIOLATION}),
        (("user", "threshold"), ("ip", "threshold")),
        True,
        _T.PRIVILEGE_ESCALATION,
        "denied accesses",
        {"user": ["review_permissions", "suspend_session"], "ip": ["block_ip"]},
    ),
}


class CountRule:
    """N matching events for one key (user or IP) within a window: brute force, account
    lockout and privilege-escalation attempts (repeated denials)."""

    def __init__(self, name: str, params: Mapping[str, Any], cap: int) -> None:
        self.name = name
        self.spec = _COUNT_SPECS[name]
        self.window = float(params["window"])
        self.cooldown = float(params["cooldown"])
        self.severity = str(params["severity"])
        self._state = {
            key_type: (BoundedMap[CountWindow](cap), partial(CountWindow, int(params[param])))
            for key_type, param in self.spec.keys
        }
        self._thresholds = {key_type: int(params[param]) for key_type, param in self.spec.keys}

    def maps(self) -> tuple[BoundedMap[Any], ...]:
        """One map per key type."""
        return tuple(state for state, _ in self._state.values())

    def observe(self, view: EventView, now: float) -> list[ThreatAlert]:
        """Count a matching event under each of its keys."""
        spec = self.spec
        if view.event_type not in spec.types:
            return []
        alerts: list[ThreatAlert] = []
        for key_type, (state, factory) in self._state.items():
            key = view.user if key_type == "user" else view.ip
            if key is None:
                continue
            count = state.get(key, factory).hit(now, self.window, self.cooldown)
            if count:
                alerts.append(self._alert(view, key_type, key, count))
            if spec.first_key_only:
                break
        return alerts

    def _alert(self, view: EventView, key_type: str, key: str, count: int) -> ThreatAlert:
        spec = self.spec
        details = {
            "rule": self.name,
            "key_type": key_type,
            "key": key,
            "count": count,
            "threshold": self._thresholds[key_type],
            "window_seconds": self.window,
            **spec.extra,
        }
        indicator = f"{count} {spec.noun} for {key_type} {key} within {self.window:g} s"
        event = _derived(
            view, spec.derived_type, self.severity, details, indicator,
            list(spec.mitigations[key_type]),
        )  # fmt: skip
        return ThreatAlert(self.name, event, key_type, key, count)


class CredentialStuffingRule:
    """One IP failing logins for many distinct users within a window (credential stuffing,
    password spraying)."""

    name = "credential_stuffing"

    def __init__(self, params: Mapping[str, Any], cap: int) -> None:
        self.threshold = int(params["threshold"])
        self.window = float(params["window"])
        self.cooldown = float(params["cooldown"])
        self.severity = str(params["severity"])
        self._by_ip = BoundedMap[DistinctWindow](cap)
        self._factory = partial(DistinctWindow, self.threshold)

    def maps(self) -> tuple[BoundedMap[Any], ...]:
        """Distinct users per IP."""
        return (self._by_ip,)

    def observe(self, view: EventView, now: float) -> list[ThreatAlert]:
        """Remember which user a failed login from this IP was for."""
        if view.event_type is not _T.LOGIN_FAILURE or view.ip is None or view.user is None:
            return []
        users = self._by_ip.get(view.ip, self._factory).hit(
            view.user, now, self.window, self.cooldown
        )
        if not users:
            return []
        details = {
            "rule": self.name,
            "key_type": "ip",
            "key": view.ip,
            "distinct_users": len(users),
            "users": sorted(users)[:20],
            "threshold": self.threshold,
            "window_seconds": self.window,
        }
        indicator = (
            f"failed logins for {len(users)} distinct users from {view.ip} within {self.window:g} s"
        )
        event = _derived(
            view, _T.CREDENTIAL_STUFFING, self.severity, details, indicator,
            ["block_ip", "require_captcha", "check_breached_passwords"],
        )  # fmt: skip
        return [ThreatAlert(self.name, event, "ip", view.ip, len(users))]


class _Cooling:
    """When a key last fired and how many findings were held back since."""

    __slots__ = ("fired", "suppressed")

    def __init__(self) -> None:
        self.fired: float | None = None
        self.suppressed = 0


class InjectionRule:
    """SQL injection, XSS, path traversal and log injection patterns in request fields.

    One derived event per kind and client (IP, else user) per cooldown; the next one
    carries how many were held back (``details.suppressed``).
    """

    name = "injection"

    def __init__(self, params: Mapping[str, Any], cap: int) -> None:
        self.cooldown = float(params["cooldown"])
        self.severity = str(params["severity"])
        self.max_length = int(params["max_length"])
        self._cooling = BoundedMap[_Cooling](cap)

    def maps(self) -> tuple[BoundedMap[Any], ...]:
        """Cooldown per kind and client."""
        return (self._cooling,)

    def observe(self, view: EventView, now: float) -> list[ThreatAlert]:
        """Report each kind of finding (the detector scans the fields before locking)."""
        alerts: list[ThreatAlert] = []
        key_type, key = ("ip", view.ip) if view.ip is not None else ("user", view.user or "-")
        for finding in view.findings:
            if finding.kind is view.event_type:
                continue  # the application reported this kind itself
            cooling = self._cooling.get(f"{finding.kind.value}|{key}", _Cooling)
            if cooling.fired is not None and now - cooling.fired < self.cooldown:
                cooling.suppressed += 1
                continue
            details: dict[str, Any] = {
                "rule": self.name,
                "field": finding.field,
                "pattern": finding.pattern,
                "sample": finding.sample,
                "observed_event_type": view.type_key,
            }
            if cooling.suppressed:
                details["suppressed"] = cooling.suppressed
            cooling.fired, cooling.suppressed = now, 0
            indicator = f"{finding.pattern} in {finding.field}"
            event = _derived(
                view, finding.kind, self.severity, details, indicator, ["reject_request"]
            )
            alerts.append(ThreatAlert(self.name, event, key_type, key, 1))
        return alerts


class _Rate:
    """One event type's current bucket and its EWMA baseline."""

    __slots__ = ("baseline", "bucket", "count", "fired", "seen")

    def __init__(self, bucket: int) -> None:
        self.bucket = bucket
        self.count = 0
        self.baseline = 0.0
        self.seen = 0  # closed buckets behind the baseline
        self.fired = False


class RateAnomalyRule:
    """An event type arriving much faster than its rolling (EWMA) baseline.

    Time is cut into buckets; when a bucket closes its count updates the baseline
    (``baseline = alpha * count + (1 - alpha) * baseline``; empty buckets count as 0). Once
    ``warmup`` buckets are behind it, a bucket whose count reaches
    ``max(min_count, factor * baseline)`` raises one alert, as soon as it gets there.
    """

    name = "rate_anomaly"

    def __init__(self, params: Mapping[str, Any], cap: int) -> None:
        self.bucket_seconds = float(params["bucket"])
        self.alpha = float(params["alpha"])
        self.factor = float(params["factor"])
        self.min_count = int(params["min_count"])
        self.warmup = int(params["warmup"])
        self.severity = str(params["severity"])
        self._rates = BoundedMap[_Rate](cap)

    def maps(self) -> tuple[BoundedMap[Any], ...]:
        """Rates per event type."""
        return (self._rates,)

    def observe(self, view: EventView, now: float) -> list[ThreatAlert]:
        """Count the event in its type's bucket; alert when the bucket runs far too hot."""
        bucket = int(now // self.bucket_seconds)
        rate = self._rates.get(view.type_key, partial(_Rate, bucket))
        if bucket != rate.bucket:
            self._close(rate, bucket)
        rate.count += 1
        if rate.fired or rate.seen < self.warmup:
            return []
        threshold = max(float(self.min_count), self.factor * rate.baseline)
        if rate.count < threshold:
            return []
        rate.fired = True
        details = {
            "rule": self.name,
            "observed_event_type": view.type_key,
            "count": rate.count,
            "bucket_seconds": self.bucket_seconds,
            "baseline": round(rate.baseline, 3),
            "threshold": round(threshold, 3),
        }
        indicator = (
            f"{rate.count} {view.type_key} events within {self.bucket_seconds:g} s "
            f"(baseline {rate.baseline:.1f})"
        )
        event = _derived(
            view, _T.SUSPICIOUS_ACTIVITY, self.severity, details, indicator,
            ["investigate", "rate_limit"],
        )  # fmt: skip
        return [ThreatAlert(self.name, event, "event_type", view.type_key, rate.count)]

    def _close(self, rate: _Rate, bucket: int) -> None:
        """Fold the finished bucket, and the empty ones after it, into the baseline."""
        alpha = self.alpha
        rate.baseline = (
            float(rate.count)
            if rate.seen == 0
            else alpha * rate.count + (1 - alpha) * rate.baseline
        )
        empty = min(bucket - rate.bucket - 1, 10_000)
        if empty > 0:
            rate.baseline *= (1 - alpha) ** empty
        rate.seen = min(rate.seen + 1 + max(empty, 0), 1_000_000)
        rate.bucket, rate.count, rate.fired = bucket, 0, False


class CriticalEventRule:
    """Hands every event at or above ``min_severity`` to the alert hooks (nothing derived)."""

    name = "critical_event"

    def __init__(self, params: Mapping[str, Any], cap: int) -> None:
        self.min_severity = SecuritySeverity(params["min_severity"])

    def maps(self) -> tuple[BoundedMap[Any], ...]:
        """No state."""
        return ()

    def observe(self, view: EventView, now: float) -> list[ThreatAlert]:
        """Alert on a severe event."""
        if view.severity is None or view.severity < self.min_severity:
            return []
        if view.user is not None:
            key_type, key = "user", view.user
        elif view.ip is not None:
            key_type, key = "ip", view.ip
        else:
            key_type, key = "event_type", view.type_key
        return [ThreatAlert(self.name, view.event, key_type, key, 1, derived=False)]


def build_rules(settings: Mapping[str, Mapping[str, Any]], cap: int) -> list[Rule]:
    """The enabled rules, in a fixed order, from full (merged) settings."""
    rules: list[Rule] = []
    for name, params in settings.items():
        if not params.get("enabled", True):
            continue
        if name in _COUNT_SPECS:
            rules.append(CountRule(name, params, cap))
        elif name == "credential_stuffing":
            rules.append(CredentialStuffingRule(params, cap))
        elif name == "injection":
            rules.append(InjectionRule(params, cap))
        elif name == "rate_anomaly":
            rules.append(RateAnomalyRule(params, cap))
        elif name == "critical_event":
            rules.append(CriticalEventRule(params, cap))
    return rules
