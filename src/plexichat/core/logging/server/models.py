"""The API's request and response models: they document every body in the OpenAPI schema.

Routes send their JSON with :func:`json_response` (orjson, no second validation pass over
up to 1000 records); these models are what the schema promises, and the tests check the
answers against it (schemathesis).
"""

from __future__ import annotations

from typing import Any, Final, Literal

import orjson
from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from ..store.base import MAX_LIMIT

__all__ = [
    "ERROR_RESPONSES",
    "VIEWER_ERROR_RESPONSES",
    "ConfigResponse",
    "EntriesPage",
    "EntriesQuery",
    "ErrorMessage",
    "ExportRequest",
    "HealthResponse",
    "IntegrityReport",
    "IntegritySummary",
    "InvalidParameter",
    "InvalidRequest",
    "LogEntry",
    "MetricSeries",
    "MetricsResponse",
    "SecurityEventsPage",
    "StatsResponse",
    "WhoAmI",
    "json_response",
    "lines_response",
]


def json_response(data: Any, status_code: int = 200) -> Response:
    """``data`` as an ``application/json`` response (NaN and infinities become null)."""
    return Response(
        orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS),
        status_code=status_code,
        media_type="application/json",
    )


def lines_response(key: str, lines: list[bytes], next_cursor: str | None) -> Response:
    """A page ``{key: [...], "next_cursor": ...}`` as an ``application/json`` response whose
    records are stored JSON lines (each one JSON object, see ``store.base.RawPage``) joined
    as they are: never parsed, never re-serialized."""
    head = b"{" + orjson.dumps(key) + b":["
    tail = b'],"next_cursor":' + orjson.dumps(next_cursor) + b"}"
    return Response(b",".join(lines).join((head, tail)), media_type="application/json")


class ErrorMessage(BaseModel):
    """An error: what went wrong and what to do."""

    detail: str = Field(description="What went wrong and what is allowed.")


ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    401: {"model": ErrorMessage, "description": "Missing, unknown or revoked API token."},
    403: {"model": ErrorMessage, "description": "The token's role is too low for this route."},
    429: {
        "model": ErrorMessage,
        "description": "Rate limit exceeded; the `Retry-After` header says when to retry.",
        "headers": {
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}
        },
    },
}
"""The answers a route needing more than the viewer role may give besides its own."""

VIEWER_ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    code: answer for code, answer in ERROR_RESPONSES.items() if code != 403
}
"""The same for a route every role may call (no 403)."""


class InvalidParameter(BaseModel):
    """One invalid parameter, in FastAPI's shape."""

    loc: list[str | int] = Field(description='Where: `["query", NAME]`.')
    msg: str = Field(description="What is wrong and what is allowed.")
    type: str = Field(description="The kind of error, e.g. value_error, int_parsing.")


class InvalidRequest(BaseModel):
    """A 422 answer: every invalid parameter (FastAPI's validation error shape)."""

    detail: list[InvalidParameter]


class EntriesQuery(BaseModel):
    """The declared query parameters of ``GET /entries`` (``context.NAME`` and
    ``metadata.NAME`` come on top); the route validates them itself (see
    :func:`~.params.read_query`)."""

    level: str | None = Field(
        None, description="Minimum level: a name (DEBUG, INFO, WARNING, ERROR...) or a number."
    )
    levels: str | None = Field(
        None, description="Only these level names (comma list), e.g. ERROR,CRITICAL."
    )
    category: list[str] | None = Field(
        None, description="Only these categories (repeat it or give a comma list)."
    )
    logger: list[str] | None = Field(
        None, description="Only these loggers (repeatable, comma list); `app.*` for a tree."
    )
    module: list[str] | None = Field(None, description="Only these modules.")
    search_query: str | None = Field(
        None,
        description='Full text over message and fields: words, "phrases", AND, OR, NOT and '
        "parentheses, e.g. `database AND (timeout OR refused)`.",
        max_length=1000,
    )
    start_time: str | None = Field(None, description="ISO-8601 time, e.g. 2024-01-31T23:59:59Z.")
    end_time: str | None = Field(None, description="ISO-8601 time, e.g. 2024-01-31T23:59:59Z.")
    limit: int = Field(100, ge=1, le=MAX_LIMIT, description="Page size.")
    cursor: str | None = Field(None, description="The `next_cursor` of the previous page.")
    order: Literal["desc", "asc"] = Field(
        "desc", description="desc: newest first; asc: oldest first."
    )


class LogEntry(BaseModel):
    """One stored record, as the application wrote it (more keys may be present)."""

    model_config = ConfigDict(extra="allow")

    timestamp: str = Field(description="UTC ISO-8601 time, e.g. 2026-11-26T20:46:41.787Z.")
    level: str | None = Field(None, description="Level name (DEBUG ... SECURITY, AUDIT).")
    category: str | None = Field(None, description="Category, e.g. system, security, audit.")
    message: str | None = Field(None, description="The message.")
    logger: str | None = Field(None, description="Logger name.")
    module: str | None = Field(None, description="Module that logged it.")
    function: str | None = Field(None, description="Function that logged it.")
    line: int | None = Field(None, description="Source line.")
    context: dict[str, Any] | None = Field(None, description="Who and where (user_id, ...).")
    metadata: dict[str, Any] | None = Field(None, description="What else the record holds.")
    performance_data: dict[str, Any] | None = Field(None, description="Timings and metrics.")
    exception: dict[str, Any] | None = Field(None, description="Exception type and traceback.")
    severity_number: int | None = Field(None, description="OpenTelemetry severity number.")
    stream: str | None = Field(None, description="The writer's stream id.")
    seq: int | None = Field(None, description="Sequence number within the stream.")
    tag: str | None = Field(None, description="Integrity tag.")


