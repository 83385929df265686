"""``GET /entries``: search and page through the stored records.

The viewer role never gets a security or audit record (the query excludes them, search
included); a security or admin caller who receives some is audited.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Query, Request, Response

from ..store.base import MAX_LIMIT, LogQuery, RawPage
from .deps import Caller, State
from .models import VIEWER_ERROR_RESPONSES, EntriesPage, ErrorMessage, lines_response
from .params import (
    FilterError,
    audit_call,
    dynamic_filters,
    filter_to_query,
    http_error,
    in_worker,
    run_query,
)
from .state import ServerState

__all__ = ["router"]

router = APIRouter(tags=["entries"])
"""``GET /entries`` (included by :mod:`.router` under ``/api/v2/logs``)."""

_DECLARED: Final = (
    "level",
    "levels",
    "category",
    "logger",
    "module",
    "search_query",
    "start_time",
    "end_time",
    "limit",
    "cursor",
    "order",
)

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

Level = Annotated[
    str | None,
    Query(description="Minimum level: a name (DEBUG, INFO, WARNING, ERROR...) or a number."),
]
Times = Annotated[str | None, Query(description="ISO-8601 time, e.g. 2024-01-31T23:59:59Z.")]


def _read_page(
    state: ServerState, query: LogQuery, audit: Callable[..., None] | None
) -> RawPage:
    page = run_query(query, state.store.query_raw)
    if audit is not None and (sensitive := sum(page.sensitive)):
        audit(count=len(page.lines), sensitive=sensitive)
    return page


def _join(values: list[str] | None) -> list[str] | None:
    return values or None


@router.get(
    "/entries",
    summary="Search log entries",
    description=_DESCRIPTION,
    response_class=Response,
    responses={
        200: {"model": EntriesPage, "description": "One page of records."},
        400: {"model": ErrorMessage, "description": "Unknown cursor."},
        **VIEWER_ERROR_RESPONSES,
    },
)
async def list_entries(
    request: Request,
    principal: Caller,
    state: State,
    level: Level = None,
    levels: Annotated[
        str | None, Query(description="Only these level names (comma list), e.g. ERROR,CRITICAL.")
    ] = None,
    category: Annotated[
        list[str] | None,
        Query(description="Only these categories (repeat it or give a comma list)."),
    ] = None,
    logger: Annotated[
        list[str] | None,
        Query(description="Only these loggers (repeatable, comma list); `app.*` for a tree."),
    ] = None,
    module: Annotated[list[str] | None, Query(description="Only these modules.")] = None,
    search_query: Annotated[
        str | None,
        Query(
            description='Full text over message and fields: words, "phrases", AND, OR, NOT and '
            "parentheses, e.g. `database AND (timeout OR refused)`.",
            max_length=1000,
        ),
    ] = None,
    start_time: Times = None,
    end_time: Times = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 100,
    cursor: Annotated[
        str | None, Query(description="The `next_cursor` of the previous page.")
    ] = None,
    order: Annotated[
        Literal["desc", "asc"], Query(description="desc: newest first; asc: oldest first.")
    ] = "desc",
) -> Response:
    """One page of records matching the filters (see the description)."""
    filters: dict[str, Any] = {
        "level": level,
        "levels": levels,
        "category": _join(category),
        "logger": _join(logger),
        "module": _join(module),
        "search_query": search_query,
        "start_time": start_time,
        "end_time": end_time,
        "order": order,
    }
    sensitive_ok = principal.allows("security")
    try:
        filters.update(dynamic_filters(request, _DECLARED, ("context.", "metadata.")))
        query = filter_to_query(
            filters, exclude_security=not sensitive_ok, limit=limit, cursor=cursor
        )
    except FilterError as exc:
        raise http_error(exc) from None
    audit = None
    if sensitive_ok:
        audit = functools.partial(
            audit_call,
            principal,
            "read",
            "logs/entries",
            request,
            filters={k: v for k, v in filters.items() if v is not None},
        )
    try:
        page = await in_worker(state, _read_page, state, query, audit)
    except FilterError as exc:
        raise http_error(exc) from None
    return lines_response("entries", page.lines, page.next_cursor)
