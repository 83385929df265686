"""Request logging for Flask: the FastAPI middleware's behaviour with Flask's request hooks.

``init_app(app)`` registers a ``before_request`` hook (first, so the application's own hooks
already log with the request id), an ``after_request`` hook that echoes the id, and a
``teardown_request`` hook that records the metrics and writes the access record (also when
the view raised; Flask then answers 500). State lives on ``flask.g``.

A streamed response (a generator body, with or without ``stream_with_context``) has the
request id bound around every step of its body, and its access record is written when the
server closes the response, so the duration covers the whole body.

Example:
    >>> from flask import Flask
    >>> from plexichat.core.logging.integrations.flask import init_app
    >>> app = Flask(__name__)
    >>> init_app(app)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request

from .._core.context import log_context, unbind_context
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

__all__ = ["EXTENSION_KEY", "add_metrics_route", "init_app"]

EXTENSION_KEY = "plexichat_logging"
"""The key of this integration in ``app.extensions``."""
_G_KEY = "_plexichat_request"


@dataclass(slots=True)
class _Request:
    """Per-request state kept on ``flask.g``."""

    info: RequestInfo
    start: float
    context: log_context
    excluded: bool
    status: int | None = None
    streamed: bool = False
    finished: bool = False
    error: BaseException | None = None


class _Hooks:
    """The three request hooks of one application."""

    def __init__(self, observer: AccessObserver, header: str) -> None:
        self.observer = observer
        self.header = header

    def before(self) -> None:
        try:
            request_id, replaced = accept_request_id(request.headers.get(self.header))
            info = RequestInfo(
                method=request.method,
                path=request.path,
                request_id=request_id,
                client_ip=request.remote_addr,
                user_agent=request.headers.get("User-Agent"),
                id_replaced=replaced,
            )
            context = log_context(request_id=request_id)
            state = _Request(info, time.perf_counter(), context, self.observer.excluded(info.path))
            context.__enter__()
            setattr(g, _G_KEY, state)
        except Exception as exc:  # noqa: BLE001 - never break the application
            error_reporter.report("integrations.flask", f"request not observed: {exc!r}")

    def after(self, response: Response) -> Response:
        state: _Request | None = g.get(_G_KEY)
        if state is not None:
            state.status = response.status_code
            if self.header not in response.headers:
                response.headers[self.header] = state.info.request_id
            if response.is_streamed:
                self._stream(state, response)
        return response

    def _stream(self, state: _Request, response: Response) -> None:
        """Bind the request id around the body's steps; finish the request when it closes."""
        try:
            rule = request.url_rule
            route = rule.rule if rule is not None else UNMATCHED_ROUTE

            def done() -> None:
                if not state.excluded and not state.finished:
                    state.finished = True
                    self._finish(state, route, state.error)

            if not response.direct_passthrough:  # files (send_file) are left to the server
                response.response = _bound_body(response.response, state, done)
            response.call_on_close(done)  # also when the body was never read to its end
            state.streamed = True
        except Exception as exc:  # noqa: BLE001 - never break the application
            error_reporter.report("integrations.flask", f"stream not observed: {exc!r}")

    def _finish(self, state: _Request, route: str, exc: BaseException | None) -> None:
        status = state.status if state.status is not None else 500
        duration = time.perf_counter() - state.start
        self.observer.finish(state.info, route=route, status=status, duration=duration, exc=exc)

    def teardown(self, exc: BaseException | None) -> None:
        state: _Request | None = g.pop(_G_KEY, None)
        if state is None:
            return
        try:
            if state.streamed:  # finished when the body ends or is closed
                if exc is not None and state.error is None:
                    state.error = exc
                return
            if not state.excluded:
                rule = request.url_rule
                self._finish(state, rule.rule if rule is not None else UNMATCHED_ROUTE, exc)
        finally:
            try:
                state.context.__exit__(None, None, None)
            except ValueError:  # pragma: no cover - hooks run in different contexts (odd server)
                unbind_context("request_id")


def _bound_body(body: Iterable[Any], state: _Request, done: Callable[[], None]) -> Iterator[Any]:
    """``body``, each step run with the request id bound; ``done()`` when it ends or fails."""
    iterator = iter(body)
    try:
        while True:
            with log_context(request_id=state.info.request_id):
                try:
                    chunk = next(iterator)
                except StopIteration:
                    done()
                    return
                except Exception as exc:
                    state.error = exc
                    done()
                    raise
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            with log_context(request_id=state.info.request_id):
                close()


def init_app(
    app: Flask,
    *,
    logger_name: str = DEFAULT_LOGGER_NAME,
    exclude_paths: Sequence[str] | None = None,
    request_id_header: str = REQUEST_ID_HEADER,
) -> None:
    """Install request logging on a Flask application (again: replaces the earlier setup).

    Args:
        app: the application.
        logger_name: logger of the access records (``"plexichat.http"``).
        exclude_paths: paths without access record and metrics (exact, or a prefix before a
            trailing ``*``); None follows the ``http_exclude_paths`` setting (default
            ``["/health"]``). Excluded requests still get a request id.
        request_id_header: the header the request id is read from and echoed in.

    Raises:
        ValueError: a bad excluded path or header name.
    """
    hooks = _Hooks(AccessObserver(logger_name, exclude_paths), check_header_name(request_id_header))
    previous = app.extensions.get(EXTENSION_KEY)
    if isinstance(previous, _Hooks):  # a second init_app replaces the first
        app.before_request_funcs[None].remove(previous.before)
        app.after_request_funcs[None].remove(previous.after)
        app.teardown_request_funcs[None].remove(previous.teardown)
    # First in the lists: the id is bound before the application's own before_request hooks
    # run; after_request and teardown hooks run in reverse order, so ours run last.
    app.before_request_funcs.setdefault(None, []).insert(0, hooks.before)
    app.after_request_funcs.setdefault(None, []).insert(0, hooks.after)
    app.teardown_request_funcs.setdefault(None, []).insert(0, hooks.teardown)
    app.extensions[EXTENSION_KEY] = hooks


def add_metrics_route(app: Flask, path: str = "/metrics") -> None:
    """Serve the metrics registry for Prometheus scrapes at ``path`` (GET).

    Put it behind your own access control when the application is reachable from outside:
    metrics carry no secrets but describe the application.
    """
    from flask import Response

    from ..metrics.prometheus import exposition

    def plexichat_metrics() -> Response:
        body, content_type = exposition()
        return Response(body, mimetype=None, content_type=content_type)

    app.add_url_rule(path, "plexichat_metrics", plexichat_metrics, methods=["GET"])
