"""``GET /entries``: search and page through the stored records.

The viewer role never gets a security or audit record (the query excludes them, search
included); a security or admin caller who receives some is audited.

The hot path of the API, so it does little per request:

- it runs on the event loop (``async`` route and dependencies: no worker thread per call);
- the query parameters are validated in one pydantic call (:func:`.params.read_query`),
  documented from the same model (:class:`.models.EntriesQuery`);
- the store returns the page as its stored JSON lines, joined into the body as they are
  (never parsed, never re-serialized); whether a record is sensitive comes from its columns;
- the embedded SQLite store reads the page on the loop only within
  :data:`INLINE_BUDGET` seconds (:meth:`~..store.base.LogStore.try_query_raw`: interrupted
  at the deadline, never waiting for a lock); a slower query (a full-text search over a
  large store), and every PostgreSQL query, runs in a store thread, so the loop, which
  also carries the live tail, is never held longer than that;
- the audit record of a sensitive page is written from a store thread (the audit logger
  may wait for room in its queue).
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response

from ..store.base import LogQuery, RawPage
from .deps import PREFIX, Caller, current_state
from .direct_route import DirectRoute
from .models import (
    VIEWER_ERROR_RESPONSES,
    EntriesPage,
    EntriesQuery,
    ErrorMessage,
    InvalidRequest,
    lines_response,
)
from .params import (
    FilterError,
    audit_call,
    dynamic_filters,
    filter_to_query,
    http_error,
    in_store_thread,
    query_parameters,
    read_query,
    run_query,
)
from .state import ServerState

__all__ = ["INLINE_BUDGET", "router"]

router = APIRouter(prefix=PREFIX, tags=["entries"], route_class=DirectRoute)
"""``GET /entries`` (included by :mod:`.router` under ``/api/v2/logs``)."""

INLINE_BUDGET: Final = 0.002
"""Seconds a page read may hold the event loop before it moves to a store thread (a
plain page of 100 takes ~0.1 ms)."""

_DECLARED: Final = tuple(EntriesQuery.model_fields)

_DESCRIPTION = """Records matching every filter given, one page at a time.

Besides the parameters below, `context.NAME=value` and `metadata.NAME=value` (e.g.
`context.user_id=u1`, `metadata.request_id=r9`) keep records whose field equals the value
(numbers and booleans match their JSON text: `metadata.status=500`). Any other parameter
is refused with 422.

Pages are keyset pages: pass `next_cursor` as `cursor` (with the same `order`) for the
next one; records stored meanwhile never make a record appear twice or be skipped.

The `viewer` role never receives security or audit records (whatever the filters or the
search); `security` and `admin` callers do, and each page holding some is audited.
"""


def _read_page(state: ServerState, query: LogQuery) -> RawPage:
    """The page, in a store thread."""
    return run_query(query, state.store.query_raw)


@router.get(
    "/entries",
    summary="Search log entries",
    description=_DESCRIPTION,
    response_class=Response,
    responses={
        200: {"model": EntriesPage, "description": "One page of records."},
        400: {"model": ErrorMessage, "description": "Unknown cursor."},
        422: {"model": InvalidRequest, "description": "Invalid parameters."},
        **VIEWER_ERROR_RESPONSES,
    },
    openapi_extra={"parameters": query_parameters(EntriesQuery)},
)
async def list_entries(request: Request, principal: Caller) -> Response:
    """One page of records matching the filters (see the description)."""
    params = read_query(request, EntriesQuery)
    state = await current_state(request)  # not a dependency: one fewer for FastAPI to solve
    filters: dict[str, Any] = {
        "level": params.level,
        "levels": params.levels,
        "category": params.category or None,
        "logger": params.logger or None,
        "module": params.module or None,
        "search_query": params.search_query,
        "start_time": params.start_time,
        "end_time": params.end_time,
        "order": params.order,
    }
    sensitive_ok = principal.allows("security")
    try:
        filters.update(dynamic_filters(request, _DECLARED, ("context.", "metadata.")))
        query = filter_to_query(
            filters, exclude_security=not sensitive_ok, limit=params.limit, cursor=params.cursor
        )
        page = run_query(query, lambda q: state.store.try_query_raw(q, INLINE_BUDGET))
        if page is None:
            page = await in_store_thread(state, _read_page, state, query)
    except FilterError as exc:
        raise http_error(exc) from None
    if sensitive_ok and page.sensitive:
        await in_store_thread(
            state,
            audit_call,
            principal,
            "read",
            "logs/entries",
            request,
            filters={k: v for k, v in filters.items() if v is not None},
            count=len(page.lines),
            sensitive=page.sensitive,
        )
    return lines_response("entries", page.lines, page.next_cursor)
