"""Security events: the event types, the ordered severity scale and the event itself.

A :class:`SecurityEvent` is plain data. Strings are accepted wherever an enum member is
(``event_type="login_failure"``, ``severity="high"``, any case, name or value) and are turned
into members when the event is built. A value that names no member is kept as given: building
an event never raises, so a typo in a rarely taken error path cannot turn into an outage or
lose the event. Such an event is written with a flag (``metadata.unknown_event_type`` or
``metadata.unknown_severity``) and reported once on stderr. Call
:meth:`SecurityEventType.parse` or :meth:`SecuritySeverity.parse` to get a ``ValueError``
naming the allowed values instead.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DETECTION_SOURCE",
    "SecurityEvent",
    "SecurityEventType",
    "SecuritySeverity",
    "event_type_of",
    "resolved_severity",
    "severity_of",
]

DETECTION_SOURCE = "threat_detection"
"""The ``source`` of events the threat detector derives; it never analyzes them again."""


class SecurityEventType(enum.StrEnum):
    """What happened; the value (the lower-case name) is ``metadata.event_type`` in records."""

    LOGIN_SUCCESS = "login_success"
    LOGIN_FAILURE = "login_failure"
    LOGOUT = "logout"
    PASSWORD_CHANGE = "password_change"
    PERMISSION_DENIED = "permission_denied"
    UNAUTHORIZED_ACCESS = "unauthorized_access"
    ACCESS_VIOLATION = "access_violation"
    SUSPICIOUS_ACTIVITY = "suspicious_activity"
    BRUTE_FORCE_ATTEMPT = "brute_force_attempt"
    CREDENTIAL_STUFFING = "credential_stuffing"
    ACCOUNT_LOCKOUT = "account_lockout"
    DATA_ACCESS = "data_access"
    DATA_MODIFICATION = "data_modification"
    DATA_DELETION = "data_deletion"
    DATA_EXPORT = "data_export"
    PRIVILEGE_ESCALATION = "privilege_escalation"
    CONFIGURATION_CHANGE = "configuration_change"
    SECURITY_POLICY_VIOLATION = "security_policy_violation"
    MALWARE_DETECTION = "malware_detection"
    INTRUSION_ATTEMPT = "intrusion_attempt"
    DDOS_ATTACK = "ddos_attack"
    SQL_INJECTION_ATTEMPT = "sql_injection_attempt"
    XSS_ATTEMPT = "xss_attempt"
    CSRF_ATTEMPT = "csrf_attempt"
    PATH_TRAVERSAL_ATTEMPT = "path_traversal_attempt"
    LOG_INJECTION_ATTEMPT = "log_injection_attempt"
    FILE_UPLOAD_VIOLATION = "file_upload_violation"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"
    ENCRYPTION_FAILURE = "encryption_failure"
    KEY_COMPROMISE = "key_compromise"
    CERTIFICATE_ERROR = "certificate_error"
    AUDIT_LOG_TAMPERING = "audit_log_tampering"

    @property
    def default_severity(self) -> SecuritySeverity:
        """The severity an event of this type gets when none is given."""
        return _DEFAULT_SEVERITY.get(self, SecuritySeverity.MEDIUM)

    @classmethod
    def parse(cls, value: object) -> SecurityEventType:
        """Return the member ``value`` names (a member, its value or its name, any case).

        Raises:
            ValueError: naming the bad value and the allowed values.
        """
        found = event_type_of(value)
        if found is None:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown security event type {value!r}: allowed are {allowed}")
        return found


@functools.total_ordering
class SecuritySeverity(enum.Enum):
    """How bad it is: LOW < MEDIUM < HIGH < CRITICAL < EMERGENCY.

    Members compare by rank (``severity >= SecuritySeverity.HIGH``); the value (the
    upper-case name) is ``metadata.severity`` in records, what the log store and
    ``plexichat-logs query --min-severity`` filter on.
    """

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"
    CRITICAL = "CRITICAL"
    EMERGENCY = "EMERGENCY"

    @property
    def rank(self) -> int:
        """0 for LOW up to 4 for EMERGENCY."""
        return _RANK[self]

    def __str__(self) -> str:
        return self.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SecuritySeverity):
            return NotImplemented
        return _RANK[self] < _RANK[other]

    @classmethod
    def parse(cls, value: object) -> SecuritySeverity:
        """Return the member ``value`` names (a member or its name, any case).

        Raises:
            ValueError: naming the bad value and the allowed values.
        """
        found = severity_of(value)
        if found is None:
            allowed = ", ".join(m.value for m in cls)
            raise ValueError(f"unknown security severity {value!r}: allowed are {allowed}")
        return found


_RANK = {member: rank for rank, member in enumerate(SecuritySeverity)}

_S = SecuritySeverity
_T = SecurityEventType
_DEFAULT_SEVERITY: dict[SecurityEventType, SecuritySeverity] = {
    _T.LOGIN_SUCCESS: _S.LOW,
    _T.LOGIN_FAILURE: _S.LOW,
    _T.LOGOUT: _S.LOW,
    _T.DATA_ACCESS: _S.LOW,
    _T.UNAUTHORIZED_ACCESS: _S.HIGH,
    _T.BRUTE_FORCE_ATTEMPT: _S.HIGH,
    _T.CREDENTIAL_STUFFING: _S.HIGH,
    _T.ACCOUNT_LOCKOUT: _S.HIGH,
    _T.PRIVILEGE_ESCALATION: _S.HIGH,
    _T.INTRUSION_ATTEMPT: _S.HIGH,
    _T.DDOS_ATTACK: _S.HIGH,
    _T.SQL_INJECTION_ATTEMPT: _S.HIGH,
    _T.XSS_ATTEMPT: _S.HIGH,
    _T.CSRF_ATTEMPT: _S.HIGH,
    _T.PATH_TRAVERSAL_ATTEMPT: _S.HIGH,
    _T.ENCRYPTION_FAILURE: _S.HIGH,
    _T.MALWARE_DETECTION: _S.CRITICAL,
    _T.KEY_COMPROMISE: _S.CRITICAL,
    _T.AUDIT_LOG_TAMPERING: _S.CRITICAL,
}  # every other type: MEDIUM

_TYPE_BY_TEXT: dict[str, SecurityEventType] = {m.value: m for m in SecurityEventType}
_SEVERITY_BY_TEXT: dict[str, SecuritySeverity] = {m.value: m for m in SecuritySeverity}


def event_type_of(value: object) -> SecurityEventType | None:
    """The event type ``value`` names (member, value or name, any case), else None."""
    if isinstance(value, SecurityEventType):
        return value
    if isinstance(value, str):
        text = str.__str__(value)
        return _TYPE_BY_TEXT.get(text) or _TYPE_BY_TEXT.get(text.strip().lower())
    return None


def severity_of(value: object) -> SecuritySeverity | None:
    """The severity ``value`` names (member or name, any case), else None."""
    if isinstance(value, SecuritySeverity):
        return value
    if isinstance(value, str):
        text = str.__str__(value)
        return _SEVERITY_BY_TEXT.get(text) or _SEVERITY_BY_TEXT.get(text.strip().upper())
    return None


def resolved_severity(
    severity: object, event_type: SecurityEventType | None
) -> SecuritySeverity | None:
    """The severity ``severity`` names; for None, the event type's default (MEDIUM for an
    unknown type); None when ``severity`` is given but names no severity."""
    if severity is None:
        return event_type.default_severity if event_type is not None else SecuritySeverity.MEDIUM
    return severity_of(severity)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SecurityEvent:
    """One security-relevant occurrence, written by
    :meth:`~plexichat.core.logging.security_logger.SecurityLogger.log_security_event`.

    Args:
        event_type: what happened (a :class:`SecurityEventType`, or its value or name).
        severity: how bad it is; None takes the event type's default (LOGIN_FAILURE: LOW,
            BRUTE_FORCE_ATTEMPT: HIGH, KEY_COMPROMISE: CRITICAL, other types: MEDIUM).
        timestamp: when it happened (default: now, UTC). A naive datetime is taken as
            local time; it is converted to UTC and flagged in the record.
        user_id: who (record ``context.user_id``).
        ip_address: from where (record ``context.ip_address``).
        details: anything else, kept under ``metadata.details``.
        source: the component reporting it (e.g. ``"auth_service"``).
        resource: what was accessed or changed.
        session_id: the session (``context.session_id``).
        user_agent: the client (``context.user_agent``).
        endpoint: the request path or operation.
        action: what was attempted (``"read"``, ``"delete"``, ...).
        result: how it ended (``"denied"``, ``"blocked"``, ...).
        threat_indicators: why it looks malicious.
        mitigation_actions: what was or should be done about it.
        correlation_id: ties related events and requests together (``context``).

    Example:
        >>> SecurityEvent("login_failure", "high", user_id="u1").severity
        <SecuritySeverity.HIGH: 'HIGH'>
    """

    event_type: SecurityEventType | str
    severity: SecuritySeverity | str | None = None
    timestamp: datetime | None = field(default_factory=_utc_now)
    user_id: str | None = None
    ip_address: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)
    source: str | None = None
    resource: str | None = None
    session_id: str | None = None
    user_agent: str | None = None
    endpoint: str | None = None
    action: str | None = None
    result: str | None = None
    threat_indicators: list[str] = field(default_factory=list)
    mitigation_actions: list[str] = field(default_factory=list)
    correlation_id: str | None = None

    def __post_init__(self) -> None:
        event_type = event_type_of(self.event_type)
        if event_type is not None:
            self.event_type = event_type
        severity = resolved_severity(self.severity, event_type)
        if severity is not None:
            self.severity = severity
