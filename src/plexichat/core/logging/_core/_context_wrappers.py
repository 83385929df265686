"""The wrappers ``@log_context`` puts around functions: plain, coroutine, generator and
async generator functions each get one that binds the fields while their code runs."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from typing import Any

__all__ = ["wrap"]


def wrap(func: Callable[..., Any], fields: dict[str, Any]) -> Any:
    """Return ``func`` wrapped so that ``fields`` are bound whenever its code runs.

    A generator or async generator is driven step by step, with the fields bound around
    each step only (the consumer's code between two steps does not see them); values sent
    or thrown in and ``close()`` are passed through.
    """
    from .context import log_context

    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
            return _drive_async(func(*args, **kwargs), fields)

        return agen_wrapper
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            return _drive(func(*args, **kwargs), fields)

        return gen_wrapper
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            with log_context(**fields):
                return await func(*args, **kwargs)

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with log_context(**fields):
            return func(*args, **kwargs)

    return wrapper


def _drive(gen: Generator[Any, Any, Any], fields: dict[str, Any]) -> Generator[Any, Any, Any]:
    """Run ``gen`` one step at a time, each step with ``fields`` bound."""
    from .context import log_context

    step: Callable[[Any], Any] = gen.send
    arg: Any = None
    while True:
        with log_context(**fields):
            try:
                value = step(arg)
            except StopIteration as stop:
                return stop.value
        try:
            arg = yield value
            step = gen.send
        except GeneratorExit:
            with log_context(**fields):
                gen.close()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown in: passed to the generator
            step, arg = gen.throw, exc


async def _drive_async(
    agen: AsyncGenerator[Any, Any], fields: dict[str, Any]
) -> AsyncGenerator[Any, Any]:
    """Run ``agen`` one step at a time, each step with ``fields`` bound."""
    from .context import log_context

    step: Callable[[Any], Any] = agen.asend
    arg: Any = None
    while True:
        with log_context(**fields):
            try:
                value = await step(arg)
            except StopAsyncIteration:
                return
        try:
            arg = yield value
            step = agen.asend
        except GeneratorExit:
            with log_context(**fields):
                await agen.aclose()
            raise
        except BaseException as exc:  # noqa: BLE001 - thrown in: passed to the generator
            step, arg = agen.athrow, exc
