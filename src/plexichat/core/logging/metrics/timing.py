"""Timing and recording: ``timer``, ``time_function`` and ``record_metric``.

Durations are measured with :func:`time.perf_counter` and recorded in seconds into the
histogram of the timer's name and tags. An exception inside a timed block or function is timed
too, recorded with an extra ``error`` tag (the exception's class name) and re-raised unchanged.
Optionally (``metrics_log_timings``, sampled by ``metrics_log_sample_rate``) each timing also
writes a PERFORMANCE record whose ``performance_data`` holds ``{name: seconds}``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from threading import get_ident as _get_ident
from types import MappingProxyType, TracebackType
from typing import Any, ParamSpec, TypeVar, cast, overload

from .._core.errors import error_reporter
from .alerts import get_alert_engine
from .model import PerformanceMetric
from .registry import Histogram, get_registry, normalize_tags, validate_name

__all__ = ["TimingOptions", "record_metric", "time_function", "timer", "timing_options"]

P = ParamSpec("P")
R = TypeVar("R")

_registry = get_registry()
_lookup = _registry._lookup
_perf = time.perf_counter
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class TimingOptions:
    """Whether timings also become PERFORMANCE records (set from the configuration).

    Attributes:
        log_timings: write a record per timing.
        sample_rate: the fraction of timings written (0..1).
    """

    __slots__ = ("log_timings", "sample_rate")

    def __init__(self) -> None:
        self.log_timings = False
        self.sample_rate = 1.0


timing_options = TimingOptions()
"""The process-wide options, applied by ``configure_logging``."""


def _finish(series: Histogram, value: float, now: float | None, meta: Mapping[str, Any]) -> None:
    """Feed the alert rules with a recorded value (when there are any)."""
    if now is None:
        return
    engine = get_alert_engine()
    if engine.active and engine.watches(series.name):  # built only when a rule needs it
        engine.observe_value(
            series.name,
            value,
            lambda: PerformanceMetric(series.name, value, series.unit, now, series.tags, meta),
        )


def record_metric(
    name: str, value: float, unit: str = "", tags: Mapping[str, object] | None = None
) -> None:
    """Record one value of a custom metric.

    Each call adds ``value`` to the distribution of ``name`` with ``tags`` (count, sum, min,
    max, p50/p95/p99, last value, rolling windows) and feeds the alert rules on ``name``.

    Args:
        name: the metric name: letters, digits, ``_``, ``.``, ``:`` (``"response_size"``).
        value: an int or float. NaN and infinities are dropped (counted and reported once on
            stderr): they never corrupt the series.
        unit: the unit (``"bytes"``, ``"count"``, ``"seconds"``, ``"percent"``...); one unit
            per name.
        tags: series labels, strings or numbers (``{"endpoint": "/api/users"}``). Past
            ``metrics_max_series`` tag sets per name, values go to the ``overflow=true`` series.

    Raises:
        MetricError: (a ``ValueError``) ``value`` is not a number, or the name, unit or tags
            are invalid: a programming error, reported at the call that makes it.

    Example:
        >>> record_metric("response_size", 2048, "bytes", tags={"endpoint": "/api/users"})
    """
    series: Histogram
    try:
        series = _lookup[(name, tuple(tags.items()) if tags else ())]  # type: ignore[assignment]
        if series.unit != unit or series.kind != "histogram":
            series = _registry.histogram(name, tags, unit)
    except (KeyError, TypeError, AttributeError):
        series = _registry.histogram(name, tags, unit)
    _finish(series, value, series.observe(value), _EMPTY)


def _done(
    series: Histogram, tags: Mapping[str, object] | None, elapsed: float, error: str | None
) -> None:
    """Record one timing (and maybe a PERFORMANCE record); never raises for internal faults."""
    try:
        if error is None:
            _finish(series, elapsed, series._record(elapsed), _EMPTY)
        else:
            tags = {**(tags or {}), "error": error}
            series = _registry.histogram(series.name, tags, "seconds")
            _finish(series, elapsed, series._record(elapsed), {"error": error})
    except Exception as exc:  # noqa: BLE001 - timing a block never breaks the block
        error_reporter.report("metrics.timer", f"could not record timer {series.name!r}: {exc}")
        return
    opts = timing_options
    if opts.log_timings and (opts.sample_rate >= 1.0 or random.random() < opts.sample_rate):
        _log_timing(series.name, tags, elapsed, error)


def _log_timing(
    name: str, tags: Mapping[str, object] | None, elapsed: float, error: str | None
) -> None:
    from .. import LogCategory, get_logger

    meta: dict[str, Any] = {"metric": name, "unit": "seconds", "tags": dict(tags or {})}
    if error is not None:
        meta["error"] = error
    get_logger("plexichat.performance").info(
        "%s took %.3f ms",
        name,
        elapsed * 1000.0,
        extra={
            "category": LogCategory.PERFORMANCE,
            "performance_data": {name: elapsed},
            "metadata": meta,
        },
    )


class timer:  # noqa: N801 - the spec's name; used like a function
    """Time a block (``with`` / ``async with``) or every call of a function (decorator).

    The duration in seconds goes into the histogram ``name`` with ``tags``. If the block
    raises, the time is recorded with an extra ``error`` tag (the exception's class name) and
    the exception propagates unchanged. A metrics failure never breaks the timed code.

    Args:
        name: the metric name (``"database_query"``).
        tags: series labels (``{"table": "users"}``).

    Raises:
        MetricError: the name or tags are invalid (checked on construction).

    Example:
        >>> with timer("database_query", tags={"table": "users"}):
        ...     pass
        >>> @timer("report")
        ... def build() -> int:
        ...     return 1
        >>> build()
        1
    """

    __slots__ = ("_series", "_starts", "name", "tags")

    def __init__(self, name: str, tags: Mapping[str, object] | None = None) -> None:
        self.name = name
        self.tags = tags
        self._starts: dict[int, list[float]] = {}
        """Stacks of start times by thread (sync) or task (async): one timer object may time
        blocks in several threads or tasks at once, and nested in one of them."""
        self._series = _registry.histogram(name, tags, "seconds")  # fails fast if invalid

    def _start(self, key: int) -> None:
        starts = self._starts
        stack = starts.get(key)
        if stack is None:
            starts[key] = [_perf()]
        else:
            stack.append(_perf())  # nested: the same timer entered again in this thread/task

    def _elapsed(self, key: int) -> float | None:
        """Seconds since the innermost start of ``key``; None when it has no start."""
        end = _perf()
        stack = self._starts.get(key)
        if not stack:
            return None  # exited without entering: nothing to measure
        start = stack.pop()
        if not stack:
            del self._starts[key]
        return end - start

    def __enter__(self) -> timer:
        self._start(_get_ident())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = self._elapsed(_get_ident())
        if elapsed is None:
            return
        if exc_type is None and not timing_options.log_timings:  # the common case, inlined
            series = self._series
            try:
                _finish(series, elapsed, series._record(elapsed), _EMPTY)
            except Exception as exc:  # noqa: BLE001 - timing a block never breaks the block
                error_reporter.report(
                    "metrics.timer", f"could not record timer {self.name!r}: {exc}"
                )
            return
        _done(self._series, self.tags, elapsed, None if exc_type is None else exc_type.__name__)

    async def __aenter__(self) -> timer:
        self._start(id(asyncio.current_task()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        elapsed = self._elapsed(id(asyncio.current_task()))
        if elapsed is None:
            return
        _done(self._series, self.tags, elapsed, None if exc_type is None else exc_type.__name__)

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``fn`` (sync or async): each call is timed on its own."""
        return _wrap(fn, self.name, self.tags)


def _wrap(fn: Callable[P, R], name: str, tags: Mapping[str, object] | None) -> Callable[P, R]:
    series = _registry.histogram(name, tags, "seconds")  # fails fast if invalid
    if inspect.isgeneratorfunction(fn):
        return cast(Callable[P, R], _wrap_generator(fn, series, tags))
    if inspect.isasyncgenfunction(fn):
        return cast(Callable[P, R], _wrap_async_generator(fn, series, tags))
    if inspect.iscoroutinefunction(fn):
        afn = cast(Callable[P, Awaitable[Any]], fn)

        @functools.wraps(fn)
        async def timed_async(*args: P.args, **kwargs: P.kwargs) -> Any:
            start = _perf()
            try:
                result = await afn(*args, **kwargs)
            except BaseException as exc:
                _done(series, tags, _perf() - start, type(exc).__name__)
                raise
            _done(series, tags, _perf() - start, None)
            return result

        return cast(Callable[P, R], timed_async)

    @functools.wraps(fn)
    def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        start = _perf()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            _done(series, tags, _perf() - start, type(exc).__name__)
            raise
        _done(series, tags, _perf() - start, None)
        return result

    return timed


def _wrap_generator(
    fn: Callable[..., Generator[Any, Any, Any]],
    series: Histogram,
    tags: Mapping[str, object] | None,
) -> Callable[..., Generator[Any, Any, Any]]:
    """Time a generator's iteration: from its first step until it is exhausted, raises or
    is closed (``send``, ``throw`` and ``close`` reach the wrapped generator)."""

    @functools.wraps(fn)
    def timed_generator(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        start = _perf()
        error: str | None = None
        try:
            return (yield from fn(*args, **kwargs))
        except GeneratorExit:
            raise  # closed early by its consumer: a normal end
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            _done(series, tags, _perf() - start, error)

    return timed_generator


def _wrap_async_generator(
    fn: Callable[..., AsyncGenerator[Any, Any]],
    series: Histogram,
    tags: Mapping[str, object] | None,
) -> Callable[..., AsyncGenerator[Any, Any]]:
    """Time an async generator's iteration: from its first step until it is exhausted,
    raises or is closed (``asend``, ``athrow`` and ``aclose`` reach the wrapped one)."""

    @functools.wraps(fn)
    async def timed_async_generator(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        inner = fn(*args, **kwargs)
        start = _perf()
        error: str | None = None
        try:
            step: Awaitable[Any] = inner.asend(None)
            while True:
                try:
                    value = await step
                except StopAsyncIteration:
                    return
                try:
                    sent = yield value
                except GeneratorExit:
                    raise
                except BaseException as exc:  # noqa: BLE001 - thrown in: passed on
                    step = inner.athrow(exc)
                else:
                    step = inner.asend(sent)
        except GeneratorExit:
            raise  # closed early by its consumer: a normal end
        except BaseException as exc:
            error = type(exc).__name__
            raise
        finally:
            try:
                await inner.aclose()
            finally:
                _done(series, tags, _perf() - start, error)

    return timed_async_generator


@overload
def time_function(
    name: Callable[P, R], tags: Mapping[str, object] | None = None
) -> Callable[P, R]: ...


@overload
def time_function(
    name: str | None = None, tags: Mapping[str, object] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def time_function(
    name: str | Callable[..., Any] | None = None, tags: Mapping[str, object] | None = None
) -> Any:
    """Decorator: time every call of a sync or async function.

    Usable as ``@time_function("user_authentication")``, ``@time_function()`` or bare
    ``@time_function`` (the name is then ``module.qualname`` of the function). Exceptions are
    timed with an ``error`` tag and re-raised. For a generator or async generator function,
    the timing covers the iteration: from the first step until the generator is exhausted,
    raises or is closed.

    Args:
        name: the metric name (default: the function's ``module.qualname``).
        tags: series labels.

    Returns:
        The decorator (or, used bare, the decorated function).

    Example:
        >>> @time_function("user_authentication")
        ... def authenticate_user(username: str, password: str) -> bool:
        ...     return True
        >>> authenticate_user("alice", "secret")
        True
    """
    if callable(name):
        return _decorate(name, None, tags)
    if name is not None:
        validate_name(name)
        normalize_tags(tags)

    def decorator(fn: Callable[P, R]) -> Callable[P, R]:
        return _decorate(fn, name, tags)

    return decorator


def _decorate(
    fn: Callable[P, R], name: str | None, tags: Mapping[str, object] | None
) -> Callable[P, R]:
    if name is None:
        qual = getattr(fn, "__qualname__", getattr(fn, "__name__", "function"))
        name = f"{fn.__module__}.{qual}".replace("<", "").replace(">", "")
    return _wrap(fn, name, tags)
