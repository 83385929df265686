"""``SecurityLogger``: writes security events as SECURITY records and runs threat detection.

Records go through the ordinary pipeline (logger ``plexichat.security``, category
``security``, level SECURITY), so they reach the console, the segment files, ``caplog`` and
any other handler; a full queue makes them wait, never drops them. The record's ``module``,
``function`` and ``line`` are those of the code that logged the event. The layout of
``context`` and ``metadata`` is described in :mod:`.record`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from .._core.errors import error_reporter
from .._core.event import safe_repr
from .._core.logger import plexi_logger
from .._core.manager import get_logging_manager
from .detection import ThreatDetector, get_threat_detector
from .events import SecurityEvent, SecurityEventType, SecuritySeverity
from .record import security_record

__all__ = ["SecurityLogger", "get_security_logger"]

_FIELDS = frozenset(f.name for f in dataclasses.fields(SecurityEvent))
_local = threading.local()


def _event_from(fields: Mapping[str, Any]) -> SecurityEvent:
    """A SecurityEvent from keyword fields; names that are not event fields go to details."""
    known = {k: v for k, v in fields.items() if k in _FIELDS}
    unknown = {str(k): v for k, v in fields.items() if k not in _FIELDS}
    if "event_type" not in known:
        known["event_type"] = None
    if unknown:
        details = known.get("details")
        merged = dict(details) if isinstance(details, Mapping) else {}
        if details is not None and not isinstance(details, Mapping):
            merged["details"] = details
        known["details"] = {**merged, **unknown}
    return SecurityEvent(**known)


class SecurityLogger:
    """Writes :class:`SecurityEvent` objects as SECURITY records; never raises.

    Args:
        name: the logger name of the records.
        detector: the threat detector to use; default: the process-wide one, which follows
            the logging configuration.

    Example:
        >>> from plexichat.core.logging.security_logger import get_security_logger
        >>> get_security_logger().log_login_attempt("user123", "192.168.1.100", success=False)
    """

    def __init__(
        self, name: str = "plexichat.security", *, detector: ThreatDetector | None = None
    ) -> None:
        self.name = name
        self._logger = plexi_logger(name)
        self._detector = detector

    @property
    def detector(self) -> ThreatDetector:
        """The threat detector this logger feeds."""
        return self._detector if self._detector is not None else get_threat_detector()

    def log_security_event(self, event: SecurityEvent) -> None:
        """Write ``event`` as a SECURITY record (category ``security``) and run detection.

        Nothing happens when ``security_enabled`` is false. Unknown event types or
        severities, naive or invalid timestamps are written with a flag, never raised; a
        mapping of event fields is accepted in place of a :class:`SecurityEvent`.
        """
        self._log(event, 2)

    def log_event(
        self,
        event_type: SecurityEventType | str,
        severity: SecuritySeverity | str | None = None,
        **fields: Any,
    ) -> SecurityEvent:
        """Build a :class:`SecurityEvent` from keyword fields and log it; return it.

        Keywords that are not event fields (``attempts=3``) are kept in ``details``.
        """
        event = _event_from({**fields, "event_type": event_type, "severity": severity})
        self._log(event, 2)
        return event

    def log_login_attempt(
        self, user_id: str, ip_address: str | None, success: bool, **fields: Any
    ) -> SecurityEvent:
        """Log LOGIN_SUCCESS or LOGIN_FAILURE (``result`` "success" or "failure"); failures
        feed the brute force, credential stuffing and account lockout rules."""
        event = _event_from(
            {
                "result": "success" if success else "failure",
                **fields,
                "event_type": (
                    SecurityEventType.LOGIN_SUCCESS if success else SecurityEventType.LOGIN_FAILURE
                ),
                "user_id": user_id,
                "ip_address": ip_address,
            }
        )
        self._log(event, 2)
        return event

    def log_access_denied(
        self,
        user_id: str | None,
        resource: str,
        *,
        ip_address: str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> SecurityEvent:
        """Log PERMISSION_DENIED for ``resource`` (``result`` "denied", ``details.reason``);
        repeated denials feed the privilege-escalation rule."""
        if reason is not None:
            fields["reason"] = reason
        event = _event_from(
            {
                "result": "denied",
                **fields,
                "event_type": SecurityEventType.PERMISSION_DENIED,
                "user_id": user_id,
                "ip_address": ip_address,
                "resource": resource,
            }
        )
        self._log(event, 2)
        return event

    def _log(self, event: object, up: int) -> None:
        """Write and analyze; ``up`` is how many frames above this one the caller is."""
        try:
            manager = get_logging_manager()
            manager.ensure_configured()
            config = manager.config
            if not config.security_enabled:
                return
            if not isinstance(event, SecurityEvent):
                event = self._coerce(event)
            self._write(event, up + 1)
            if config.threat_detection_enabled and not getattr(_local, "busy", False):
                self._detect(event, config, up + 1)
        except Exception as exc:  # noqa: BLE001 - security logging never crashes the caller
            error_reporter.report("security-logger", f"could not log a security event: {exc!r}")

    @staticmethod
    def _coerce(value: object) -> SecurityEvent:
        if isinstance(value, Mapping):
            return _event_from(value)
        error_reporter.report(
            "security-event-object",
            f"log_security_event expects a SecurityEvent, got {type(value).__name__}: "
            "written as an event of unknown type with the value in details.value",
        )
        return SecurityEvent("unknown", details={"value": safe_repr(value)})

    def _write(self, event: SecurityEvent, up: int) -> None:
        message, context, metadata = security_record(event)
        self._logger.security(
            message,
            extra={"category": "security", "context": context, "metadata": metadata},
            stacklevel=up + 1,
        )

    def _detect(self, event: SecurityEvent, config: Any, up: int) -> None:
        detector = self._detector
        if detector is None:
            detector = get_threat_detector()
            detector.follow_config(config)
        _local.busy = True  # events logged by alert hooks are written, not analyzed
        try:
            for alert in detector.observe(event):
                if alert.derived:
                    self._write(alert.event, up + 1)
                detector.notify(alert)
        finally:
            _local.busy = False


_security_logger: SecurityLogger | None = None


def get_security_logger() -> SecurityLogger:
    """Return the process-wide :class:`SecurityLogger` (logger ``plexichat.security``)."""
    global _security_logger
    if _security_logger is None:
        _security_logger = SecurityLogger()
    return _security_logger
