"""Security event logging, threat detection and the audit trail.

Example:
    >>> from datetime import datetime, timezone
    >>> from plexichat.core.logging.security_logger import (
    ...     get_security_logger, SecurityEvent, SecurityEventType, SecuritySeverity)
    >>> event = SecurityEvent(
    ...     event_type=SecurityEventType.LOGIN_FAILURE,
    ...     severity=SecuritySeverity.MEDIUM,
    ...     timestamp=datetime.now(timezone.utc),
    ...     user_id="user123",
    ...     ip_address="192.168.1.100",
    ...     details={"reason": "invalid_password", "attempts": 3})
    >>> get_security_logger().log_security_event(event)  # doctest: +SKIP

See ``docs/security.md`` for the record layout, the detection rules and their defaults.
"""

from __future__ import annotations

from .security.audit import AuditLogger, get_audit_logger
from .security.detection import AlertHook, ThreatAlert, ThreatDetector, get_threat_detector
from .security.detection_config import DEFAULT_THREAT_RULES
from .security.events import SecurityEvent, SecurityEventType, SecuritySeverity
from .security.logger import SecurityLogger, get_security_logger

__all__ = [
    "DEFAULT_THREAT_RULES",
    "AlertHook",
    "AuditLogger",
    "SecurityEvent",
    "SecurityEventType",
    "SecurityLogger",
    "SecuritySeverity",
    "ThreatAlert",
    "ThreatDetector",
    "get_audit_logger",
    "get_security_logger",
    "get_threat_detector",
]
