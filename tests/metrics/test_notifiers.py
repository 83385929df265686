"""Alert notifications end to end: real SMTP (aiosmtpd) and HTTP servers on 127.0.0.1."""

from __future__ import annotations

import datetime
import email
import email.policy
import http.server
import ipaddress
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from plexichat.core.logging import configure_logging
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.cli import main
from plexichat.core.logging.metrics.alerts import AlertEngine, PerformanceAlert
from plexichat.core.logging.metrics.model import PerformanceMetric
from plexichat.core.logging.metrics.notifiers import (
    Channels,
    NotificationDispatcher,
    get_channels,
    get_dispatcher,
)
from plexichat.core.logging.metrics.notifiers_format import AlertMessage, host_name
from plexichat.core.logging.metrics.notifiers_send import EmailSender, WebhookSender
from plexichat.core.logging.metrics.notifiers_worker import DeliveryError, RetryingSender
from plexichat.core.logging.security_logger import (
    SecurityEvent,
    SecurityEventType,
    get_security_logger,
)
from plexichat.core.logging.testing import capture_logs

TOKEN = "T000/B000/s3cr3t-t0ken"
PASSWORD = "smtp-pa55word-xyz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# --- a real SMTP server ------------------------------------------------------------------


class Inbox:
    """An aiosmtpd handler that keeps every message and the logins it accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[tuple[str, str]] = []
        self.received = threading.Event()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        """Keep the message."""
        raw = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        self.received.set()
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Accept user ``alerts`` with :data:`PASSWORD`."""
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        ok = login == ("alerts", PASSWORD)
        if ok:
            self.logins.append(login)
        return AuthResult(success=ok, handled=False)


def _certificate(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1: (server context, client context)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    """A plain SMTP server on 127.0.0.1 (no TLS, no login)."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def tls_smtp_server(tmp_path: Path) -> Iterator[tuple[Inbox, int, ssl.SSLContext]]:
    """An SMTP server requiring STARTTLS and a login: (inbox, port, client SSL context)."""
    inbox = Inbox()
    server_ctx, client_ctx = _certificate(tmp_path)
    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, port, client_ctx
    controller.stop()


# --- a real HTTP server ------------------------------------------------------------------


class Webhook:
    """A local HTTP server that records JSON posts and answers with scripted statuses."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.statuses: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.received = threading.Event()
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.gate.wait(30)
                length = int(self.headers.get("Content-Length", "0"))
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.paths.append(self.path)
                status = hook.statuses.pop(0) if hook.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                if status < 400:
                    hook.received.set()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    """A running webhook server."""
    hook = Webhook()
    hook.thread.start()
    yield hook
    hook.gate.set()
    hook.server.shutdown()
    hook.server.server_close()
    hook.thread.join(10)


# --- helpers -----------------------------------------------------------------------------


def _metric(value: float = 3.2) -> PerformanceMetric:
    return PerformanceMetric(
        "response_time", value, "seconds", 1_705_314_645.123, {"endpoint": "/api/users"}, {}
    )


def _fire(engine: AlertEngine, value: float = 3.2) -> None:
    engine.observe(_metric(value))


@pytest.fixture
def channels() -> Iterator[Channels]:
    """Channels of the test's own (stopped afterwards)."""
    own = Channels()
    yield own
    own.stop()
    own.set(None, None)


def _engine_with(channels: Channels) -> tuple[AlertEngine, NotificationDispatcher]:
    dispatcher = NotificationDispatcher(channels)
    engine = AlertEngine(dispatch=dispatcher.submit)
    engine.add(
        PerformanceAlert("response_time", 2.0, "gt", 0, notify={"email", "webhook"}, cooldown=0)
    )
    return engine, dispatcher


# --- e-mail ------------------------------------------------------------------------------


def test_email_reaches_a_real_smtp_server(
    smtp_server: tuple[Inbox, int], channels: Channels
) -> None:
    """A firing alert is e-mailed with the metric, value, threshold, duration and host."""
    inbox, port = smtp_server
    channels.set(EmailSender("127.0.0.1", "ops@example.com", port=port, tls="none"), None)
    engine, dispatcher = _engine_with(channels)
    try:
        _fire(engine)
        assert dispatcher.flush(20)
    finally:
        dispatcher.stop()
    assert inbox.received.is_set()
    (mail,) = inbox.messages
    assert mail["Subject"] == f"[PlexiChat FIRING] response_time > 2 on {host_name()}"
    assert mail["To"] == "ops@example.com"
    assert mail["From"] == f"plexichat@{host_name()}"
    body = mail.get_content()
    for line in (
        "Alert:      response_time > 2",
        "State:      firing (warning)",
        "Metric:     response_time {endpoint=/api/users}",
        "Value:      3.2 seconds",
        "Threshold:  > 2 seconds",
        "Duration:   condition must hold 0 s; held 0 s",
        f"Host:       {host_name()}",
        "Time:       2024-01-15T10:30:45.123Z",
    ):
        assert line in body.splitlines()
    assert inbox.envelopes == [(f"plexichat@{host_name()}", ["ops@example.com"])]


def test_email_with_starttls_and_login(
    tls_smtp_server: tuple[Inbox, int, ssl.SSLContext],
) -> None:
    """STARTTLS upgrades the connection before the login with the secret password."""
    inbox, port, client_ctx = tls_smtp_server
    sender = EmailSender(
        "127.0.0.1",
        "ops@example.com",
        port=port,
        tls="starttls",
        username="alerts",
        password=SecretStr(PASSWORD),
        sender="alerts@example.com",
        ssl_context=client_ctx,
    )
    sender(AlertMessage("subject line", "text", "body\n", {}))
    assert inbox.logins == [("alerts", PASSWORD)]
    assert inbox.messages[0]["Subject"] == "subject line"
    assert inbox.messages[0]["From"] == "alerts@example.com"


def test_email_over_implicit_tls(tmp_path: Path) -> None:
    """``tls="ssl"`` speaks SMTPS from the first byte (port 465 style)."""
    inbox = Inbox()
    server_ctx, client_ctx = _certificate(tmp_path)
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=server_ctx)
    controller.start()
    try:
        sender = EmailSender(
            "127.0.0.1", "ops@example.com", port=port, tls="ssl", ssl_context=client_ctx
        )
        sender(AlertMessage("over tls", "text", "body\n", {}))
    finally:
        controller.stop()
    assert [m["Subject"] for m in inbox.messages] == ["over tls"]


