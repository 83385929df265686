"""The threat detection rules' parameters: defaults and validation of ``threat_rules``.

``threat_rules`` (a setting of :class:`~plexichat.core.logging.config.LoggingConfig`) holds
overrides only, e.g. ``{"brute_force": {"threshold": 10, "window": "10 minutes"}}``; every
parameter not given keeps its default from :data:`DEFAULT_THREAT_RULES`. In the environment
(``PLEXICHAT_LOG_THREAT_RULES``) use a JSON object or ``rule.param=value`` pairs separated by
commas: ``brute_force.threshold=10,rate_anomaly.enabled=false``.

The configuration model's validator imports this module when it first validates.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from .._config.sources import _suggest
from .._config.units import DURATION_HELP, parse_duration
from .events import severity_of

__all__ = ["DEFAULT_THREAT_RULES", "RULE_NAMES", "check_threat_rules", "merged_rules"]

DEFAULT_THREAT_RULES: dict[str, dict[str, Any]] = {
    "brute_force": {
        "enabled": True,
        "threshold": 5,
        "ip_threshold": 20,
        "window": 300.0,
        "cooldown": None,
        "severity": "HIGH",
    },
    "credential_stuffing": {
        "enabled": True,
        "threshold": 10,
        "window": 300.0,
        "cooldown": None,
        "severity": "HIGH",
    },
    "account_lockout": {
        "enabled": True,
        "threshold": 10,
        "window": 900.0,
        "cooldown": None,
        "severity": "HIGH",
    },
    "privilege_escalation": {
        "enabled": True,
        "threshold": 5,
        "window": 600.0,
        "cooldown": None,
        "severity": "HIGH",
    },
    "injection": {
        "enabled": True,
        "cooldown": 60.0,
        "max_length": 4096,
        "severity": "HIGH",
    },
    "rate_anomaly": {
        "enabled": True,
        "bucket": 60.0,
        "alpha": 0.3,
        "factor": 3.0,
        "min_count": 20,
        "warmup": 5,
        "severity": "MEDIUM",
    },
    "critical_event": {
        "enabled": True,
        "min_severity": "CRITICAL",
    },
}
"""Every rule and its parameters' defaults. ``cooldown: None`` means "the rule's window"."""

RULE_NAMES = tuple(DEFAULT_THREAT_RULES)

_MAX_COUNT = 100_000
_MAX_SECONDS = 30 * 86_400.0
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_OFF = {"0", "off", "none", "never", "disabled"}


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("expected true or false")


def _count(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        number: object = value
        if isinstance(value, str) and value.strip().isdigit():
            number = int(value.strip())
        if isinstance(number, int) and not isinstance(number, bool) and low <= number <= high:
            return number
        raise ValueError(f"expected a whole number from {low} to {high}")

    return check


def _number(low: float, high: float, *, low_open: bool = False) -> Callable[[object], float]:
    def check(value: object) -> float:
        try:
            number = float(value) if isinstance(value, int | float | str) else math.nan
        except ValueError:
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            number = math.nan
        if (number > low if low_open else number >= low) and number <= high:
            return number
        raise ValueError(f"expected a number {'>' if low_open else '>='} {low:g} and <= {high:g}")

    return check


def _seconds(value: object) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError:
        seconds = None
    if seconds is None or seconds > _MAX_SECONDS:
        raise ValueError(f"expected {DURATION_HELP.partition(' (or')[0]}, up to 30 days")
    return seconds


def _cooldown(value: object) -> float | None:
    """None: the rule's window; 0 or "off": no cooldown; else a duration."""
    if value is None:
        return None
    if value is False or value == 0 or (isinstance(value, str) and value.strip().lower() in _OFF):
        return 0.0
    return _seconds(value)


def _severity(value: object) -> str:
    found = severity_of(value)
    if found is None:
        raise ValueError("expected LOW, MEDIUM, HIGH, CRITICAL or EMERGENCY")
    return found.value


_PARAMS: dict[str, Callable[[Any], Any]] = {
    "enabled": _bool,
    "threshold": _count(2, _MAX_COUNT),
    "ip_threshold": _count(2, _MAX_COUNT),
    "min_count": _count(1, 100_000_000),
    "warmup": _count(1, 10_000),
    "window": _seconds,
    "bucket": _seconds,
    "cooldown": _cooldown,
    "alpha": _number(0.0, 1.0, low_open=True),
    "factor": _number(1.0, 1_000_000.0),
    "max_length": _count(16, 10_000_000),
    "severity": _severity,
    "min_severity": _severity,
}


def _from_text(text: str) -> object:
    """``threat_rules`` given as text (an environment variable): JSON or rule.param=value."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            return json.loads(stripped)
        except ValueError:
            raise ValueError(f"invalid threat_rules {text!r}: not a JSON object") from None
    rules: dict[str, dict[str, str]] = {}
    for part in filter(None, (p.strip() for p in stripped.split(","))):
        key, sep, value = part.partition("=")
        rule, dot, param = key.strip().partition(".")
        if not sep or not dot or not rule or not param:
            raise ValueError(
                f"invalid threat_rules part {part!r}: use rule.param=value pairs separated by "
                "commas (example: brute_force.threshold=10,injection.enabled=false) or a JSON "
                "object"
            )
        rules.setdefault(rule, {})[param.strip()] = value.strip()
    return rules


def check_threat_rules(value: object) -> dict[str, dict[str, Any]]:
    """Validate ``threat_rules`` overrides; return them with normalized values.

    ``{"injection": False}`` is short for ``{"injection": {"enabled": False}}``.

    Raises:
        ValueError: naming the bad rule or parameter, the value and what is allowed.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        value = _from_text(value)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"invalid threat_rules {value!r}: expected a mapping of rule name to parameters, "
            'e.g. {"brute_force": {"threshold": 10}}'
        )
    out: dict[str, dict[str, Any]] = {}
    for rule, params in value.items():
        if rule not in DEFAULT_THREAT_RULES:
            raise ValueError(
                f"unknown threat rule {rule!r}{_suggest(str(rule), RULE_NAMES)}: allowed are "
                f"{', '.join(RULE_NAMES)}"
            )
        if isinstance(params, bool):
            params = {"enabled": params}
        if not isinstance(params, Mapping):
            raise ValueError(
                f"threat rule {rule!r}: expected a mapping of parameters, got {params!r} "
                f'(e.g. {{"enabled": false}})'
            )
        allowed = tuple(DEFAULT_THREAT_RULES[rule])
        checked: dict[str, Any] = {}
        for param, given in params.items():
            if param not in allowed:
                raise ValueError(
                    f"threat rule {rule!r}: unknown parameter {param!r}"
                    f"{_suggest(str(param), allowed)}; allowed are {', '.join(allowed)}"
                )
            try:
                checked[param] = _PARAMS[param](given)
            except ValueError as exc:
                raise ValueError(
                    f"threat rule {rule!r}: invalid {param} {given!r}: {exc}"
                ) from None
        out[rule] = checked
    return out


def merged_rules(overrides: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """Every rule's full parameters: the defaults with validated ``overrides`` on top.

    Raises:
        ValueError: from :func:`check_threat_rules`.
    """
    checked = check_threat_rules(overrides)
    merged = {
        rule: {**params, **checked.get(rule, {})} for rule, params in DEFAULT_THREAT_RULES.items()
    }
    for params in merged.values():
        if "cooldown" in params and params["cooldown"] is None:
            params["cooldown"] = params["window"]
    return merged
