"""``POST /export``: download a slice of the store as JSON, NDJSON, CSV or text, streamed.

The filters are checked (422) before any byte is sent. The export then runs
:func:`~plexichat.core.logging.store.export.export_records` in a thread of its own, writing
into a bounded pipe the response reads from: memory stays at a few chunks of 256 KiB
whatever the size of the export, a slow client slows the export down, and a client that
goes away stops it. Admin only; every export is audited.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, BinaryIO, Final, cast

import anyio.to_thread
import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import ValidationError

from .._core.errors import error_reporter
from ..store.base import LogQuery, LogStore
from ..store.export import export_records
from .auth import Principal
from .deps import PREFIX, get_state, require
from .models import ERROR_RESPONSES, ErrorMessage, ExportRequest, InvalidRequest, LogEntry
from .params import (
    MAX_WHERE,
    WHERE_PREFIXES,
    FilterError,
    audit_call,
    filter_to_query,
    http_error,
    run_query,
)
from .state import ServerState

__all__ = ["MAX_BODY_BYTES", "MAX_BODY_DEPTH", "MEDIA_TYPES", "router"]

router = APIRouter(prefix=PREFIX, tags=["export"])
"""``POST /export`` (included by :mod:`.router` under ``/api/v2/logs``)."""

MEDIA_TYPES: Final = {
    "json": "application/json",
    "ndjson": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}
"""The ``Content-Type`` of each export format."""

_PIPE_DEPTH = 4  # chunks of up to ~256 KiB buffered between the export thread and the client
_WAIT = 0.25  # seconds between two checks of the other side while waiting


class _CancelledError(Exception):
    """The client went away: the export thread stops."""


class _Pipe:
    """A bounded pipe of byte chunks: written by the export thread, read by the response."""

    def __init__(self, depth: int = _PIPE_DEPTH) -> None:
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(depth)
        self._closed = threading.Event()

    # --- the export thread's side (the part of BinaryIO export_records uses) ----------------
    def write(self, data: bytes) -> int:
        """Queue one chunk, waiting while the pipe is full.

        Raises:
            _CancelledError: the reader is gone.
        """
        self._put(bytes(data))
        return len(data)

    def flush(self) -> None:
        """Nothing to do: chunks are queued as they are written."""

    def finish(self, error: BaseException | None = None) -> None:
        """Mark the end of the export (or its failure); gives up if the reader is gone."""
        try:
            self._put(error)
        except _CancelledError:
            pass

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_WAIT)
                return
            except queue.Full:
                continue
        raise _CancelledError

    # --- the response's side --------------------------------------------------------------
    def get(self) -> bytes | BaseException | None:
        """The next chunk, the export's error, or None at the end (or once closed)."""
        while True:
            try:
                return self._queue.get(timeout=_WAIT)
            except queue.Empty:
                if self._closed.is_set():
                    return None

    def close(self) -> None:
        """The reader is done: the writer stops at its next chunk."""
        self._closed.set()


def _run(store: LogStore, query: LogQuery, fmt: str, pipe: _Pipe) -> None:
    """The export thread: write everything into the pipe, then its end (or the error)."""
    try:
        export_records(store, query, fmt, cast(BinaryIO, pipe))
    except _CancelledError:
        return
    except Exception as exc:  # noqa: BLE001 - handed to the response, which aborts
        error_reporter.report("server-export", f"export failed mid-stream: {exc!r}")
        pipe.finish(exc)
        return
    pipe.finish()


async def _chunks(pipe: _Pipe) -> AsyncIterator[bytes]:
    """The response body: the pipe's chunks; an export error aborts the response (the
    client sees an incomplete download rather than a file that looks whole)."""
    try:
        while True:
            item = await anyio.to_thread.run_sync(pipe.get, abandon_on_cancel=True)
            if item is None:
                return
            if isinstance(item, BaseException):
                raise RuntimeError("the export failed mid-stream; see the server log") from item
            yield item
    finally:
        pipe.close()


def _filters(body: ExportRequest) -> dict[str, Any]:
    """The body's filters as a filter mapping (``where`` keys and their number checked)."""
    for key in body.where:
        if not key.startswith(WHERE_PREFIXES):
            raise FilterError(
                "where",
                f"invalid field {key[:80]!r}: use context.NAME, metadata.NAME or "
                "performance_data.NAME",
            )
    if len(body.where) > MAX_WHERE:
        raise FilterError(
            "where",
            f"{len(body.where)} equality filters given; the limit is {MAX_WHERE}: drop some, "
            "or use search_query",
        )
    return {
        "level": body.level,
        "levels": body.levels,
        "category": body.category,
        "logger": body.logger,
        "search_query": body.search_query,
        "start_time": body.start_time,
        "end_time": body.end_time,
        "order": body.order,
        **body.where,
    }


MAX_BODY_DEPTH: Final = 32
"""The deepest nesting of arrays and objects an export request body may have (a filter
needs 3: the body, ``where`` or a list, its values)."""


def _walk_text(value: object) -> tuple[str | int, ...] | None:
    """The path of the first string (key or value) that is not valid Unicode, if any.

    Iterative, so any depth is safe to walk.

    Raises:
        HTTPException: 400 for a body nested deeper than :data:`MAX_BODY_DEPTH`.
    """
    stack: list[tuple[object, tuple[str | int, ...]]] = [(value, ("body",))]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            if not _valid_text(item):
                return path
            continue
        if isinstance(item, dict):
            children: list[tuple[object, object]] = list(item.items())
        elif isinstance(item, list):
            children = list(enumerate(item))
        else:
            continue
        if len(path) > MAX_BODY_DEPTH:
            raise _too_deep()
        for key, child in reversed(children):  # reversed: the first is walked first
            if isinstance(key, str) and not _valid_text(key):
                return path
            stack.append((child, (*path, key if isinstance(key, str | int) else str(key))))
    return None