def test_default_ports_follow_the_tls_mode() -> None:
    """587 for starttls, 465 for ssl, 25 for none; an unknown mode is rejected."""
    ports = [EmailSender("h", "a@b.example", tls=m).port for m in ("starttls", "ssl", "none")]
    assert ports == [587, 465, 25]
    with pytest.raises(ValueError, match="invalid SMTP TLS mode 'tls'"):
        EmailSender("h", "a@b.example", tls="tls")  # type: ignore[arg-type]


def test_email_wrong_password_is_not_retried_and_not_shown(
    tls_smtp_server: tuple[Inbox, int, ssl.SSLContext],
) -> None:
    """A refused login is a permanent failure whose message names the user, not the password."""
    _, port, client_ctx = tls_smtp_server
    sender = EmailSender(
        "127.0.0.1",
        "ops@example.com",
        port=port,
        username="alerts",
        password=SecretStr("wrong-" + PASSWORD),
        ssl_context=client_ctx,
    )
    with pytest.raises(DeliveryError, match="refused the login of 'alerts'") as info:
        sender(AlertMessage("s", "t", "b\n", {}))
    assert not info.value.retry
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(sender)


def test_email_to_a_closed_port_is_retryable() -> None:
    """Nobody listening is a retryable delivery error naming the server."""
    port = _free_port()
    sender = EmailSender("127.0.0.1", "ops@example.com", port=port, tls="none", timeout=5)
    with pytest.raises(DeliveryError, match=f"SMTP 127.0.0.1:{port}: ConnectionRefusedError"):
        sender(AlertMessage("s", "t", "b\n", {}))


def test_configured_email_channel_end_to_end(smtp_server: tuple[Inbox, int]) -> None:
    """PLEXICHAT_LOG_ALERT_* settings turn e-mail on for alerts added in code."""
    inbox, port = smtp_server
    configure_logging(
        file_enabled=False,
        console_enabled=False,
        alerts_enabled=True,
        alert_email="ops@example.com",
        alert_smtp_host="127.0.0.1",
        alert_smtp_port=port,
        alert_smtp_tls="none",
    )
    engine = AlertEngine()
    engine.add(PerformanceAlert("response_time", 2.0, "gt", 0, severity="error"))
    _fire(engine)
    assert get_dispatcher().flush(20)
    assert inbox.messages[0]["Subject"].startswith("[PlexiChat FIRING] response_time > 2")


# --- webhook -----------------------------------------------------------------------------


