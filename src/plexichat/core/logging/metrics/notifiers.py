"""Where alert notifications go: the alert's callback, a log record, e-mail and a webhook.

The :class:`AlertEngine` hands each :class:`AlertNotice` to the dispatcher, a bounded queue
served by one background thread, so the thread that recorded the metric never runs a
callback, formats a message or waits on the network. The dispatcher

* calls the alert's ``callback`` with the metric (firing only); one that raises is logged
  as an ERROR record in category ``performance``, never propagated;
* writes a WARNING (ERROR for ``severity="error"``) record in category ``performance`` when
  an alert fires, and an INFO record when it resolves;
* queues the rendered message for e-mail and the webhook; each has its own thread that
  retries with exponential backoff, so a dead SMTP server delays nothing else.

E-mail and webhook are on only with ``alerts_enabled`` and their settings
(``alert_email`` + ``alert_smtp_host``; ``alert_webhook_url``); :func:`follow_config`
applies them on every ``configure_logging``. Callbacks and log records do not depend on
``alerts_enabled``: an alert registered in code always reaches its own callback. The threat
detector's alerts go out through the same e-mail and webhook channels.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .._core.errors import error_reporter
from .._core.levels import LogCategory
from .alerts import AlertNotice
from .notifiers_format import AlertMessage, notice_message, threat_message
from .notifiers_send import EmailSender, WebhookSender
from .notifiers_worker import RetryingSender, Worker

__all__ = [
    "Channels",
    "NotificationDispatcher",
    "follow_config",
    "get_channels",
    "get_dispatcher",
    "stop_notifiers",
]

_LOGGER = "plexichat.alerts"


def _logger() -> Any:
    from .. import get_logger

    return get_logger(_LOGGER)


def _log_outage(channel: str, why: str | None) -> None:
    """A log record when a channel starts failing (once per outage) and when it recovers."""
    log = _logger()
    context = {"channel": channel} if why is None else {"channel": channel, "error": why}
    extra = {"category": LogCategory.PERFORMANCE, "context": context}
    if why is None:
        log.info("Alert %s delivery works again", channel, extra=extra)
    else:
        log.warning(
            "Alert %s delivery failed, retrying with backoff: %s", channel, why, extra=extra
        )


class Channels:
    """The remote channels in use (None when off), shared by performance and threat alerts."""

    def __init__(self) -> None:
        self.email: RetryingSender[AlertMessage] | None = None
        self.webhook: RetryingSender[AlertMessage] | None = None
        self._settings: tuple[Any, ...] | None = None
        self._lock = threading.Lock()

    def set(
        self,
        email: EmailSender | None,
        webhook: WebhookSender | None,
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
    ) -> None:
        """Use these senders from now on (None: channel off); the previous ones are stopped."""
        senders: list[RetryingSender[AlertMessage] | None] = [
            RetryingSender(
                name,
                send,
                attempts=attempts,
                backoff=backoff,
                max_backoff=max_backoff,
                on_outage=_log_outage,
            )
            if send is not None
            else None
            for name, send in (("email", email), ("webhook", webhook))
        ]
        new_email, new_hook = senders
        with self._lock:
            old = (self.email, self.webhook)
            self.email, self.webhook = new_email, new_hook
        for sender in old:
            if sender is not None:
                sender.stop(1.0)
        _hook_threats(new_email is not None or new_hook is not None)

    def send(self, message: AlertMessage, channels: frozenset[str] | None = None) -> None:
        """Queue ``message`` on the remote channels that are on (and in ``channels``)."""
        for name, sender in (("email", self.email), ("webhook", self.webhook)):
            if sender is not None and (channels is None or name in channels):
                sender.submit(message)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until queued e-mails and posts were delivered or given up."""
        return all(s.flush(timeout) for s in (self.email, self.webhook) if s is not None)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the channels' threads (they start again on the next message)."""
        for sender in (self.email, self.webhook):
            if sender is not None:
                sender.stop(timeout)


class NotificationDispatcher:
    """Delivers alert notices off the recording thread (bounded queue, counted drops).

    Args:
        channels: the remote channels (default: the process-wide ones).
        capacity: the most notices waiting; more are dropped and counted in :attr:`dropped`.
    """

    def __init__(self, channels: Channels | None = None, capacity: int = 1000) -> None:
        self.channels = channels if channels is not None else get_channels()
        self.worker: Worker[AlertNotice] = Worker("plexichat-alerts", self._deliver, capacity)

    @property
    def dropped(self) -> int:
        """Notices dropped because the queue was full."""
        return self.worker.dropped

    def submit(self, notice: AlertNotice) -> bool:
        """Queue a notice; never blocks (False when the queue is full)."""
        return self.worker.submit(notice)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every queued notice reached its callback, the log and the remote
        channels' queues, and those delivered it (or gave up)."""
        return self.worker.flush(timeout) and self.channels.flush(timeout)

    def stop(self, timeout: float | None = 5.0) -> None:
        """Deliver what is queued and stop the thread (it starts again on the next notice)."""
        self.worker.stop(timeout)

    def _deliver(self, notice: AlertNotice) -> None:
        alert = notice.alert
        if notice.state == "firing" and alert.callback is not None and "callback" in alert.notify:
            try:
                alert.callback(notice.metric)
            except Exception as exc:  # noqa: BLE001 - a user's callback never breaks alerts
                _logger().error(
                    "Alert callback of %r raised %s: %s",
                    alert.name,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                    extra={"category": LogCategory.PERFORMANCE, "context": {"alert": alert.name}},
                )
        if "log" in alert.notify:
            _log_notice(notice)
        remote = frozenset(c for c in ("email", "webhook") if c in alert.notify)
        if remote and (self.channels.email or self.channels.webhook):
            self.channels.send(notice_message(notice), remote)


