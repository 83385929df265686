"""Filters into a :class:`LogQuery`: shared by the REST routes, export and the live tail.

A filter is a plain mapping (query parameters, a JSON body, a WebSocket message)::

    {"level": "ERROR", "category": "security,audit", "logger": ["app.*"],
     "search_query": '"connection refused" OR timeout', "start_time": "2024-01-01T00:00:00Z",
     "context.user_id": "u1"}

:func:`filter_to_query` checks every field on its own first, so a bad value raises
:class:`FilterError` naming that field and what it allows; the routes turn it into FastAPI's
422 shape (:func:`http_error`), or 400 for an unknown cursor.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, get_args, get_origin

from fastapi import HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from .._core.levels import parse_level
from ..security.events import event_type_of
from ..store.base import (
    MAX_LIMIT,
    SECURITY_SEVERITIES,
    LogQuery,
    bindable,
    decode_cursor,
    to_micros,
)
from ..store.search import QuerySyntaxError, parse_search
from .auth import Principal
from .deps import audit

if TYPE_CHECKING:
    from .state import ServerState

__all__ = [
    "FILTER_FIELDS",
    "MAX_ITEMS",
    "MAX_VALUE_LENGTH",
    "MAX_WHERE",
    "STORE_THREADS",
    "WHERE_PREFIXES",
    "FilterError",
    "audit_call",
    "dynamic_filters",
    "filter_to_query",
    "http_error",
    "in_store_thread",
    "iso_time",
    "query_parameters",
    "read_query",
    "run_query",
    "text_list",
    "text_value",
]

FILTER_FIELDS: Final = (
    "level",
    "levels",
    "category",
    "logger",
    "module",
    "search_query",
    "start_time",
    "end_time",
    "event_type",
    "severity",
    "order",
)
"""The fixed filter names; ``context.NAME``, ``metadata.NAME`` and ``performance_data.NAME``
are the dynamic ones (equality on that field of the record)."""

WHERE_PREFIXES: Final = ("context.", "metadata.", "performance_data.")
MAX_VALUE_LENGTH: Final = 1000
"""Characters allowed in one filter value (the search has the same limit)."""
MAX_ITEMS: Final = 100
"""Values allowed in one list filter (levels, categories, loggers...)."""
MAX_WHERE: Final = 32
"""Equality filters (``context.NAME``, ``metadata.NAME``, ``performance_data.NAME``) allowed
in one query: each is a condition of the store's query, whose size the database bounds."""
_MAX_LEVEL: Final = 2**31 - 1

STORE_THREADS: Final = 4
"""Threads per server for store reads that may not run on the event loop."""
_EXECUTOR_KEY: Final = "store_threads"
_EXECUTOR_LOCK = threading.Lock()

_T = TypeVar("_T")
_M = TypeVar("_M", bound=BaseModel)


class FilterError(ValueError):
    """A filter value that cannot be used; ``field`` names it, ``message`` says what is allowed."""

    def __init__(self, field: str, message: str) -> None:
        field, message = _printable(field[:100]), _printable(message)
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _printable(text: str) -> str:
    """``text`` with lone surrogates escaped, so it can always be sent as UTF-8 JSON."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def _scalar(field: str, value: object) -> str:
    """One value as text: strings as they are, numbers and booleans as JSON writes them."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise FilterError(
            field, f"expected text, got {type(value).__name__}: give a string such as 'ERROR'"
        )
    if len(text) > MAX_VALUE_LENGTH:
        raise FilterError(
            field, f"value is {len(text)} characters long; the limit is {MAX_VALUE_LENGTH}"
        )
    try:
        return bindable(text, "value")
    except QuerySyntaxError:
        raise FilterError(
            field, f"{text[:80]!r} is not valid Unicode text (it holds a lone surrogate)"
        ) from None