def test_webhook_posts_slack_compatible_json(webhook: Webhook, channels: Channels) -> None:
    """The webhook receives ``text`` plus the alert's structured fields."""
    channels.set(None, WebhookSender(SecretStr(webhook.url)))
    engine, dispatcher = _engine_with(channels)
    try:
        _fire(engine)
        assert dispatcher.flush(20)
    finally:
        dispatcher.stop()
    (body,) = webhook.bodies
    assert body == {
        "text": f"[WARNING] response_time > 2 on {host_name()}: value 3.2 seconds "
        "(threshold > 2 seconds, held 0 s)",
        "status": "firing",
        "severity": "warning",
        "alert": "response_time > 2",
        "metric": "response_time",
        "value": 3.2,
        "unit": "seconds",
        "threshold": 2.0,
        "comparison": "gt",
        "duration": 0.0,
        "held_for": 0.0,
        "tags": {"endpoint": "/api/users"},
        "host": host_name(),
        "timestamp": "2024-01-15T10:30:45.123Z",
    }
    assert webhook.paths == [f"/services/{TOKEN}"]


def test_resolved_alert_is_posted_too(webhook: Webhook, channels: Channels) -> None:
    """Resolution is announced on the remote channels with status ``resolved``."""
    channels.set(None, WebhookSender(SecretStr(webhook.url)))
    engine, dispatcher = _engine_with(channels)
    try:
        _fire(engine, 3.0)
        _fire(engine, 1.0)
        assert dispatcher.flush(20)
    finally:
        dispatcher.stop()
    assert [b["status"] for b in webhook.bodies] == ["firing", "resolved"]
    assert webhook.bodies[1]["text"].startswith("[OK] response_time > 2")