def _log_notice(notice: AlertNotice) -> None:
    alert, metric = notice.alert, notice.metric
    context = {
        "alert": alert.name,
        "state": notice.state,
        "metric": metric.name,
        "value": metric.value,
        "unit": metric.unit,
        "threshold": alert.threshold,
        "comparison": alert.comparison,
        "duration": alert.duration,
        "held_for": round(notice.held_for, 3),
        "severity": alert.severity,
    }
    if metric.tags:
        context["tags"] = dict(metric.tags)
    extra = {"category": LogCategory.PERFORMANCE, "context": context}
    log = _logger()
    if notice.state == "firing":
        level = 40 if alert.severity == "error" else 30
        log.log(
            level,
            "Alert firing: %s (value %g, held %gs)",
            alert.name,
            metric.value,
            notice.held_for,
            extra=extra,
        )
    else:
        log.info("Alert resolved: %s (value %g)", alert.name, metric.value, extra=extra)


_channels = Channels()
_dispatcher: NotificationDispatcher | None = None
_lock = threading.Lock()
_threat_hooked = False


def get_channels() -> Channels:
    """The process-wide remote channels."""
    return _channels


def get_dispatcher() -> NotificationDispatcher:
    """The process-wide dispatcher the alert engine submits to."""
    global _dispatcher
    if _dispatcher is None:
        with _lock:
            if _dispatcher is None:
                _dispatcher = NotificationDispatcher(_channels)
    return _dispatcher


def _on_threat(alert: Any) -> None:
    """Threat detector hook: send the alert by e-mail and webhook (queued, never blocks)."""
    _channels.send(threat_message(alert, time.time()))


def _hook_threats(on: bool) -> None:
    global _threat_hooked
    from ..security.detection import get_threat_detector

    with _lock:
        if on and not _threat_hooked:
            get_threat_detector().add_alert_hook(_on_threat)
        elif not on and _threat_hooked:
            get_threat_detector().remove_alert_hook(_on_threat)
        _threat_hooked = on


def follow_config(config: Any) -> None:
    """Turn e-mail and webhook on or off as ``config`` says (called by ``configure_logging``).

    A setting that cannot work (an invalid webhook URL, e-mail without an SMTP host) is
    reported once on stderr and leaves that channel off; it never fails the configuration.
    """
    settings = (
        config.alerts_enabled,
        config.alert_email,
        config.alert_smtp_host,
        config.alert_smtp_port,
        config.alert_smtp_tls,
        config.alert_smtp_username,
        config.alert_smtp_password,
        config.alert_smtp_sender,
        config.alert_webhook_url,
        config.alert_timeout,
    )
    if settings == _channels._settings:
        return
    email: EmailSender | None = None
    webhook: WebhookSender | None = None
    if config.alerts_enabled:
        if config.alert_email and config.alert_smtp_host:
            email = EmailSender(
                config.alert_smtp_host,
                config.alert_email,
                port=config.alert_smtp_port,
                tls=config.alert_smtp_tls,
                username=config.alert_smtp_username,
                password=config.alert_smtp_password,
                sender=config.alert_smtp_sender,
                timeout=config.alert_timeout,
            )
        elif config.alert_email:
            error_reporter.report(
                "alerts-config",
                f"alert_email={config.alert_email!r} is set but alert_smtp_host is not: alert "
                "e-mails are off; set PLEXICHAT_LOG_ALERT_SMTP_HOST",
            )
        if config.alert_webhook_url is not None:
            try:
                webhook = WebhookSender(config.alert_webhook_url, timeout=config.alert_timeout)
            except ValueError as exc:
                error_reporter.report("alerts-config", f"{exc}; webhook alerts are off")
    _channels.set(email, webhook)
    _channels._settings = settings


def stop_notifiers(timeout: float | None = 5.0) -> None:
    """Stop the dispatcher's and the channels' threads (``shutdown_logging`` calls this)."""
    dispatcher = _dispatcher
    if dispatcher is not None:
        dispatcher.stop(timeout)
    _channels.stop(timeout)
    _channels.set(None, None)  # the next configuration turns them on again
    _channels._settings = None
