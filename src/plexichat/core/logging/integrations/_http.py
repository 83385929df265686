"""What the FastAPI and Flask integrations share: request ids, the access record, HTTP metrics.

Framework-free, so both middlewares produce the same records and metric series.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from .. import get_logger
from .._core.errors import error_reporter
from .._core.levels import LogCategory
from .._core.manager import get_logging_manager
from ..metrics.registry import get_registry
from ._checks import check_exclude_paths, path_excluded

__all__ = [
    "DEFAULT_LOGGER_NAME",
    "ERRORS_TOTAL",
    "REQUESTS_TOTAL",
    "REQUEST_DURATION",
    "REQUEST_ID_HEADER",
    "UNMATCHED_ROUTE",
    "AccessObserver",
    "RequestInfo",
    "accept_request_id",
    "check_header_name",
    "new_request_id",
    "normalize_method",
]

REQUEST_ID_HEADER = "X-Request-ID"
"""The header a request id is read from and echoed in."""
DEFAULT_LOGGER_NAME = "plexichat.http"
"""The logger access records are written to."""
UNMATCHED_ROUTE = "<unmatched>"
"""The route tag of a request no route matched (404s for arbitrary paths share one series)."""
REQUEST_DURATION = "http_request_duration_seconds"
REQUESTS_TOTAL = "http_requests_total"
ERRORS_TOTAL = "http_request_errors_total"

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_HEADER = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


def new_request_id() -> str:
    """A new request id: 32 hexadecimal characters (a random UUID4)."""
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> tuple[str, bool]:
    """The client's request id if it is safe to log and echo, else a new one.

    Safe means 1 to 128 characters among letters, digits, ``.``, ``_``, ``:`` and ``-``: no
    CR/LF (header and log injection), no spaces, no quotes, bounded size.

    Args:
        value: the ``X-Request-ID`` header as received, or None when absent.

    Returns:
        ``(request_id, replaced)``: ``replaced`` is True when a value was sent but refused.
    """
    if value is None or value == "":
        return new_request_id(), False
    if _REQUEST_ID.fullmatch(value):
        return value, False
    return new_request_id(), True


def check_header_name(name: str) -> str:
    """Validate the request id header name (an HTTP token).

    Raises:
        ValueError: naming the bad value and the allowed characters.
    """
    if not isinstance(name, str) or not _HEADER.fullmatch(name):
        raise ValueError(
            f"invalid request_id_header {name!r}: use an HTTP header name of letters, digits"
            " and '-' (at most 64 characters), e.g. 'X-Request-ID'"
        )
    return name


def normalize_method(method: str) -> str:
    """The method as a metric tag: a standard method in upper case, anything else ``OTHER``.

    Clients choose the method, so it is bounded before it becomes a tag.
    """
    upper = method.upper()
    return upper if upper in _METHODS else "OTHER"


@dataclass(slots=True)
class RequestInfo:
    """What an access record says about one request (filled in by a middleware)."""

    method: str
    path: str
    request_id: str
    client_ip: str | None = None
    user_agent: str | None = None
    id_replaced: bool = False


class AccessObserver:
    """Writes the access record and records the HTTP metrics of finished requests.

    Never raises: a failure here is reported once on stderr (``error_reporter``) and the
    request goes on; the application's own exceptions are the middleware's to re-raise.

    Args:
        logger_name: logger of the access records.
        exclude_paths: paths without access record and metrics (exact, or a prefix before a
            trailing ``*``); None follows the ``http_exclude_paths`` setting.
    """

    def __init__(
        self, logger_name: str = DEFAULT_LOGGER_NAME, exclude_paths: Sequence[str] | None = None
    ) -> None:
        self.logger_name = logger_name
        self.exclude_paths = None if exclude_paths is None else check_exclude_paths(exclude_paths)

    def excluded(self, path: str) -> bool:
        """Whether ``path`` is passed through without access record and metrics."""
        patterns = self.exclude_paths
        if patterns is None:
            try:
                patterns = get_logging_manager().config.http_exclude_paths
            except Exception as exc:  # noqa: BLE001 - a bad setting never breaks a request
                error_reporter.report("integrations.config", f"http_exclude_paths: {exc!r}")
                patterns = []
        return path_excluded(path, patterns)

    def finish(
        self,
        info: RequestInfo,
        *,
        route: str,
        status: int,
        duration: float,
        exc: BaseException | None = None,
    ) -> None:
        """Record the metrics and write the access record of one finished request.

        Args:
            info: the request.
            route: the matched route template (``/users/{id}``) or :data:`UNMATCHED_ROUTE`.
            status: the response status sent (500 when the application raised first).
            duration: seconds from the request's arrival to the end of the response.
            exc: the exception the application raised, if any (logged with its traceback).
        """
        method = normalize_method(info.method)
        failed = exc is not None or status >= 500
        try:
            tags = {"method": method, "route": route, "status": str(status)}
            registry = get_registry()
            registry.histogram(REQUEST_DURATION, tags).observe(duration)
            registry.counter(REQUESTS_TOTAL, tags).inc()
            if failed:
                registry.counter(ERRORS_TOTAL, tags).inc()
        except Exception as error:  # noqa: BLE001 - metrics never break a request
            error_reporter.report("integrations.metrics", f"HTTP metrics not recorded: {error!r}")
        try:
            self._log(info, method, route, status, duration, exc, failed)
        except Exception as error:  # noqa: BLE001 - logging never breaks a request
            error_reporter.report("integrations.access", f"access record not written: {error!r}")

    def _log(
        self,
        info: RequestInfo,
        method: str,
        route: str,
        status: int,
        duration: float,
        exc: BaseException | None,
        failed: bool,
    ) -> None:
        level = 40 if failed else 30 if status >= 400 else 20  # ERROR, WARNING, INFO
        duration_ms = round(duration * 1000.0, 3)
        context: dict[str, object] = {
            "request_id": info.request_id,
            "method": method,
            "route": route,
            "path": info.path,
            "status_code": status,
        }
        if info.client_ip is not None:
            context["ip_address"] = info.client_ip
        if info.user_agent is not None:
            context["user_agent"] = info.user_agent
        metadata: dict[str, object] = {"duration_ms": duration_ms}
        if info.id_replaced:
            metadata["request_id_replaced"] = True
        message = f"{method} {info.path} {status} ({duration_ms:.1f} ms)"
        if exc is not None:
            message += f": {type(exc).__name__}"
        get_logger(self.logger_name).log(
            level,
            message,
            exc_info=exc,
            extra={"category": LogCategory.API, "context": context, "metadata": metadata},
        )