def test_failing_webhook_is_retried_with_backoff_while_recording_continues(
    webhook: Webhook, channels: Channels, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two 500s then success: retried with doubling waits, the outage logged once, the
    recovery logged, the token never shown, and the recording thread never waits."""
    configure_logging(file_enabled=False, console_enabled=False)
    webhook.statuses = [500, 503]
    webhook.gate.clear()  # the server holds the first request until recording is done
    channels.set(None, WebhookSender(SecretStr(webhook.url)), backoff=0.01, max_backoff=0.02)
    engine, dispatcher = _engine_with(channels)
    recorded = 0
    with capture_logs() as events:
        try:
            _fire(engine)
            for i in range(2000):
                engine.observe(_metric(3.0 + i % 2))
                recorded += 1
            webhook.gate.set()
            assert dispatcher.flush(30)
        finally:
            dispatcher.stop()
    assert recorded == 2000
    assert webhook.received.is_set()
    sender = channels.webhook
    assert sender is not None
    assert (sender.retries, sender.sent, sender.failed) == (2, 1, 0)
    assert [b["status"] for b in webhook.bodies] == ["firing"] * 3
    outage = [e for e in events if e.get("context", {}).get("channel") == "webhook"]
    assert [(e["level"], e["message"]) for e in outage] == [
        (
            "WARNING",
            "Alert webhook delivery failed, retrying with backoff: "
            f"webhook {webhook.url.split('/services')[0]} answered HTTP 500",
        ),
        ("INFO", "Alert webhook delivery works again"),
    ]
    assert outage[0]["category"] == "performance"
    err = capfd.readouterr().err
    assert "answered HTTP 500" in err
    assert TOKEN not in err
    assert all(TOKEN not in json.dumps(e) for e in events)


def test_rejected_webhook_is_not_retried(webhook: Webhook) -> None:
    """A 4xx answer (other than 408/429) is given up at once and counted."""
    webhook.statuses = [404]
    sender: RetryingSender[AlertMessage] = RetryingSender(
        "webhook", WebhookSender(SecretStr(webhook.url)), backoff=0.01
    )
    try:
        sender.submit(AlertMessage("s", "t", "b", {}))
        assert sender.flush(20)
    finally:
        sender.stop()
    assert (sender.failed, sender.retries, len(webhook.bodies)) == (1, 0, 1)


def test_unreachable_webhook_gives_up_after_the_attempts() -> None:
    """Connection failures are retried ``attempts`` times, then counted as failed."""
    url = f"http://127.0.0.1:{_free_port()}/hook/{TOKEN}"
    sender: RetryingSender[AlertMessage] = RetryingSender(
        "webhook", WebhookSender(SecretStr(url), timeout=5), attempts=3, backoff=0.0
    )
    try:
        sender.submit(AlertMessage("s", "t", "b", {}))
        assert sender.flush(30)
    finally:
        sender.stop()
    assert (sender.failed, sender.retries, sender.sent) == (1, 2, 0)
    assert error_reporter.counts["alerts-webhook"] == 3


def test_stop_ends_a_retry_wait() -> None:
    """Stopping a sender in the middle of a long backoff gives the item up at once."""
    calls = threading.Event()

    def send(item: str) -> None:
        calls.set()
        raise DeliveryError("down")

    sender: RetryingSender[str] = RetryingSender("email", send, backoff=3600)
    sender.submit("x")
    assert calls.wait(10)
    assert sender.stop(10)
    assert (sender.failed, sender.worker.running) == (1, False)


def test_bad_retry_policy_is_rejected() -> None:
    """Zero attempts or negative waits raise ValueError."""
    with pytest.raises(ValueError, match="attempts >= 1"):
        RetryingSender("email", print, attempts=0)


def test_invalid_webhook_url_is_rejected_without_showing_it() -> None:
    """A non-http(s) URL fails with a message that hides the value."""
    with pytest.raises(ValueError, match="value hidden") as info:
        WebhookSender(SecretStr(f"ftp://example.com/{TOKEN}"))
    assert TOKEN not in str(info.value)


# --- configuration -----------------------------------------------------------------------


def test_alerts_disabled_keeps_callbacks_but_not_remote_channels(webhook: Webhook) -> None:
    """With alerts_enabled false the callback still runs; nothing is posted."""
    configure_logging(
        file_enabled=False,
        console_enabled=False,
        alerts_enabled=False,
        alert_webhook_url=webhook.url,
    )
    seen: list[float] = []
    engine = AlertEngine()
    engine.add(
        PerformanceAlert("response_time", 2.0, "gt", 0, callback=lambda m: seen.append(m.value))
    )
    _fire(engine)
    assert get_dispatcher().flush(20)
    assert seen == [3.2]
    assert get_channels().webhook is None
    assert webhook.bodies == []


def test_email_without_smtp_host_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    """alert_email alone leaves e-mail off and says which setting is missing."""
    configure_logging(
        file_enabled=False, console_enabled=False, alerts_enabled=True, alert_email="a@b.example"
    )
    assert get_channels().email is None
    assert "set PLEXICHAT_LOG_ALERT_SMTP_HOST" in capfd.readouterr().err


def test_invalid_configured_webhook_url_is_reported_hidden(
    capfd: pytest.CaptureFixture[str],
) -> None:
    """A bad alert_webhook_url turns the webhook off and is reported without its value."""
    configure_logging(
        file_enabled=False,
        console_enabled=False,
        alerts_enabled=True,
        alert_webhook_url=f"hooks.example.com/{TOKEN}",
    )
    err = capfd.readouterr().err
    assert "invalid alert_webhook_url (value hidden" in err
    assert TOKEN not in err
    assert get_channels().webhook is None


def test_reconfiguring_with_the_same_settings_keeps_the_channels(webhook: Webhook) -> None:
    """configure_logging with unchanged alert settings keeps the running senders."""
    settings: dict[str, Any] = {
        "file_enabled": False,
        "console_enabled": False,
        "alerts_enabled": True,
        "alert_webhook_url": webhook.url,
    }
    configure_logging(**settings)
    first = get_channels().webhook
    configure_logging(**settings, level="DEBUG")
    assert first is not None
    assert get_channels().webhook is first


def test_threat_alerts_go_out_through_the_webhook(webhook: Webhook) -> None:
    """A brute-force detection is posted to the alert webhook when alerts are enabled."""
    configure_logging(
        file_enabled=False,
        console_enabled=False,
        alerts_enabled=True,
        alert_webhook_url=webhook.url,
        threat_rules={"brute_force": {"threshold": 3}},
    )
    log = get_security_logger()
    for _ in range(3):
        log.log_security_event(
            SecurityEvent(SecurityEventType.LOGIN_FAILURE, user_id="ann", ip_address="10.0.0.9")
        )
    assert get_channels().flush(20)
    (body,) = webhook.bodies
    assert body["alert"] == "brute_force"
    assert body["key"] == "ann"
    assert body["count"] == 3
    assert body["text"].startswith("[SECURITY HIGH] brute_force on ")


def test_secrets_never_appear_in_config_show(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`plexichat-logs config show` (table and JSON) masks the SMTP password and webhook URL."""
    monkeypatch.setenv("PLEXICHAT_LOG_ALERT_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("PLEXICHAT_LOG_ALERT_WEBHOOK_URL", f"https://hooks.example.com/{TOKEN}")
    monkeypatch.setenv("PLEXICHAT_LOG_ALERT_SMTP_HOST", "smtp.example.com")
    assert main(["config", "show"]) == 0
    table = capsys.readouterr().out
    assert main(["config", "show", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "smtp.example.com" in table
    assert doc["alert_smtp_password"] == {
        "value": "**********",
        "source": "env PLEXICHAT_LOG_ALERT_SMTP_PASSWORD",
    }
    assert doc["alert_webhook_url"]["value"] == "**********"
    for out in (table, json.dumps(doc)):
        assert PASSWORD not in out
        assert TOKEN not in out
