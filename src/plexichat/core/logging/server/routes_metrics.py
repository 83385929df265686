"""``GET /performance/metrics``: the recorded metric history, downsampled.

The history is what the metrics flusher logged (PERFORMANCE records of the logger
``plexichat.metrics.history``), read back from the store by
:func:`~plexichat.core.logging.store.metrics.metric_history`.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from .._core.clock import iso_utc
from ..store.base import micros_to_iso, to_micros
from ..store.metrics import metric_history
from .deps import PREFIX, Caller, get_state
from .models import VIEWER_ERROR_RESPONSES, MetricsResponse, json_response
from .params import FilterError, dynamic_filters, http_error, iso_time, text_list, text_value
from .state import ServerState

__all__ = ["DEFAULT_RANGE", "router"]

router = APIRouter(prefix=PREFIX, tags=["metrics"])
"""``GET /performance/metrics`` (included by :mod:`.router` under ``/api/v2/logs``)."""

DEFAULT_RANGE = 3600.0
"""Seconds of history returned when no ``start_time`` is given."""
_DECLARED = ("metric_names", "start_time", "end_time", "interval")

_DESCRIPTION = """The history of the metrics recorded with `record_metric`, `timer` and the
system collector, one point per `interval` seconds, with a summary (count, sum, min, max,
mean, p50, p95, p99) and a trend (slope, direction, anomalies) per metric.

Without `start_time` the last hour (before `end_time`, default now) is returned. Names asked
for in `metric_names` but never recorded in the range are simply absent from `metrics`.
`tag.NAME=value` (e.g. `tag.endpoint=/login`) keeps only the series carrying that tag.
Values that are undefined (an empty interval's mean) are null.
"""


_EARLIEST_US = to_micros("0001-01-01T00:00:00Z")
"""The earliest time a range can start at (an hour before 0001-01-01T00:10Z is no date)."""


def _range(start_time: str | None, end_time: str | None) -> tuple[int, int]:
    """The range in microseconds: the given times, or the hour before ``end_time``/now."""
    end = to_micros(iso_time("end_time", end_time)) if end_time is not None else None
    start = to_micros(iso_time("start_time", start_time)) if start_time is not None else None
    if end is None:
        end = to_micros(iso_utc(time.time()))
        if start is not None and start > end:
            end = start
    if start is None:
        start = max(end - int(DEFAULT_RANGE * 1_000_000), _EARLIEST_US)
    if start > end:
        raise FilterError(
            "start_time",
            f"start_time {start_time!r} is after end_time {end_time!r}: swap them",
        )
    return start, end


@router.get(
    "/performance/metrics",
    summary="Metric history",
    description=_DESCRIPTION,
    response_class=Response,
    responses={
        200: {"model": MetricsResponse, "description": "The history."},
        **VIEWER_ERROR_RESPONSES,
    },
)
def performance_metrics(
    request: Request,
    principal: Caller,
    state: Annotated[ServerState, Depends(get_state)],
    metric_names: Annotated[
        str | None,
        Query(
            description="Comma list of metric names, e.g. response_time,cpu_usage (default: "
            "every metric recorded)."
        ),
    ] = None,
    start_time: Annotated[
        str | None, Query(description="ISO-8601 start (default: one hour before the end).")
    ] = None,
    end_time: Annotated[str | None, Query(description="ISO-8601 end (default: now).")] = None,
    interval: Annotated[
        float, Query(ge=1, le=86400, description="Seconds per point (downsampling), 1..86400.")
    ] = 60.0,
) -> Response:
    """Metric history with summaries and trends (see the description)."""
    try:
        names = text_list("metric_names", metric_names) if metric_names is not None else None
        tags: dict[str, str] = {}
        for key, value in dynamic_filters(request, _DECLARED, ("tag.",)).items():
            name = key[len("tag.") :]
            if not name:
                raise FilterError(key, "a tag filter needs a name: use tag.NAME=value")
            tags[text_value(key, name)] = text_value(key, value)
        start, end = _range(start_time, end_time)
    except FilterError as exc:
        raise http_error(exc) from None
    start_iso, end_iso = micros_to_iso(start), micros_to_iso(end)
    history = metric_history(
        state.store, names or None, start_iso, end_iso, interval=interval, tags=tags
    )
    return json_response(
        {"metrics": history, "start_time": start_iso, "end_time": end_iso, "interval": interval}
    )
