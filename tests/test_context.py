"""Context binding on contextvars: blocks, decorators, asyncio tasks and thread pools."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from plexichat.core.logging import (
    bind_context,
    clear_context,
    context_executor,
    current_context,
    get_logger,
    log_context,
    run_in_context,
    unbind_context,
)
from plexichat.core.logging.testing import capture_logs


def test_log_context_block_binds_and_restores() -> None:
    """Fields exist inside the block only, and nested blocks stack."""
    logger = get_logger("ctx")
    with capture_logs() as events:
        with log_context(request_id="r1"):
            with log_context(user_id="u1"):
                logger.info("inner")
            logger.info("outer")
        logger.info("after")
    assert [e.get("context") for e in events] == [
        {"request_id": "r1", "user_id": "u1"},
        {"request_id": "r1"},
        None,
    ]


def test_log_context_decorates_sync_and_async() -> None:
    """As a decorator it binds for each call of a sync or async function."""
    logger = get_logger("deco")

    @log_context(job="sync")
    def work() -> None:
        logger.info("s")

    @log_context(job="async")
    async def awork() -> None:
        await asyncio.sleep(0)
        logger.info("a")

    with capture_logs() as events:
        work()
        asyncio.run(awork())
    assert [e["context"]["job"] for e in events] == ["sync", "async"]
    assert current_context() == {}


def test_asyncio_tasks_keep_their_own_context() -> None:
    """Concurrent tasks see their own fields across awaits."""
    logger = get_logger("tasks")

    async def handle(n: int) -> None:
        with log_context(request=n):
            for _ in range(3):
                await asyncio.sleep(0)
                logger.info("step")

    async def main() -> None:
        await asyncio.gather(*(handle(n) for n in range(5)))

    with capture_logs() as events:
        asyncio.run(main())
    seen = sorted(e["context"]["request"] for e in events)
    assert seen == sorted(list(range(5)) * 3)


def test_per_call_context_wins_over_bound() -> None:
    """A per-call context key overrides the same bound key."""
    with capture_logs() as events, log_context(user_id="bound", other=1):
        get_logger("win").info("x", extra={"context": {"user_id": "call"}})
        get_logger("win").info("y", user_id="kw")
    assert events[0]["context"] == {"user_id": "call", "other": 1}
    assert events[1]["context"] == {"user_id": "kw", "other": 1}


def test_bind_unbind_clear() -> None:
    """bind_context adds, unbind_context removes named fields, clear_context removes all."""
    bind_context(a=1, b=2)
    unbind_context("a", "missing")
    assert dict(current_context()) == {"b": 2}
    clear_context()
    assert dict(current_context()) == {}


def test_threads_do_not_inherit_without_helper() -> None:
    """A plain thread starts with an empty context; run_in_context carries the fields."""
    logger = get_logger("thr")
    with capture_logs() as events, log_context(request_id="r9"):
        t = threading.Thread(target=logger.info, args=("plain",))
        t.start()
        t.join()
        t2 = threading.Thread(target=run_in_context(logger.info), args=("helped",))
        t2.start()
        t2.join()
    by_msg = {e["message"]: e.get("context") for e in events}
    assert by_msg == {"plain": None, "helped": {"request_id": "r9"}}


def test_context_executor_carries_fields_into_pool() -> None:
    """context_executor runs each task in the submitter's context."""
    logger = get_logger("pool")
    pool = context_executor(max_workers=2)
    try:
        with capture_logs() as events:
            for n in range(4):
                with log_context(item=n):
                    pool.submit(logger.info, "task").result()
    finally:
        pool.shutdown()
    assert sorted(e["context"]["item"] for e in events) == [0, 1, 2, 3]


def test_context_executor_wraps_existing_pool() -> None:
    """An existing executor can be wrapped; its results come back unchanged."""
    inner = ThreadPoolExecutor(max_workers=1)
    pool = context_executor(inner)
    try:
        with log_context(x=5):
            assert pool.submit(lambda: dict(current_context())).result() == {"x": 5}
    finally:
        pool.shutdown()
