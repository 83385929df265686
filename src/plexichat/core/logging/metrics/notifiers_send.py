"""The remote alert channels: e-mail over SMTP and a JSON webhook over HTTP(S).

Both raise :class:`DeliveryError` with a message that never holds a secret (the SMTP
password, or the webhook URL's path and query, where services put their tokens).
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import SecretStr

from .notifiers_format import AlertMessage, host_name
from .notifiers_worker import DeliveryError

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_RESPONSE_BYTES", "EmailSender", "WebhookSender", "webhook_target"]

MAX_RESPONSE_BYTES = 4096
"""The most bytes of a webhook's response body that are read (the rest is discarded)."""

TlsMode = Literal["starttls", "ssl", "none"]
_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


class EmailSender:
    """Sends alert messages by SMTP (one connection per message).

    Args:
        host: the SMTP server.
        recipient: the address alerts go to.
        port: the server port (default by ``tls``: 587, 465 or 25).
        tls: ``"starttls"`` (upgrade a plain connection), ``"ssl"`` (SMTPS) or ``"none"``.
        username: log in as this user (with ``password``) when given.
        password: the SMTP password (kept as a secret).
        sender: the From address (default ``plexichat@<host name>``).
        timeout: seconds for connecting and each SMTP command.
        ssl_context: certificate checks for starttls/ssl (default: the system's trust store).
    """

    def __init__(
        self,
        host: str,
        recipient: str,
        *,
        port: int | None = None,
        tls: TlsMode = "starttls",
        username: str | None = None,
        password: SecretStr | None = None,
        sender: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if tls not in _DEFAULT_PORTS:
            raise ValueError(f"invalid SMTP TLS mode {tls!r}: allowed are starttls, ssl, none")
        self.host = host
        self.port = port or _DEFAULT_PORTS[tls]
        self.tls = tls
        self.recipient = recipient
        self.username = username
        self._password = password
        self.sender = sender or f"plexichat@{host_name()}"
        self.timeout = timeout
        self._context = ssl_context

    def __repr__(self) -> str:
        return f"EmailSender({self.host}:{self.port}, tls={self.tls}, to={self.recipient})"

    def message(self, alert: AlertMessage) -> EmailMessage:
        """The e-mail for ``alert``."""
        mail = EmailMessage()
        mail["Subject"] = alert.subject
        mail["From"] = self.sender
        mail["To"] = self.recipient
        mail.set_content(alert.body)
        return mail

    def __call__(self, alert: AlertMessage) -> None:
        """Send one alert.

        Raises:
            DeliveryError: the server could not be reached or refused the message.
        """
        where = f"SMTP {self.host}:{self.port}"
        try:
            context = self._context or ssl.create_default_context()
            smtp: smtplib.SMTP
            if self.tls == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.tls == "starttls":
                    smtp.starttls(context=context)
                if self.username:
                    password = self._password.get_secret_value() if self._password else ""
                    smtp.login(self.username, password)
                smtp.send_message(self.message(alert))
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"{where} refused the login of {self.username!r} ({exc.smtp_code}); check "
                "alert_smtp_username and alert_smtp_password",
                retry=False,
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{where} answered {exc.smtp_code}", retry=exc.smtp_code < 500
            ) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError(
                f"{where} refused the recipient {self.recipient!r}", retry=False
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def webhook_target(url: str) -> str:
    """What may be shown of a webhook URL: scheme, host and port (never path or query)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "webhook (invalid URL)"
    return f"{parts.scheme}://{host}{port}"


class WebhookSender:
    """Posts alert messages as JSON to a URL (Slack-compatible: ``text`` plus fields).

    Args:
        url: the http(s) URL, kept as a secret (incoming-webhook URLs embed tokens).
        timeout: seconds for the request: each network operation (connecting, sending, each
            read) is bounded by it, and reading the response stops once it has passed since
            the start. At most :data:`MAX_RESPONSE_BYTES` of the response body are read.
        clock: monotonic seconds for that deadline (a fake clock in tests).

    Raises:
        ValueError: the URL is not http(s) (the message shows no part of it but the scheme).
    """

    def __init__(
        self,
        url: SecretStr,
        *,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        text = url.get_secret_value()
        scheme = text.partition("://")[0].lower() if "://" in text else ""
        if scheme not in ("http", "https") or not urlsplit(text).hostname:
            raise ValueError(
                "invalid alert_webhook_url (value hidden, it may hold a token): expected an "
                "http:// or https:// URL such as https://hooks.slack.com/services/..."
            )
        self._url = url
        self.target = webhook_target(text)
        self.timeout = timeout
        self._clock = clock

    def __repr__(self) -> str:
        return f"WebhookSender({self.target}/***)"

    def __call__(self, alert: AlertMessage) -> None:
        """Post one alert.

        Raises:
            DeliveryError: the request failed or the server answered with a status other
                than 2xx (429, 408 and 5xx are retried; 3xx, since redirects are not
                followed, and other 4xx are not).
        """
        import httpx

        deadline = self._clock() + self.timeout
        try:
            with httpx.stream(
                "POST",
                self._url.get_secret_value(),
                json=alert.webhook_json(),
                timeout=self.timeout,
                headers={"User-Agent": "plexichat-logging-alerts"},
                follow_redirects=False,
            ) as response:
                status = response.status_code
                _drain(response, deadline, self._clock)
        except httpx.HTTPError as exc:  # its text can hold the URL: show only the kind
            raise DeliveryError(f"webhook {self.target}: {type(exc).__name__}") from None
        if 200 <= status < 300:
            return
        if 300 <= status < 400:
            raise DeliveryError(
                f"webhook {self.target} answered HTTP {status} (a redirect): redirects are not "
                "followed; update alert_webhook_url to the final URL",
                retry=False,
            )
        raise DeliveryError(
            f"webhook {self.target} answered HTTP {status}",
            retry=status == 429 or status >= 500 or status == 408,
        )


def _drain(response: httpx.Response, deadline: float, clock: Callable[[], float]) -> None:
    """Read at most :data:`MAX_RESPONSE_BYTES` of the body, and stop at ``deadline``: the
    status is all that counts, and a slow or huge body must not hold the channel."""
    read = 0
    for chunk in response.iter_raw():
        read += len(chunk)
        if read >= MAX_RESPONSE_BYTES or clock() >= deadline:
            break
