"""A security event as a record: message, ``context`` and ``metadata``.

Layout (what ``plexichat-logs query`` and the store's security filters read):

* ``context``: who and from where: ``user_id``, ``ip_address``, ``session_id``,
  ``user_agent``, ``correlation_id`` (plus the bound context of ``log_context``).
* ``metadata``: ``event_type`` (lower case), ``severity`` (LOW ... EMERGENCY),
  ``event_time`` (when it happened, UTC ISO-8601), then ``source``, ``resource``,
  ``endpoint``, ``action``, ``result``, ``details``, ``threat_indicators``,
  ``mitigation_actions`` when given, and the flags below.

Flags (present only when true): ``unknown_event_type``, ``unknown_severity``,
``timestamp_assumed_local`` (a naive timestamp, read as local time), ``invalid_timestamp``
(the given value's repr; ``event_time`` is then the time of logging), ``derived`` (written by
the threat detector).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._core.clock import iso_utc
from .._core.errors import error_reporter
from .._core.event import safe_repr
from .events import (
    DETECTION_SOURCE,
    SecurityEvent,
    SecuritySeverity,
    event_type_of,
    resolved_severity,
)

__all__ = ["CONTEXT_FIELDS", "METADATA_FIELDS", "event_time", "security_record"]

CONTEXT_FIELDS = ("user_id", "ip_address", "session_id", "user_agent", "correlation_id")
METADATA_FIELDS = ("source", "resource", "endpoint", "action", "result")


def event_time(value: object) -> tuple[str, dict[str, Any]]:
    """The UTC ISO-8601 text of an event's ``timestamp`` and the flags it needs; never raises.

    A naive datetime is taken as local time (flag ``timestamp_assumed_local``); numbers are
    seconds since the epoch; ISO-8601 text is parsed. Anything else, or a time that cannot
    be converted, gives the current time and the flag ``invalid_timestamp``.
    """
    try:
        if value is None:
            return iso_utc(time.time()), {}
        if isinstance(value, datetime):  # timestamp() reads a naive datetime as local time
            naive = value.tzinfo is None or value.utcoffset() is None
            return iso_utc(value.timestamp()), {"timestamp_assumed_local": True} if naive else {}
        if isinstance(value, int | float) and not isinstance(value, bool):
            return iso_utc(float(value)), {}
        if isinstance(value, str):
            text = value.strip()
            parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
            return event_time(parsed)
    except (ValueError, OverflowError, OSError, TypeError):
        pass
    error_reporter.report(
        "security-timestamp",
        f"security event timestamp {safe_repr(value)[:100]} is not a time: logged with the "
        "current time and metadata.invalid_timestamp (use a timezone-aware datetime)",
    )
    return iso_utc(time.time()), {"invalid_timestamp": safe_repr(value)[:200]}


def _text(value: object) -> str:
    if isinstance(value, str):
        return str.__str__(value)
    return safe_repr(value)


def _mapping(value: object) -> object:
    """A plain dict copy of a mapping (the event's own stays untouched), else the value."""
    if not isinstance(value, Mapping):
        return value
    try:
        return dict(value)
    except Exception:  # noqa: BLE001 - a hostile mapping costs only itself
        return safe_repr(value)


def security_record(event: SecurityEvent) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Return the message, ``context`` and ``metadata`` of ``event``'s record.

    Unknown event types or severities are kept as text, flagged, and reported once on stderr
    (kinds ``security-event-type`` and ``security-severity``).
    """
    metadata: dict[str, Any] = {}
    flags: dict[str, Any] = {}
    raw_type = getattr(event, "event_type", None)
    event_type = event_type_of(raw_type)
    if event_type is not None:
        type_text = event_type.value
    else:
        type_text = _text(raw_type) if raw_type is not None else "unknown"
        flags["unknown_event_type"] = True
        error_reporter.report(
            "security-event-type",
            f"unknown security event type {type_text[:100]!r}: written with "
            "metadata.unknown_event_type=true; use a SecurityEventType member "
            "(see SecurityEventType.parse)",
        )
    raw_severity = getattr(event, "severity", None)
    severity = resolved_severity(raw_severity, event_type)
    if severity is not None:
        severity_text = severity.value
    else:
        severity_text = _text(raw_severity)
        flags["unknown_severity"] = True
        error_reporter.report(
            "security-severity",
            f"unknown security severity {severity_text[:100]!r}: written with "
            "metadata.unknown_severity=true; allowed are "
            f"{', '.join(m.value for m in SecuritySeverity)}",
        )
    when, time_flags = event_time(getattr(event, "timestamp", None))
    flags.update(time_flags)
    metadata["event_type"] = type_text
    metadata["severity"] = severity_text
    metadata["event_time"] = when
    for name in METADATA_FIELDS:
        value = getattr(event, name, None)
        if value is not None:
            metadata[name] = value
    details = getattr(event, "details", None)
    if details:
        metadata["details"] = _mapping(details)
    for name in ("threat_indicators", "mitigation_actions"):
        value = getattr(event, name, None)
        if value:
            metadata[name] = list(value) if isinstance(value, list | tuple | set) else value
    metadata.update(flags)
    if getattr(event, "source", None) == DETECTION_SOURCE:
        metadata["derived"] = True
    context = {
        name: value for name in CONTEXT_FIELDS if (value := getattr(event, name, None)) is not None
    }
    return f"Security event {type_text[:64]} ({severity_text[:32]})", context, metadata