class EntriesPage(BaseModel):
    """One page of records, newest first unless ``order=asc``."""

    entries: list[LogEntry]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class SecurityEventsPage(BaseModel):
    """One page of security events (SECURITY records of category ``security``)."""

    events: list[LogEntry]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class MetricSummary(BaseModel):
    """The whole range in one summary (null when a value is undefined)."""

    count: int
    sum: float | None
    min: float | None
    max: float | None
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None


class MetricPoint(MetricSummary):
    """One downsampled point: the summary of its interval; ``timestamp`` is the start of
    the interval (epoch seconds)."""

    timestamp: float
    last: float | None = Field(description="The last value recorded in the interval.")


class MetricTrend(BaseModel):
    """Least-squares slope of the points, its direction and EWMA anomalies."""

    slope: float | None
    direction: Literal["increasing", "decreasing", "stable"]
    points: int
    anomalies: list[dict[str, Any]] = Field(
        description="`[{timestamp, value, baseline, score}]`: points far from the EWMA baseline."
    )


class MetricSeries(BaseModel):
    """The history of one metric (all tag sets merged unless filtered by `tag.NAME`)."""

    unit: str | None
    kind: str | None = Field(description="counter, gauge or histogram.")
    points: list[MetricPoint]
    summary: MetricSummary
    trend: MetricTrend


class MetricsResponse(BaseModel):
    """Metric history between ``start_time`` and ``end_time``."""

    metrics: dict[str, MetricSeries] = Field(
        description="By metric name; names asked for but never recorded are absent."
    )
    start_time: str
    end_time: str
    interval: float = Field(description="Seconds per point.")


class IntegritySummary(BaseModel):
    """The outcome of the latest integrity verification (``not_checked`` before the first)."""

    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "failed", "error", "not_checked"]
    checked_at: str | None = None
    duration_seconds: float | None = None
    findings: int | None = None
    findings_by_kind: dict[str, int] | None = None
    records: int | None = None
    files: int | None = None
    streams: int | None = None
    error: str | None = Field(None, description="Why verification could not run.")


class IntegrityReport(IntegritySummary):
    """The latest verification: its summary and the full report."""

    report: dict[str, Any] | None = Field(
        None,
        description="`{ok, records, files, streams, findings: [{kind, file, line, seq, stream, "
        "detail}], checkpoints, live_streams, key, key_on_host, notes}`",
    )


class StatsResponse(BaseModel):
    """Store, window, pipeline, indexer and integrity statistics."""

    store: dict[str, Any] = Field(
        description="All-time: `{records, levels, categories, loggers, first, last, "
        "storage_bytes}`."
    )
    window: dict[str, Any] = Field(
        description="The window: `{start, end, bucket, records, error_rate, levels, categories, "
        "loggers, buckets, top_patterns: [{level, pattern, count}], newest, "
        "ingestion_lag_seconds}`."
    )
    pipeline: dict[str, Any] = Field(
        description="This process's logging pipeline: `{configured, records, records_total, "
        "dropped_total, queue_depth, queue_capacity, bytes_written}`."
    )
    indexer: dict[str, Any] = Field(
        description="`{running, last_pass: {records, duplicates, malformed, oversized, "
        "segments, errors} | null, ingestion_lag_seconds}`."
    )
    integrity: IntegritySummary


class HealthResponse(BaseModel):
    """Liveness: the version and whether the store answers."""

    status: Literal["ok", "degraded"]
    version: str
    store: Literal["ok", "unavailable"]


class WhoAmI(BaseModel):
    """The caller: the token's name and role."""

    name: str
    role: Literal["viewer", "security", "admin"]


class ConfigValue(BaseModel):
    """One setting: its value (secrets masked) and where it came from."""

    value: Any
    source: str


class ConfigResponse(BaseModel):
    """The effective logging configuration and the server's settings, secrets masked."""

    logging: dict[str, ConfigValue]
    server: dict[str, Any]


_StrList = list[str] | str


class ExportRequest(BaseModel):
    """What to export: the filters of ``GET /entries`` and a format. Oldest first by default."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "format": "json",
                    "level": "WARNING",
                    "start_time": "2024-01-01T00:00:00Z",
                    "end_time": "2024-01-31T23:59:59Z",
                }
            ]
        },
    )

    format: Literal["json", "ndjson", "csv", "txt"] = Field(
        "json",
        description="json (one array), ndjson (the stored lines), csv (fixed columns) or txt.",
    )
    level: str | None = Field(None, description="Minimum level, e.g. WARNING.", max_length=1000)
    levels: _StrList | None = Field(None, description="Only these levels (list or comma list).")
    category: _StrList | None = Field(None, description="Only these categories.")
    logger: _StrList | None = Field(None, description="Only these loggers; `app.*` for a tree.")
    search_query: str | None = Field(
        None, description='Full text: words, "phrases", AND, OR, NOT.', max_length=1000
    )
    start_time: str | None = Field(None, description="ISO-8601 start (inclusive).", max_length=100)
    end_time: str | None = Field(None, description="ISO-8601 end (inclusive).", max_length=100)
    where: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description='Equality filters: `{"context.user_id": "u1", "metadata.k": 1}`.',
    )
    order: Literal["asc", "desc"] = Field("asc", description="asc: oldest first.")
