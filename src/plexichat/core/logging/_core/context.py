"""Context fields bound with contextvars: they follow ``await``, asyncio tasks and, with
:func:`run_in_context` / :func:`context_executor`, thread pools.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from types import MappingProxyType
from typing import Any, ParamSpec, TypeAlias, TypeVar, cast

__all__ = [
    "bind_context",
    "clear_context",
    "context_executor",
    "current_context",
    "log_context",
    "run_in_context",
    "unbind_context",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "plexichat_log_context", default=_EMPTY
)

P = ParamSpec("P")
R = TypeVar("R")


def current_context() -> Mapping[str, Any]:
    """Return the fields bound in the current context (read-only)."""
    return _context.get()


def bind_context(**fields: Any) -> None:
    """Bind ``fields`` into every record logged from the current context from now on.

    Example:
        >>> bind_context(request_id="req_1")
    """
    merged = dict(_context.get())
    merged.update(fields)
    _context.set(MappingProxyType(merged))


def unbind_context(*names: str) -> None:
    """Remove the named fields from the current context (missing names are ignored)."""
    current = _context.get()
    if any(name in current for name in names):
        _context.set(MappingProxyType({k: v for k, v in current.items() if k not in names}))


def clear_context() -> None:
    """Remove every bound field from the current context."""
    _context.set(_EMPTY)


_Frames: TypeAlias = "tuple[log_context, contextvars.Token[Mapping[str, Any]], _Frames] | None"
_frames: contextvars.ContextVar[_Frames] = contextvars.ContextVar(
    "plexichat_log_context_frames", default=None
)
"""The ``log_context`` blocks open in the current context, innermost first: each thread and
asyncio task has its own, so one instance can be entered by any number of them at once."""


class log_context:  # noqa: N801 - a context manager used like a function, as contextlib's are
    """Bind fields for the duration of a block or of a decorated function (sync or async,
    generator or async generator: the fields are bound around each step).

    One instance can be shared (a module constant, a decorator) and entered by several
    threads or asyncio tasks at the same time, and re-entered.

    Example:
        >>> with log_context(request_id="req_1", user_id="u1"):
        ...     pass

        >>> @log_context(job="nightly")
        ... def run() -> None: ...
    """

    def __init__(self, **fields: Any) -> None:
        self._fields = fields

    def __enter__(self) -> Mapping[str, Any]:
        merged = dict(_context.get())
        merged.update(self._fields)
        view = MappingProxyType(merged)
        _frames.set((self, _context.set(view), _frames.get()))
        return view

    def __exit__(self, *exc: object) -> None:
        frame = _frames.get()
        while frame is not None and frame[0] is not self:
            frame = frame[2]  # an inner block left open (a generator suspended in it)
        if frame is None:
            return  # not entered in this context: nothing of ours to undo
        _, token, outer = frame
        try:
            _context.reset(token)
        except (RuntimeError, ValueError):  # pragma: no cover - token used or foreign
            pass
        _frames.set(outer)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        from ._context_wrappers import wrap

        return cast("Callable[P, R]", wrap(func, self._fields))


def run_in_context(func: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``func`` so that it runs in a copy of the caller's context, fields included.

    Use it when handing work to a thread pool or a ``threading.Thread``:

    Example:
        >>> with log_context(request_id="r1"):
        ...     fut = pool.submit(run_in_context(work), 42)  # doctest: +SKIP
    """
    ctx = contextvars.copy_context()

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(func, *args, **kwargs)

    return wrapper


class _ContextExecutor(Executor):
    """An executor that runs each submitted call in a copy of the submitter's context."""

    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        ctx = contextvars.copy_context()
        return self._inner.submit(ctx.run, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait, cancel_futures=cancel_futures)


def context_executor(inner: Executor | None = None, **pool_options: Any) -> Executor:
    """Return an executor whose tasks see the log context of the code that submitted them.

    Args:
        inner: an existing executor to wrap; by default a new ``ThreadPoolExecutor``.
        **pool_options: passed to ``ThreadPoolExecutor`` when ``inner`` is not given.
    """
    return _ContextExecutor(inner if inner is not None else ThreadPoolExecutor(**pool_options))
