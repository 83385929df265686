"""Database metrics and a slow-query log from SQLAlchemy engine events.

``instrument_engine(engine)`` listens to the engine's cursor and pool events:

- ``db_query_duration_seconds`` (histogram, tag ``kind``: SELECT, INSERT, UPDATE, DELETE or
  OTHER) for every statement, ``db_query_errors_total`` (counter, tag ``kind``) for failures;
- a WARNING record in category ``database`` for each statement slower than the threshold,
  holding the statement's shape (literals and parameters as ``?``), never its parameters;
- gauges ``db_pool_size``, ``db_pool_checked_out`` and ``db_pool_overflow`` (tag ``engine``)
  kept current on every checkout and checkin (pools that report their status: QueuePool and
  its async variant).

Example:
    >>> from sqlalchemy import create_engine
    >>> from plexichat.core.logging.integrations.sqlalchemy import instrument_engine
    >>> engine = create_engine("sqlite:///app.db")
    >>> instrument_engine(engine, slow_query_threshold=0.2)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from .. import get_logger
from .._core.errors import error_reporter
from .._core.levels import LogCategory
from .._core.manager import get_logging_manager
from ..metrics.registry import get_registry
from ._checks import check_slow_query_threshold
from ._sqlshape import statement_kind, statement_shape

if TYPE_CHECKING:  # importing it needs greenlet, which a sync application may lack
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "DEFAULT_LOGGER_NAME",
    "instrument_engine",
    "is_instrumented",
    "uninstrument_engine",
    "update_pool_metrics",
]

DEFAULT_LOGGER_NAME = "plexichat.db"
"""The logger slow-query records are written to."""
QUERY_DURATION = "db_query_duration_seconds"
QUERY_ERRORS = "db_query_errors_total"
_STARTS = "_plexichat_query_starts"
_ATTR = "_plexichat_instrumentation"


class _Instrumentation:
    """The listeners installed on one engine."""

    def __init__(
        self, engine: Engine, name: str, threshold: float | None, use_config: bool, logger: str
    ) -> None:
        self.engine = engine
        self.name = name
        self.threshold = threshold
        self.use_config = use_config
        self.logger_name = logger
        self.listeners: list[tuple[str, Callable[..., None]]] = [
            ("before_cursor_execute", self.before),
            ("after_cursor_execute", self.after),
            ("handle_error", self.error),
            ("connect", self.pool_changed),
            ("checkout", self.pool_changed),
            ("checkin", self.checked_in),
        ]

    def before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info.setdefault(_STARTS, []).append(time.perf_counter())

    def after(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        starts = conn.info.get(_STARTS)
        if not starts:
            return
        duration = time.perf_counter() - starts.pop()
        try:
            kind = statement_kind(statement)
            get_registry().histogram(QUERY_DURATION, {"kind": kind}).observe(duration)
            threshold = self._threshold()
            if threshold is not None and duration >= threshold:
                self._slow(statement, kind, duration, threshold, many)
        except Exception as exc:  # noqa: BLE001 - metrics never break a query
            error_reporter.report("integrations.sqlalchemy", f"query not observed: {exc!r}")

    def error(self, context: Any) -> None:
        conn = context.connection
        starts = conn.info.get(_STARTS) if conn is not None else None
        if not starts:
            return
        starts.pop()
        try:
            kind = statement_kind(context.statement or "")
            get_registry().counter(QUERY_ERRORS, {"kind": kind}).inc()
        except Exception as exc:  # noqa: BLE001 - metrics never break a query
            error_reporter.report("integrations.sqlalchemy", f"query error not counted: {exc!r}")

    def pool_changed(self, *_: Any) -> None:
        _set_pool_gauges(self.engine.pool, self.name, returning=False)

    def checked_in(self, *_: Any) -> None:
        # the checkin event fires before the connection is back in the pool
        _set_pool_gauges(self.engine.pool, self.name, returning=True)

    def _threshold(self) -> float | None:
        if not self.use_config:
            return self.threshold
        return get_logging_manager().config.slow_query_threshold

    def _slow(
        self, statement: str, kind: str, duration: float, threshold: float, many: bool
    ) -> None:
        duration_ms = round(duration * 1000.0, 3)
        get_logger(self.logger_name).warning(
            "Slow query (%s, %.1f ms)",
            kind,
            duration_ms,
            extra={
                "category": LogCategory.DATABASE,
                "context": {"engine": self.name, "statement_kind": kind},
                "metadata": {
                    "statement": statement_shape(statement),
                    "duration_ms": duration_ms,
                    "threshold_ms": round(threshold * 1000.0, 3),
                    "executemany": many,
                },
            },
        )


def instrument_engine(
    engine: Engine | AsyncEngine,
    *,
    slow_query_threshold: float | str | None = None,
    name: str | None = None,
    logger_name: str = DEFAULT_LOGGER_NAME,
) -> None:
    """Record query times and pool status of ``engine`` and log its slow queries.

    Instrumenting an engine again replaces the earlier instrumentation.

    Args:
        engine: a SQLAlchemy ``Engine`` or ``AsyncEngine``.
        slow_query_threshold: seconds (or ``"500 ms"``); statements at least this slow get a
            WARNING record with their shape; 0 logs every statement, ``"off"`` none. None
            follows the ``slow_query_threshold`` setting (default 0.5 s), read per statement.
        name: the ``engine`` tag of the pool gauges and slow-query records; by default the
            dialect and database name (``"sqlite/app.db"``), never the password or host.
        logger_name: logger of the slow-query records (``"plexichat.db"``).

    Raises:
        ValueError: ``slow_query_threshold`` is not a duration, 0 or ``"off"``.
    """
    sync_engine = _sync(engine)
    threshold = None
    if slow_query_threshold is not None:
        threshold = check_slow_query_threshold(slow_query_threshold)
    uninstrument_engine(sync_engine)
    inst = _Instrumentation(
        sync_engine,
        name or _default_name(sync_engine),
        threshold,
        slow_query_threshold is None,
        logger_name,
    )
    for event_name, fn in inst.listeners:
        event.listen(sync_engine, event_name, fn)
    setattr(sync_engine, _ATTR, inst)
    _set_pool_gauges(sync_engine.pool, inst.name, returning=False)


def uninstrument_engine(engine: Engine | AsyncEngine) -> bool:
    """Remove the listeners :func:`instrument_engine` installed.

    Returns:
        True if the engine was instrumented.
    """
    sync_engine = _sync(engine)
    inst: _Instrumentation | None = getattr(sync_engine, _ATTR, None)
    if inst is None:
        return False
    for event_name, fn in inst.listeners:
        event.remove(sync_engine, event_name, fn)
    delattr(sync_engine, _ATTR)
    return True


def is_instrumented(engine: Engine | AsyncEngine) -> bool:
    """Whether :func:`instrument_engine` is active on ``engine``."""
    sync_engine = _sync(engine)
    return getattr(sync_engine, _ATTR, None) is not None


def update_pool_metrics(engine: Engine | AsyncEngine) -> dict[str, int] | None:
    """Read the pool's status now and set the pool gauges (the events keep them current).

    Returns:
        ``{"size": ..., "checked_out": ..., "overflow": ...}``, or None for pools that do not
        report a status (NullPool, StaticPool, SingletonThreadPool) or an engine that is not
        instrumented.
    """
    sync_engine = _sync(engine)
    inst: _Instrumentation | None = getattr(sync_engine, _ATTR, None)
    if inst is None:
        return None
    return _set_pool_gauges(sync_engine.pool, inst.name, returning=False)


def _set_pool_gauges(pool: Any, name: str, *, returning: bool) -> dict[str, int] | None:
    try:
        size_of = getattr(pool, "size", None)
        checked_out_of = getattr(pool, "checkedout", None)
        overflow_of = getattr(pool, "overflow", None)
        checked_in_of = getattr(pool, "checkedin", None)
        if size_of is None or checked_out_of is None or overflow_of is None:
            return None
        size = int(size_of())
        checked_out = int(checked_out_of())
        overflow = int(overflow_of())
        if returning:  # the connection being checked in is still counted
            checked_out -= 1
            if checked_in_of is not None and size and int(checked_in_of()) >= size:
                overflow -= 1  # the pool is full: this connection will be closed
        status = {
            "size": size,
            "checked_out": max(checked_out, 0),
            "overflow": max(overflow, 0),
        }
        registry = get_registry()
        tags = {"engine": name}
        for key, value in status.items():
            registry.gauge(f"db_pool_{key}", tags, unit="connections").set(value)
    except Exception as exc:  # noqa: BLE001 - metrics never break a checkout
        error_reporter.report("integrations.sqlalchemy", f"pool status not recorded: {exc!r}")
        return None
    return status


def _sync(engine: Engine | AsyncEngine) -> Engine:
    return engine if isinstance(engine, Engine) else engine.sync_engine


def _default_name(engine: Engine) -> str:
    database = engine.url.database or ""
    if engine.dialect.name == "sqlite":
        database = PurePath(database).name or "memory"
    return f"{engine.dialect.name}/{database}" if database else engine.dialect.name
