"""Operations: ``/stats``, ``/integrity``, ``/health``, ``/metrics``, ``/config``, ``/whoami``.

``/health`` is the only route without a token. ``/stats`` adapts to the caller: the viewer
role sees no security or audit record in it (patterns, loggers, counts), see
:func:`_viewer_store_stats`; the security and admin roles see them, and each of their reads
is audited.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from .._config.model import redact_url
from .._core.clock import iso_utc
from .._core.errors import error_reporter
from ..store.base import SENSITIVE_LEVELS, LogQuery, LogStore, to_micros
from ..store.stats import window_stats
from .auth import Principal
from .deps import PREFIX, Caller, get_state, require
from .models import (
    ERROR_RESPONSES,
    VIEWER_ERROR_RESPONSES,
    ConfigResponse,
    HealthResponse,
    IntegrityReport,
    StatsResponse,
    WhoAmI,
    json_response,
)
from .params import FilterError, audit_call, http_error
from .state import ServerState

__all__ = ["PROMETHEUS_CONTENT_TYPE", "router"]

router = APIRouter(prefix=PREFIX, tags=["operations"])
"""The operations routes (included by :mod:`.router` under ``/api/v2/logs``)."""

Admin = Annotated[Principal, Depends(require("admin"))]
PROMETHEUS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_BUCKET_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MAX_BUCKETS: Final = 5000
_INTEGRITY: Final = "integrity"
_INTEGRITY_LOCK: Final = "integrity_lock"


# --- /stats --------------------------------------------------------------------------------
def _viewer_store_stats(store: LogStore) -> dict[str, Any]:
    """The all-time numbers the viewer role may see: records, first and last time and the
    storage size, all without security and audit records (per level, category and logger
    counts are in the window part, which is computed without them too)."""
    query = LogQuery(exclude_security=True, limit=1)
    newest = store.query(query).entries
    oldest = store.query(LogQuery(exclude_security=True, limit=1, order="asc")).entries
    return {
        "records": store.count(query),
        "first": oldest[0].get("timestamp") if oldest else None,
        "last": newest[0].get("timestamp") if newest else None,
        "storage_bytes": store.stats().get("storage_bytes"),
    }


def _pipeline(viewer: bool) -> dict[str, Any]:
    """This process's pipeline counters (records per level without SECURITY and AUDIT for
    the viewer)."""
    from .. import get_logging_stats

    stats = get_logging_stats()
    records = {
        str(k): int(v)
        for k, v in stats.get("records", {}).items()
        if not (viewer and k in SENSITIVE_LEVELS)
    }
    return {
        "configured": bool(stats.get("configured")),
        "records": records,
        "records_total": sum(records.values()),
        "dropped_total": int(stats.get("dropped_total", 0)),
        "queue_depth": int(stats.get("queue_depth", 0)),
        "queue_capacity": int(stats.get("queue_capacity", 0)),
        "bytes_written": int(stats.get("bytes_written", 0)),
    }


def _lag(last: object, now: float) -> float | None:
    if not isinstance(last, str):
        return None
    return round(max(0.0, now - to_micros(last) / 1_000_000), 3)


@router.get(
    "/stats",
    summary="Statistics",
    description="All-time store counts, statistics of the last `window` seconds (records per "
    "`bucket`, error rate, top message patterns), the logging pipeline of this process, the "
    "indexer and the latest integrity check. For the `viewer` role, security and audit "
    "records are left out of every part; a `security` or `admin` caller's read (which "
    "includes them) is audited.",
    response_class=Response,
    responses={
        200: {"model": StatsResponse, "description": "The statistics."},
        **VIEWER_ERROR_RESPONSES,
    },
)
def stats(
    request: Request,
    principal: Caller,
    state: Annotated[ServerState, Depends(get_state)],
    window: Annotated[
        float, Query(ge=60, le=31 * 86400, description="Seconds of the window, 60..2678400.")
    ] = 86400.0,
    bucket: Annotated[
        Literal["minute", "hour", "day"], Query(description="Size of the window's buckets.")
    ] = "hour",
) -> Response:
    """Store, window, pipeline, indexer and integrity statistics."""
    if window / _BUCKET_SECONDS[bucket] > _MAX_BUCKETS:
        raise http_error(
            FilterError(
                "window",
                f"a window of {window:g} s has more than {_MAX_BUCKETS} {bucket} buckets: "
                "choose a larger bucket or a smaller window",
            )
        )
    viewer = not principal.allows("security")
    body = _cached_stats(state, viewer, window, bucket)
    if not viewer:  # security and audit records' patterns and counts: a read of security data
        audit_call(principal, "read", "stats", request, window=window, bucket=bucket)
    return json_response(body)


_STATS_CACHE: Final = "stats_cache"
_STATS_LOCK: Final = "stats_lock"
STATS_TTL_SECONDS: Final = 5.0
"""How long one computation of /stats serves identical requests (role kind, window, bucket)."""


def _cached_stats(state: ServerState, viewer: bool, window: float, bucket: str) -> Any:
    """/stats for one kind of caller, computed at most once per :data:`STATS_TTL_SECONDS`
    and one computation at a time (a month's window scans the store: repeating it must not
    take the server's threads)."""
    lock = state.extras.setdefault(_STATS_LOCK, threading.Lock())
    cache: dict[tuple[bool, float, str], tuple[float, Any]]
    cache = state.extras.setdefault(_STATS_CACHE, {})
    key = (viewer, window, bucket)
    with lock:
        hit = cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < STATS_TTL_SECONDS:
            return hit[1]
        body = _compute_stats(state, viewer, window, bucket)
        if len(cache) > 64:
            cache.clear()
        cache[key] = (time.monotonic(), body)
        return body


def _compute_stats(state: ServerState, viewer: bool, window: float, bucket: str) -> Any:
    now = time.time()
    store = state.store
    all_time = _viewer_store_stats(store) if viewer else store.stats()
    last = state.last_index
    indexer: dict[str, Any] = {
        "running": state.settings.run_indexer,
        "ingestion_lag_seconds": _lag(all_time.get("last"), now),
    }
    if not viewer:  # its counts include the records the viewer may not know of
        indexer["last_pass"] = asdict(last) if last is not None else None
    integrity = _integrity_summary(state)
    if viewer:
        integrity = {k: integrity[k] for k in ("status", "checked_at") if k in integrity}
    return {
        "store": all_time,
        "window": window_stats(
            store, window=window, bucket=bucket, now=now, exclude_security=viewer
        ).as_dict(),
        "pipeline": _pipeline(viewer),
        "indexer": indexer,
        "integrity": integrity,
    }


# --- /integrity ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Check:
    """One verification: its summary (what /stats shows), its full report, when it ended."""

    summary: dict[str, Any]
    report: dict[str, Any] | None
    finished: float  # time.monotonic()


def _integrity_summary(state: ServerState) -> dict[str, Any]:
    check = state.extras.get(_INTEGRITY)
    return dict(check.summary) if isinstance(check, _Check) else {"status": "not_checked"}


def _verify(state: ServerState) -> _Check:
    """Verify the log directory (the caller runs in the threadpool)."""
    from ..integrity import verify_directory

    started, wall = time.monotonic(), time.time()
    summary: dict[str, Any] = {"checked_at": iso_utc(wall)}
    report: dict[str, Any] | None = None
    try:
        result = verify_directory(state.settings.directory)
    except (ValueError, OSError) as exc:
        summary.update(status="error", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - a verifier bug still gives an answer
        error_reporter.report("server-integrity", f"verification failed: {exc!r}")
        summary.update(status="error", error=f"verification stopped on an error: {exc!r}")
    else:
        report = result.to_dict()
        kinds: dict[str, int] = {}
        for finding in result.findings:
            kinds[finding.kind] = kinds.get(finding.kind, 0) + 1
        summary.update(
            status="ok" if result.ok else "failed",
            findings=len(result.findings),
            findings_by_kind=kinds,
            records=result.records,
            files=result.files,
            streams=result.streams,
        )
    summary["duration_seconds"] = round(time.monotonic() - started, 3)
    return _Check(summary=summary, report=report, finished=time.monotonic())


def _latest_check(state: ServerState, refresh: bool) -> tuple[_Check, bool]:
    """The cached check, or a new one (``refresh``, or none yet); one runs at a time, and a
    caller who waited for another's run gets that result. Returns it and whether it ran."""
    asked = time.monotonic()
    lock = state.extras.setdefault(_INTEGRITY_LOCK, threading.Lock())
    with lock:
        check = state.extras.get(_INTEGRITY)
        if isinstance(check, _Check) and (not refresh or check.finished >= asked):
            return check, False
        check = _verify(state)
        state.extras[_INTEGRITY] = check
        state.extras.pop(_STATS_CACHE, None)  # /stats shows the new status at once
        return check, True


@router.get(
    "/integrity",
    summary="Integrity verification",
    description="The latest verification of the log directory's hash chains, tags and signed "
    "checkpoints (run on first use; `refresh=true` runs a new one; one runs at a time). "
    "`status` is ok, failed (findings name each problem) or error (verification could not "
    "run, e.g. no key). Needs the `admin` role; audited.",
    response_class=Response,
    responses={200: {"model": IntegrityReport, "description": "The report."}, **ERROR_RESPONSES},
)
def integrity(
    request: Request,
    principal: Admin,
    state: Annotated[ServerState, Depends(get_state)],
    refresh: Annotated[bool, Query(description="Run a new verification.")] = False,
) -> Response:
    """The latest integrity report (see the description)."""
    check, ran = _latest_check(state, refresh)
    audit_call(
        principal,
        "verify" if ran else "read",
        "integrity",
        request,
        status=check.summary.get("status"),
        findings=check.summary.get("findings"),
    )
    return json_response({**check.summary, "report": check.report})


# --- /health, /metrics, /config, /whoami ---------------------------------------------------
@router.get(
    "/health",
    summary="Health",
    description="No token needed. 200 with status ok when the store answers, 503 with status "
    "degraded when it does not. Reveals nothing else.",
    response_class=Response,
    responses={
        200: {"model": HealthResponse, "description": "Healthy."},
        503: {"model": HealthResponse, "description": "The store does not answer."},
    },
)
def health(state: Annotated[ServerState, Depends(get_state)]) -> Response:
    """Liveness and whether the store answers."""
    from .. import __version__

    try:
        state.store.query(LogQuery(limit=1))
        store_ok = True
    except Exception:  # noqa: BLE001 - any failure means "unavailable"
        store_ok = False
    body = {
        "status": "ok" if store_ok else "degraded",
        "version": __version__,
        "store": "ok" if store_ok else "unavailable",
    }
    return json_response(body, status_code=200 if store_ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="The metrics registry of this process in the Prometheus text format 0.0.4.",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **VIEWER_ERROR_RESPONSES,
    },
)
def prometheus_metrics(principal: Caller) -> Response:
    """The Prometheus text exposition of the metrics registry."""
    from ..metrics.prometheus import exposition

    body, _ = exposition()
    return Response(body, media_type=PROMETHEUS_CONTENT_TYPE)


def _server_settings(state: ServerState) -> dict[str, Any]:
    s = state.settings
    return {
        "directory": str(s.directory),
        "store_url": redact_url(s.effective_store_url),
        "host": s.host,
        "insecure_no_auth": s.insecure_no_auth,
        "demo": s.demo,
        "cors_origins": list(s.cors_origins),
        "rate_limit": s.rate_limit,
        "api_tokens": "**********" if s.api_tokens else None,
        "run_indexer": s.run_indexer,
        "index_interval": s.index_interval,
        "heartbeat_seconds": s.heartbeat_seconds,
        "client_queue": s.client_queue,
        "tokens": [asdict(t) for t in state.tokens.list()],
    }


@router.get(
    "/config",
    summary="Effective configuration",
    description="The active logging configuration (each value with its source, as "
    "`plexichat-logs config show --json` prints it) and the server's settings. Secrets are "
    "masked (`**********`), URL passwords shown as `***`; token hashes are never shown. "
    "Needs the `admin` role; audited.",
    response_class=Response,
    responses={
        200: {"model": ConfigResponse, "description": "The configuration."},
        **ERROR_RESPONSES,
    },
)
def config(
    request: Request, principal: Admin, state: Annotated[ServerState, Depends(get_state)]
) -> Response:
    """The effective configuration, secrets masked."""
    from ..config import config_sources, get_logging_config

    data = get_logging_config().model_dump(mode="json")
    for key in ("store_url", "integrity_witness"):
        data[key] = redact_url(data.get(key))
    sources = config_sources()
    body = {
        "logging": {k: {"value": v, "source": sources.get(k, "default")} for k, v in data.items()},
        "server": _server_settings(state),
    }
    audit_call(principal, "read", "config", request)
    return json_response(body)


@router.get(
    "/whoami",
    summary="The caller",
    description="The name and role of the token used (the viewer adapts to the role).",
    response_class=Response,
    responses={200: {"model": WhoAmI, "description": "The caller."}, **VIEWER_ERROR_RESPONSES},
)
def whoami(principal: Caller) -> Response:
    """The token's name and role."""
    return json_response({"name": principal.name, "role": principal.role})
