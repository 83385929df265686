"""Security events: event types, the ordered severity scale, the event dataclass."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from plexichat.core.logging.security_logger import (
    SecurityEvent,
    SecurityEventType,
    SecuritySeverity,
)

SPEC_TYPES = [
    "LOGIN_SUCCESS",
    "LOGIN_FAILURE",
    "LOGOUT",
    "PASSWORD_CHANGE",
    "PERMISSION_DENIED",
    "UNAUTHORIZED_ACCESS",
    "SUSPICIOUS_ACTIVITY",
    "BRUTE_FORCE_ATTEMPT",
    "DATA_ACCESS",
    "DATA_MODIFICATION",
    "DATA_DELETION",
    "PRIVILEGE_ESCALATION",
    "CONFIGURATION_CHANGE",
    "SECURITY_POLICY_VIOLATION",
    "MALWARE_DETECTION",
    "INTRUSION_ATTEMPT",
    "DDOS_ATTACK",
    "SQL_INJECTION_ATTEMPT",
    "XSS_ATTEMPT",
    "CSRF_ATTEMPT",
    "FILE_UPLOAD_VIOLATION",
    "RATE_LIMIT_EXCEEDED",
    "ENCRYPTION_FAILURE",
    "KEY_COMPROMISE",
    "CERTIFICATE_ERROR",
    "AUDIT_LOG_TAMPERING",
    "CREDENTIAL_STUFFING",
    "ACCESS_VIOLATION",
    "DATA_EXPORT",
    "PATH_TRAVERSAL_ATTEMPT",
]


@pytest.mark.parametrize("name", SPEC_TYPES)
def test_every_required_event_type_exists_with_its_lower_case_value(name: str) -> None:
    """Each required event type exists; its value is the lower-case name."""
    member = SecurityEventType[name]
    assert member.value == name.lower()
    assert SecurityEventType(name.lower()) is member


def test_severities_are_ordered() -> None:
    """LOW < MEDIUM < HIGH < CRITICAL < EMERGENCY; min/max/sorted work on the scale."""
    low, medium, high, critical, emergency = SecuritySeverity
    assert low < medium < high < critical < emergency
    assert emergency > critical >= critical > high
    assert low <= low
    assert sorted([critical, low, emergency, medium]) == [low, medium, critical, emergency]
    assert max(SecuritySeverity) is emergency
    assert [s.value for s in SecuritySeverity] == ["LOW", "MEDIUM", "HIGH", "CRITICAL", "EMERGENCY"]
    assert [s.rank for s in SecuritySeverity] == [0, 1, 2, 3, 4]
    assert str(high) == "HIGH"


def test_severity_filter_by_minimum() -> None:
    """A filter by minimum severity keeps what it should."""
    events = [SecurityEvent("login_failure", s) for s in SecuritySeverity]
    kept = [e.severity for e in events if e.severity >= SecuritySeverity.HIGH]
    assert kept == [SecuritySeverity.HIGH, SecuritySeverity.CRITICAL, SecuritySeverity.EMERGENCY]


def test_severity_does_not_compare_with_other_types() -> None:
    """Comparing a severity with a string is a TypeError, as for any unordered pair."""
    with pytest.raises(TypeError):
        assert SecuritySeverity.LOW < "MEDIUM"


def test_strings_become_members_in_any_case() -> None:
    """Event type and severity given as text (value or name, any case) become members."""
    event = SecurityEvent(event_type="LOGIN_FAILURE", severity="high")
    assert event.event_type is SecurityEventType.LOGIN_FAILURE
    assert event.severity is SecuritySeverity.HIGH
    assert SecurityEvent(" Login_Failure ", " Medium ").severity is SecuritySeverity.MEDIUM


def test_severity_defaults_to_the_event_types_default() -> None:
    """Without a severity, the event type decides (unknown types: MEDIUM)."""
    assert SecurityEvent("login_failure").severity is SecuritySeverity.LOW
    assert SecurityEvent("brute_force_attempt").severity is SecuritySeverity.HIGH
    assert SecurityEvent("key_compromise").severity is SecuritySeverity.CRITICAL
    assert SecurityEvent("data_modification").severity is SecuritySeverity.MEDIUM
    assert SecurityEvent("my_custom_event").severity is SecuritySeverity.MEDIUM


def test_unknown_values_are_kept_not_raised() -> None:
    """Building an event with unknown text keeps it as given (flagged when logged)."""
    event = SecurityEvent("login_faliure", "severe")
    assert event.event_type == "login_faliure"
    assert event.severity == "severe"


def test_parse_names_the_allowed_values() -> None:
    """parse() is the strict way: a ValueError that lists what is allowed."""
    assert SecurityEventType.parse("XSS_ATTEMPT") is SecurityEventType.XSS_ATTEMPT
    assert SecuritySeverity.parse("critical") is SecuritySeverity.CRITICAL
    with pytest.raises(ValueError, match=r"'login_faliure'.*login_failure"):
        SecurityEventType.parse("login_faliure")
    with pytest.raises(ValueError, match=r"'severe'.*LOW, MEDIUM, HIGH, CRITICAL, EMERGENCY"):
        SecuritySeverity.parse("severe")
    with pytest.raises(ValueError):
        SecuritySeverity.parse(3)


def test_defaults_of_the_optional_fields() -> None:
    """timestamp is now (UTC, aware); containers are fresh per event; the rest is None."""
    before = datetime.now(UTC)
    first, second = SecurityEvent("logout"), SecurityEvent("logout")
    assert first.timestamp is not None
    assert first.timestamp.tzinfo is not None
    assert before <= first.timestamp <= datetime.now(UTC)
    assert first.details == {}
    assert first.threat_indicators == []
    assert first.mitigation_actions == []
    assert first.details is not second.details
    assert first.threat_indicators is not second.threat_indicators
    for name in ("user_id", "ip_address", "source", "resource", "session_id", "user_agent",
                 "endpoint", "action", "result", "correlation_id"):  # fmt: skip
        assert getattr(first, name) is None


def test_positional_order_matches_the_spec() -> None:
    """event_type, severity, timestamp, user_id, ip_address, details come first, in order."""
    moment = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    event = SecurityEvent("login_failure", "low", moment, "u1", "10.0.0.1", {"a": 1})
    assert (event.timestamp, event.user_id, event.ip_address, event.details) == (
        moment, "u1", "10.0.0.1", {"a": 1},
    )  # fmt: skip


@pytest.mark.parametrize("op", ["__lt__", "__le__", "__gt__", "__ge__"])
def test_every_comparison_refuses_other_types(op: str) -> None:
    """Each ordering operator returns NotImplemented for a non-severity."""
    assert getattr(SecuritySeverity.HIGH, op)("HIGH") is NotImplemented
    assert getattr(SecuritySeverity.HIGH, op)(SecuritySeverity.HIGH) is (op in ("__le__", "__ge__"))


def test_parse_refuses_non_text() -> None:
    """A number is no event type."""
    with pytest.raises(ValueError, match="unknown security event type 42"):
        SecurityEventType.parse(42)