def _items(field: str, value: object) -> tuple[str, ...]:
    """A list filter: a string (comma list) or a list of strings (each may be a comma list)."""
    parts = value if isinstance(value, list | tuple) else [value]
    out: list[str] = []
    for part in parts:
        out.extend(x.strip() for x in _scalar(field, part).split(","))
    items = tuple(dict.fromkeys(x for x in out if x))
    if len(items) > MAX_ITEMS:
        raise FilterError(field, f"{len(items)} values given; the limit is {MAX_ITEMS}")
    return items


def _check_where_count(keys: list[str]) -> None:
    """Refuse more than :data:`MAX_WHERE` equality filters, naming the first one too many."""
    if len(keys) > MAX_WHERE:
        raise FilterError(
            keys[MAX_WHERE],
            f"{len(keys)} equality filters (context.NAME, metadata.NAME, performance_data.NAME)"
            f" given; the limit is {MAX_WHERE}: drop some, or use search_query",
        )


def text_value(field: str, value: object) -> str:
    """One filter value as checked text (numbers and booleans as JSON writes them).

    Raises:
        FilterError: a value that is not text or a number, too long, or not valid Unicode.
    """
    return _scalar(field, value)


def text_list(field: str, value: object) -> tuple[str, ...]:
    """A list filter's values (a comma list or a list of them), checked.

    Raises:
        FilterError: a value that is not text, too long or too many values.
    """
    return _items(field, value)


def iso_time(field: str, value: object) -> str:
    """A time filter's value when it is ISO-8601 (``Z`` or an offset; naive means UTC).

    Raises:
        FilterError: naming the field and the expected form.
    """
    return _time(field, value)


def _time(field: str, value: object) -> str:
    text = _scalar(field, value).strip()
    try:
        to_micros(text)
    except QuerySyntaxError as exc:
        raise FilterError(field, str(exc)) from None
    except (OverflowError, ValueError):
        raise FilterError(
            field, f"time {text[:80]!r} is out of range: use a UTC time between years 1 and 9999"
        ) from None
    return text