def _valid_text(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _too_deep() -> HTTPException:
    return HTTPException(
        400,
        f"the body is nested more than {MAX_BODY_DEPTH} levels deep: send a JSON object of "
        'filters, e.g. {"format": "csv", "where": {"context.user_id": "u1"}}',
    )


_JSON_TYPES: Final = ("application/json",)
"""The ``Content-Type`` an export request must have (parameters such as charset allowed)."""


def _check_content_type(request: Request, body: bytes | None = None) -> None:
    """Refuse a body that is not declared as JSON (415): a browser sends a form or
    ``text/plain`` to another site without asking it first, never ``application/json``.
    A request without ``Content-Type`` passes only without a body (``body`` once read:
    checked again then).

    Raises:
        HTTPException: 415 naming the type received and the one allowed.
    """
    given = request.headers.get("content-type")
    if given is None and not body:
        return
    media = (given or "").split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES:
        return
    shown = "a body without Content-Type" if given is None else f"Content-Type {given[:100]!r}"
    raise HTTPException(
        415,
        f"{shown} is not accepted: send the filters as JSON with "
        "Content-Type: application/json (the only type allowed)",
    )


MAX_BODY_BYTES: Final = 64 * 1024
"""The largest export request body read (a filter is a few hundred bytes)."""


async def _read_body(request: Request) -> ExportRequest:
    """The export request, read only after the caller was authenticated and at most
    :data:`MAX_BODY_BYTES` of it (FastAPI would parse a declared body of any size first).

    Raises:
        HTTPException: 413 for a larger body, 415 for one not sent as
            ``application/json``, 400 for one that is not JSON or nested more than
            :data:`MAX_BODY_DEPTH` levels, 422 (FastAPI's shape, ``loc`` starting with
            ``body``) for invalid fields or a lone surrogate.
    """
    declared = request.headers.get("content-length")
    too_big = HTTPException(
        413, f"export request bodies are limited to {MAX_BODY_BYTES} bytes: send only filters"
    )
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise too_big
    _check_content_type(request)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise too_big
    _check_content_type(request, bytes(raw))
    try:
        data = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        try:  # orjson refuses lone surrogates that json accepts: report those as 422
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "the body is not UTF-8 JSON: send a JSON object") from None
        except RecursionError:  # nested deeper than the interpreter's stack allows
            raise _too_deep() from None
    if data is None:
        data = {}
    path = _walk_text(data)
    if path is not None:
        raise http_error(
            FilterError(
                str(path[-1]) if len(path) > 1 else "body",
                "not valid Unicode text (it holds a lone surrogate)",
            ),
            location="body",
        )
    try:
        return ExportRequest.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors]) from None


_OPENAPI_CONTENT: Final = {
    "application/json": {"schema": {"type": "array", "items": LogEntry.model_json_schema()}},
    "application/x-ndjson": {"schema": {"type": "string"}},
    "text/csv": {"schema": {"type": "string"}},
    "text/plain": {"schema": {"type": "string"}},
}


@router.post(
    "/export",
    summary="Export log entries",
    description="Stream every record matching the filters as a file download "
    '(`Content-Disposition: attachment; filename="plexichat-logs-<UTC time>.<format>"`): '
    "`json` (one array of the stored records), `ndjson` (the stored lines, unchanged), `csv` "
    "(fixed columns, context/metadata as JSON cells) or `txt` (the console format). Oldest "
    "first unless `order` is `desc`. Invalid filters are refused with 422 before anything is "
    "sent. Needs the `admin` role; every export is audited.",
    response_class=StreamingResponse,
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {"application/json": {"schema": ExportRequest.model_json_schema()}},
        }
    },
    responses={
        200: {"description": "The export, streamed.", "content": _OPENAPI_CONTENT},
        400: {
            "model": ErrorMessage,
            "description": "The body could not be read as UTF-8 JSON, or is nested too deeply.",
        },
        413: {"model": ErrorMessage, "description": "The body is over 64 KiB."},
        415: {"model": ErrorMessage, "description": "The body is not `application/json`."},
        422: {"model": InvalidRequest, "description": "Invalid filters, each named."},
        **ERROR_RESPONSES,
    },
)
async def export_logs(
    request: Request,
    principal: Annotated[Principal, Depends(require("admin"))],
    state: Annotated[ServerState, Depends(get_state)],
) -> StreamingResponse:
    """Stream the export (see the description)."""
    body = await _read_body(request)
    return await run_in_threadpool(_start_export, request, body, principal, state)


def _start_export(
    request: Request, body: ExportRequest, principal: Principal, state: ServerState
) -> StreamingResponse:
    """Check the filters against the store, audit, and start the export thread."""
    try:
        filters = _filters(body)
        query = filter_to_query(filters, exclude_security=False)
        records = run_query(query, state.store.iter_records)  # errors here, before any byte
    except FilterError as exc:
        raise http_error(exc, location="body") from None
    close = getattr(records, "close", None)
    if close is not None:
        close()  # not started: nothing was read
    audit_call(
        principal,
        "export",
        "logs/export",
        request,
        format=body.format,
        filters={k: v for k, v in filters.items() if v is not None},
    )
    pipe = _Pipe()
    threading.Thread(
        target=_run,
        args=(state.store, query, body.format, pipe),
        name="plexichat-log-export",
        daemon=True,
    ).start()
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return StreamingResponse(
        _chunks(pipe),
        media_type=MEDIA_TYPES[body.format],
        headers={
            "Content-Disposition": f'attachment; filename="plexichat-logs-{stamp}.{body.format}"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )
