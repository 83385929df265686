"""Alert messages: what e-mails and webhook posts say about a performance or threat alert."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._core.clock import iso_utc
from .alerts import AlertNotice

__all__ = ["AlertMessage", "host_name", "notice_message", "threat_message"]

_host: str | None = None


def host_name() -> str:
    """This machine's host name (looked up once)."""
    global _host
    if _host is None:
        try:
            _host = socket.gethostname() or "localhost"
        except OSError:  # pragma: no cover - no host name at all
            _host = "localhost"
    return _host


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """One alert, rendered once for every channel.

    Attributes:
        subject: one line (the e-mail subject).
        text: one line for chat (the Slack ``text``).
        body: the plain-text e-mail body.
        fields: the structured fields (the webhook JSON beside ``text``).
    """

    subject: str
    text: str
    body: str
    fields: Mapping[str, Any]

    def webhook_json(self) -> dict[str, Any]:
        """The webhook body: Slack's ``text`` plus the structured fields."""
        return {"text": self.text, **self.fields}


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _with_unit(value: float, unit: str) -> str:
    return f"{value:g} {unit}" if unit else f"{value:g}"


def notice_message(notice: AlertNotice) -> AlertMessage:
    """Render a performance alert that fired or resolved."""
    alert, metric = notice.alert, notice.metric
    host = host_name()
    state = notice.state.upper()
    value = _with_unit(metric.value, metric.unit)
    threshold = f"{alert.symbol} {_with_unit(alert.threshold, metric.unit)}"
    tags = ", ".join(f"{k}={v}" for k, v in sorted(metric.tags.items()))
    when = iso_utc(metric.timestamp)
    if notice.state == "firing":
        detail = f"value {value} (threshold {threshold}, held {_seconds(notice.held_for)})"
    else:
        detail = f"value {value}, back within threshold {threshold} after firing for " + _seconds(
            notice.held_for
        )
    label = alert.severity.upper() if notice.state == "firing" else "OK"
    subject = f"[PlexiChat {state}] {alert.name} on {host}"
    lines = [
        f"Alert:      {alert.name}",
        f"State:      {notice.state} ({alert.severity})",
        f"Metric:     {metric.name}" + (f" {{{tags}}}" if tags else ""),
        f"Value:      {value}",
        f"Threshold:  {threshold}",
        f"Duration:   condition must hold {_seconds(alert.duration)}; "
        + (
            f"held {_seconds(notice.held_for)}"
            if notice.state == "firing"
            else f"fired for {_seconds(notice.held_for)}"
        ),
        f"Host:       {host}",
        f"Time:       {when}",
    ]
    fields = {
        "status": notice.state,
        "severity": alert.severity,
        "alert": alert.name,
        "metric": metric.name,
        "value": metric.value,
        "unit": metric.unit,
        "threshold": alert.threshold,
        "comparison": alert.comparison,
        "duration": alert.duration,
        "held_for": round(notice.held_for, 3),
        "tags": dict(metric.tags),
        "host": host,
        "timestamp": when,
    }
    return AlertMessage(
        subject, f"[{label}] {alert.name} on {host}: {detail}", "\n".join(lines) + "\n", fields
    )


def threat_message(alert: Any, at: float) -> AlertMessage:
    """Render a threat detector alert (a :class:`~..security.detection.ThreatAlert`)."""
    event = alert.event
    host = host_name()
    event_type = getattr(getattr(event, "event_type", None), "value", None) or str(
        getattr(event, "event_type", "unknown")
    )
    severity = getattr(getattr(event, "severity", None), "name", None) or str(
        getattr(event, "severity", "")
    )
    when = iso_utc(at)
    subject = f"[PlexiChat SECURITY] {alert.rule}: {event_type} on {host}"
    text = (
        f"[SECURITY {severity}] {alert.rule} on {host}: {event_type} "
        f"({alert.key_type} {alert.key}, {alert.count} event{'s' if alert.count != 1 else ''})"
    )
    lines = [
        f"Rule:       {alert.rule}",
        f"Event:      {event_type}",
        f"Severity:   {severity}",
        f"Key:        {alert.key_type} {alert.key}",
        f"Events:     {alert.count}",
        f"Host:       {host}",
        f"Time:       {when}",
    ]
    fields = {
        "status": "firing",
        "severity": severity.lower(),
        "alert": alert.rule,
        "event_type": event_type,
        "key_type": alert.key_type,
        "key": alert.key,
        "count": alert.count,
        "host": host,
        "timestamp": when,
    }
    return AlertMessage(subject, text, "\n".join(lines) + "\n", fields)
