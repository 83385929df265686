from plexichat.core.logging.security_logger import get_security_logger, SecurityEvent, SecurityEventType, SecuritySeverity

security_logger = get_security_logger()

# Log security events
event = SecurityEvent(
    event_type=SecurityEventType.LOGIN_FAILURE,
    severity=SecuritySeverity.MEDIUM,
    timestamp=datetime.now(timezone.utc),
    user_id="user123",
    ip_address="192.168.1.100",
    details={"reason": "invalid_password", "attempts": 3}
)

security_logger.log_security_event(event)