def _level(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number: object = value
    else:
        number = _scalar("level", value)
    try:
        levelno = parse_level(number)
    except ValueError as exc:
        raise FilterError("level", str(exc)) from None
    if levelno > _MAX_LEVEL:
        raise FilterError(
            "level", f"level number {levelno} is too large: allowed are 0..{_MAX_LEVEL}"
        )
    return levelno


def _where(key: str, value: object) -> tuple[str, str]:
    head, _, rest = key.partition(".")
    names = rest.split(".")
    if any(not name or '"' in name or "\x00" in name for name in names):
        raise FilterError(
            key,
            f"invalid field {key[:80]!r}: use {head}.NAME with non-empty names without "
            "quotes or NUL characters, e.g. context.user_id=u1",
        )
    _scalar(key, key)  # the name must be valid text too
    return key, _scalar(key, value)


def _event_types(value: object) -> tuple[str, ...]:
    """Event types; a known type in any case becomes its canonical (lower-case) value."""
    out = []
    for item in _items("event_type", value):
        known = event_type_of(item)
        out.append(known.value if known is not None else item)
    return tuple(out)


def _severity(value: object) -> str:
    text = _scalar("severity", value).strip().upper()
    if text not in SECURITY_SEVERITIES:
        raise FilterError(
            "severity",
            f"invalid severity {text[:80]!r}: allowed are {', '.join(SECURITY_SEVERITIES)}",
        )
    return text


def _order(value: object) -> Literal["desc", "asc"]:
    text = _scalar("order", value).strip().lower()
    if text == "desc":
        return "desc"
    if text == "asc":
        return "asc"
    raise FilterError("order", f"invalid order {text[:80]!r}: allowed are desc, asc")


def _search(value: object) -> str:
    text = _scalar("search_query", value)
    try:
        parse_search(text)
    except QuerySyntaxError as exc:
        raise FilterError("search_query", str(exc)) from None
    return text


def filter_to_query(
    filter: Mapping[str, object],
    *,
    exclude_security: bool,
    limit: int = 100,
    cursor: str | None = None,
) -> LogQuery:
    """The :class:`LogQuery` a filter mapping describes.

    Keys: ``level`` (minimum level: a name such as ERROR or a number), ``levels``,
    ``category``, ``logger`` (``app.*`` for a tree), ``module``, ``event_type`` (comma
    lists or lists of strings), ``search_query`` (words, "phrases", AND, OR, NOT),
    ``start_time``/``end_time`` (ISO-8601), ``severity`` (minimum security severity),
    ``order`` (desc, asc) and ``context.NAME``/``metadata.NAME``/``performance_data.NAME``
    (equality). None values are left out.

    Args:
        filter: the filter.
        exclude_security: leave out security and audit records (the viewer role).
        limit: page size, 1..1000.
        cursor: the ``next_cursor`` of the previous page (same order).

    Raises:
        FilterError: naming the field (``cursor`` and ``limit`` included) and what it allows.
    """
    args: dict[str, Any] = {}
    where: list[tuple[str, str]] = []
    for key, value in filter.items():
        if value is None:
            continue
        if not isinstance(key, str):
            raise FilterError(str(key), "filter names are text")
        if key.startswith(WHERE_PREFIXES):
            where.append(_where(key, value))
            continue
        if key not in FILTER_FIELDS:
            raise FilterError(
                key[:100],
                f"unknown filter {key[:100]!r}: allowed are {', '.join(FILTER_FIELDS)} and "
                "context.NAME, metadata.NAME, performance_data.NAME",
            )
        args[key] = value
    _check_where_count([key for key, _ in where])
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise FilterError("limit", f"invalid limit {limit!r}: allowed are 1..{MAX_LIMIT}")
    order = _order(args["order"]) if "order" in args else "desc"
    if cursor is not None:
        try:
            decode_cursor(_scalar("cursor", cursor), order)
        except QuerySyntaxError as exc:
            raise FilterError("cursor", str(exc)) from None
    start = _time("start_time", args["start_time"]) if "start_time" in args else None
    end = _time("end_time", args["end_time"]) if "end_time" in args else None
    if start is not None and end is not None and to_micros(start) > to_micros(end):
        raise FilterError(
            "start_time", f"start_time {start!r} is after end_time {end!r}: swap them"
        )
    try:
        return LogQuery(
            min_level=_level(args["level"]) if "level" in args else None,
            levels=_items("levels", args.get("levels", ())),
            categories=_items("category", args.get("category", ())),
            loggers=_items("logger", args.get("logger", ())),
            modules=_items("module", args.get("module", ())),
            start=start,
            end=end,
            search=_search(args["search_query"]) if "search_query" in args else None,
            where=tuple(where),
            event_types=_event_types(args.get("event_type", ())),
            min_severity=_severity(args["severity"]) if "severity" in args else None,
            limit=limit,
            cursor=cursor,
            order=order,
            exclude_security=exclude_security,
        )
    except QuerySyntaxError as exc:  # every field was checked; a combination is left
        raise FilterError("filters", str(exc)) from None


def dynamic_filters(
    request: Request, declared: Iterable[str], prefixes: tuple[str, ...] = WHERE_PREFIXES
) -> dict[str, str]:
    """The ``context.NAME=value`` (or other ``prefixes``) query parameters of a request
    (``prefixes=()``: none; only checks that every parameter is declared).

    Raises:
        FilterError: a parameter that is neither declared nor dynamic, naming what is
            allowed, or more than :data:`MAX_WHERE` dynamic ones.
    """
    known = set(declared)
    out: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in known:
            continue
        if not key.startswith(prefixes):
            dynamic = "".join(f", {p}NAME" for p in prefixes)
            raise FilterError(
                key[:100],
                f"unknown parameter {key[:100]!r}: allowed are {', '.join(sorted(known))}{dynamic}",
            )
        if key in out:
            raise FilterError(key[:100], f"{key[:100]!r} is given twice: give it once")
        out[key] = value
    _check_where_count(list(out))
    return out


def http_error(
    exc: FilterError, location: str = "query", rename: Mapping[str, str] | None = None
) -> HTTPException | RequestValidationError:
    """The HTTP answer to a bad filter: 400 for an unknown cursor, else 422 in FastAPI's shape
    ``{"detail": [{"loc": [location, field], "msg": ..., "type": "value_error"}]}``."""
    field = (rename or {}).get(exc.field, exc.field)
    if field == "cursor":
        return HTTPException(400, exc.message)
    return RequestValidationError(
        [{"loc": (location, field), "msg": exc.message, "type": "value_error"}]
    )


def _store_field(exc: QuerySyntaxError, query: LogQuery) -> str:
    """The filter a store's QuerySyntaxError is about (the store names it in the message)."""
    text = str(exc)
    if text.startswith("unknown cursor"):
        return "cursor"
    if text.startswith("search") or "search word" in text:
        return "search_query"
    if text.startswith("value of "):
        return text[len("value of ") :].split(" ", 1)[0]
    if "field" in text and query.where:
        return query.where[0][0]
    for name, field in (("logger", "logger"), ("category", "category"), ("level", "levels")):
        if text.startswith(name):
            return field
    return "search_query" if query.search else "filters"


def run_query(query: LogQuery, call: Callable[[LogQuery], _T]) -> _T:
    """``call(query)`` with the store's own QuerySyntaxError raised as a FilterError."""
    try:
        return call(query)
    except QuerySyntaxError as exc:
        raise FilterError(_store_field(exc, query), str(exc)) from None


async def in_store_thread(
    state: ServerState, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
) -> _T:
    """``fn(*args, **kwargs)`` in one of the server's :data:`STORE_THREADS` store threads
    (made on first use, stopped with the server), awaited without blocking the event loop.

    A few threads of its own rather than Starlette's shared pool of 40: fewer threads
    fighting for the GIL under load (``GET /entries`` on PostgreSQL, where every read
    comes here: ~25% more requests per second).
    """
    executor = state.extras.get(_EXECUTOR_KEY)
    if not isinstance(executor, ThreadPoolExecutor):
        with _EXECUTOR_LOCK:
            executor = state.extras.get(_EXECUTOR_KEY)
            if not isinstance(executor, ThreadPoolExecutor):
                executor = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="plexichat-store")
                state.extras[_EXECUTOR_KEY] = executor
                state.on_close(functools.partial(executor.shutdown, wait=False))
    call = functools.partial(fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI ``parameters`` of a route that reads its query with :func:`read_query`
    (``openapi_extra={"parameters": ...}``): what FastAPI writes for declared parameters."""
    schema = model.model_json_schema()
    out = []
    for name, field in model.model_fields.items():
        prop = dict(schema["properties"][name])
        if prop.get("default", 0) is None:
            del prop["default"]  # as FastAPI documents an optional parameter
        param = {"name": name, "in": "query", "required": False, "schema": prop}
        out.append({**param, "description": field.description})
    return out


def read_query(request: Request, model: type[_M]) -> _M:
    """The query parameters ``model`` declares, validated as FastAPI would (a repeated
    parameter: the last value, or every value for a list field), other parameters left.

    One pydantic validation instead of FastAPI's per-parameter work (~80 us a request for
    eleven parameters); the errors are FastAPI's, ``loc`` ``["query", NAME]``.

    Raises:
        RequestValidationError: every invalid parameter (422).
    """
    fields, lists = _fields_of(model)
    data: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in lists:
            data.setdefault(key, []).append(value)
        elif key in fields:
            data[key] = value
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in errors]
        ) from None


@functools.cache
def _fields_of(model: type[BaseModel]) -> tuple[frozenset[str], frozenset[str]]:
    """A model's field names, and those of its list fields."""
    lists = {
        name
        for name, field in model.model_fields.items()
        if any(get_origin(t) is list for t in (field.annotation, *get_args(field.annotation)))
    }
    return frozenset(model.model_fields), frozenset(lists)


def audit_call(
    principal: Principal,
    action: str,
    resource: str,
    request: Request | None,
    outcome: str = "success",
    **details: Any,
) -> None:
    """Audit an API call, naming the token in the details as well (``token_name``)."""
    audit(principal, action, resource, request, outcome, token_name=principal.name, **details)
