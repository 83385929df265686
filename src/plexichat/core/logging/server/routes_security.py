"""``GET /security/events``: the security events, for the security and admin roles.

Security events are the records of category ``security`` (SecurityLogger writes them at
level SECURITY, with ``metadata.event_type``/``metadata.severity`` and the user and address
in ``context.user_id``/``context.ip_address``). Every call is audited.

The events are sent as stored, never parsed (see :mod:`.routes_entries`); the route is a
plain ``def`` (a worker thread): every call writes an audit record, which may wait.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from ..store.base import MAX_LIMIT, SECURITY_SEVERITIES
from .auth import Principal
from .deps import PREFIX, State, require
from .models import (
    ERROR_RESPONSES,
    ErrorMessage,
    InvalidRequest,
    SecurityEventsPage,
    lines_response,
)
from .params import (
    FilterError,
    audit_call,
    dynamic_filters,
    filter_to_query,
    http_error,
    run_query,
)

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["security"])
"""``GET /security/events`` (included by :mod:`.router` under ``/api/v2/logs``)."""

_RENAME: Final = {"context.user_id": "user_id", "context.ip_address": "ip_address"}
_DECLARED: Final = (
    "severity",
    "event_type",
    "user_id",
    "ip_address",
    "search_query",
    "start_time",
    "end_time",
    "limit",
    "cursor",
    "order",
)
"""The route's parameters: any other is refused (422), as by ``/entries``."""

_DESCRIPTION = f"""Security events matching every filter given, newest first.

`severity` is a minimum ({" < ".join(SECURITY_SEVERITIES)}); `event_type` takes one or more
types (repeat it or give a comma list), e.g. `login_failure,access_denied`. Pages work as
for `/entries`. Any other parameter is refused with 422. Needs the `security` or `admin`
role; every call is written to the audit trail with the token's name.
"""


@router.get(
    "/security/events",
    summary="Security events",
    description=_DESCRIPTION,
    response_class=Response,
    responses={
        200: {"model": SecurityEventsPage, "description": "One page of security events."},
        400: {"model": ErrorMessage, "description": "Unknown cursor."},
        422: {"model": InvalidRequest, "description": "Invalid or unknown parameters."},
        **ERROR_RESPONSES,
    },
)
def security_events(
    request: Request,
    principal: Annotated[Principal, Depends(require("security"))],
    state: State,
    severity: Annotated[
        str | None,
        Query(description=f"Minimum severity: {', '.join(SECURITY_SEVERITIES)}."),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        Query(description="Only these event types (repeatable, comma list)."),
    ] = None,
    user_id: Annotated[str | None, Query(description="Only events of this user.")] = None,
    ip_address: Annotated[str | None, Query(description="Only events from this address.")] = None,
    search_query: Annotated[
        str | None,
        Query(description='Full text: words, "phrases", AND, OR, NOT.', max_length=1000),
    ] = None,
    start_time: Annotated[str | None, Query(description="ISO-8601 start (inclusive).")] = None,
    end_time: Annotated[str | None, Query(description="ISO-8601 end (inclusive).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = 100,
    cursor: Annotated[
        str | None, Query(description="The `next_cursor` of the previous page.")
    ] = None,
    order: Annotated[
        Literal["desc", "asc"], Query(description="desc: newest first; asc: oldest first.")
    ] = "desc",
) -> Response:
    """One page of security events (see the description)."""
    filters: dict[str, Any] = {
        "severity": severity,
        "event_type": event_type or None,
        "context.user_id": user_id,
        "context.ip_address": ip_address,
        "search_query": search_query,
        "start_time": start_time,
        "end_time": end_time,
        "order": order,
    }
    try:
        dynamic_filters(request, _DECLARED, ())  # an unknown parameter: 422, not ignored
        query = filter_to_query(
            {"category": "security", **filters}, exclude_security=False, limit=limit, cursor=cursor
        )
        page = run_query(query, state.store.query_raw)
    except FilterError as exc:
        audit_call(
            principal, "read", "security/events", request, outcome="failure", error=exc.message
        )
        raise http_error(exc, rename=_RENAME) from None
    audit_call(
        principal,
        "read",
        "security/events",
        request,
        filters={_RENAME.get(k, k): v for k, v in filters.items() if v is not None},
        count=len(page.lines),
    )
    return lines_response("events", page.lines, page.next_cursor)
