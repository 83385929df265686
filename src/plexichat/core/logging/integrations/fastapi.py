"""Request logging for FastAPI and any Starlette/ASGI application.

``add_logging_middleware(app)`` installs :class:`LoggingMiddleware`, a pure ASGI middleware
(streaming responses and WebSockets pass through untouched). For every HTTP request it:

- takes the request id from ``X-Request-ID`` when it is safe, else generates one, binds it
  into the log context for the whole request and echoes it in the response;
- observes the response time into ``http_request_duration_seconds`` and counts
  ``http_requests_total`` / ``http_request_errors_total`` (tags: method, route template,
  status);
- writes one access record (category ``api``: INFO, WARNING for 4xx, ERROR for 5xx and
  exceptions, with the traceback) and re-raises the application's exceptions.

Example:
    >>> from fastapi import FastAPI
    >>> from plexichat.core.logging.integrations.fastapi import add_logging_middleware
    >>> app = FastAPI()
    >>> add_logging_middleware(app)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._core.context import log_context
from .._core.errors import error_reporter
from ._http import (
    DEFAULT_LOGGER_NAME,
    REQUEST_ID_HEADER,
    UNMATCHED_ROUTE,
    AccessObserver,
    RequestInfo,
    accept_request_id,
    check_header_name,
)

__all__ = ["LoggingMiddleware", "add_logging_middleware", "add_metrics_route", "route_template"]


class LoggingMiddleware:
    """ASGI middleware: request id, access record and HTTP metrics for every request.

    Args:
        app: the ASGI application to wrap.
        logger_name: logger of the access records (``"plexichat.http"``).
        exclude_paths: paths answered without access record and metrics (exact, or a prefix
            before a trailing ``*``); None follows the ``http_exclude_paths`` setting
            (default ``["/health"]``). Excluded requests still get a request id.
        request_id_header: the header the id is read from and echoed in.

    Raises:
        ValueError: an excluded path that does not start with ``/`` or a bad header name.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        logger_name: str = DEFAULT_LOGGER_NAME,
        exclude_paths: Sequence[str] | None = None,
        request_id_header: str = REQUEST_ID_HEADER,
    ) -> None:
        self.app = app
        self.observer = AccessObserver(logger_name, exclude_paths)
        self.header = check_header_name(request_id_header).lower().encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection (``http`` and ``websocket``; others pass through)."""
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            request_id, _ = accept_request_id(_header(scope, self.header))
            with log_context(request_id=request_id):
                await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        try:
            info, excluded, root = self._prepare(scope)
        except Exception as exc:  # noqa: BLE001 - never break the application
            error_reporter.report("integrations.asgi", f"request not observed: {exc!r}")
            await self.app(scope, receive, send)
            return
        echoed = (self.header, info.request_id.encode("latin-1"))
        status: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                headers = list(message.get("headers", ()))
                if not any(name.lower() == echoed[0] for name, _ in headers):
                    message = {**message, "headers": [*headers, echoed]}
            await send(message)

        with log_context(request_id=info.request_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception as exc:
                if not excluded:
                    sent = status[0] if status else 500
                    self._finish(info, scope, root, sent, start, exc)
                raise
            if not excluded:
                self._finish(info, scope, root, status[0] if status else 500, start, None)

    def _prepare(self, scope: Scope) -> tuple[RequestInfo, bool, str]:
        path = scope.get("path", "")
        request_id, replaced = accept_request_id(_header(scope, self.header))
        client = scope.get("client")
        agent = _header(scope, b"user-agent")
        info = RequestInfo(
            method=scope.get("method", "GET"),
            path=path,
            request_id=request_id,
            client_ip=client[0] if client else None,
            user_agent=agent,
            id_replaced=replaced,
        )
        return info, self.observer.excluded(path), scope.get("root_path", "")

    def _finish(
        self,
        info: RequestInfo,
        scope: Scope,
        root: str,
        status: int,
        start: float,
        exc: BaseException | None,
    ) -> None:
        duration = time.perf_counter() - start
        try:
            route = route_template(scope, root)
        except Exception as error:  # noqa: BLE001 - a strange router never breaks a request
            error_reporter.report("integrations.route", f"route not found: {error!r}")
            route = UNMATCHED_ROUTE
        self.observer.finish(info, route=route, status=status, duration=duration, exc=exc)


def route_template(scope: Scope, root_path: str = "") -> str:
    """The route template that handled a request, from the scope the router filled in.

    Args:
        scope: the ASGI scope after the application handled it.
        root_path: the scope's ``root_path`` before routing (mount prefixes are kept).

    Returns:
        ``"/users/{user_id}"``, ``"/files/{path}"`` for a mounted app without its own
        routes, or ``"<unmatched>"``.
    """
    route: Any = scope.get("route")
    now_root: str = scope.get("root_path", "")
    prefix = now_root[len(root_path) :] if now_root.startswith(root_path) else ""
    if route is None or isinstance(route, Mount):  # a mount's own app, or no route at all
        return f"{prefix}/{{path}}" if prefix else UNMATCHED_ROUTE
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return UNMATCHED_ROUTE
    return prefix + template


def add_logging_middleware(
    app: Starlette,
    *,
    logger_name: str = DEFAULT_LOGGER_NAME,
    exclude_paths: Sequence[str] | None = None,
    request_id_header: str = REQUEST_ID_HEADER,
) -> None:
    """Install :class:`LoggingMiddleware` on a FastAPI or Starlette application.

    Args:
        app: the application (before it starts serving).
        logger_name: logger of the access records.
        exclude_paths: paths without access record and metrics; None follows the
            ``http_exclude_paths`` setting (default ``["/health"]``).
        request_id_header: the header the request id is read from and echoed in.

    Raises:
        ValueError: a bad excluded path or header name (checked now, not per request).
    """
    check_header_name(request_id_header)
    if exclude_paths is not None:
        AccessObserver(logger_name, exclude_paths)  # validate before the app starts
    app.add_middleware(
        LoggingMiddleware,
        logger_name=logger_name,
        exclude_paths=exclude_paths,
        request_id_header=request_id_header,
    )


def add_metrics_route(app: Starlette, path: str = "/metrics") -> None:
    """Serve the metrics registry for Prometheus scrapes at ``path`` (GET).

    Put it behind your own access control when the application is reachable from outside:
    metrics carry no secrets but describe the application.
    """
    from starlette.requests import Request
    from starlette.responses import Response

    from ..metrics.prometheus import exposition

    async def metrics(request: Request) -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    app.add_route(path, metrics, methods=["GET"], include_in_schema=False)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            text: str = value.decode("latin-1")
            return text
    return None
