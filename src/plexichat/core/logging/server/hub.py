"""The live-tail hub: one reader of new store rows, fanned out to every WebSocket client.

One :class:`Hub` per server (kept in ``ServerState.extras``, made by the first WebSocket).
Its reader task wakes when the indexer stored a batch (a state listener) and every
:data:`POLL_SECONDS` (so records that indexers on other hosts push into a shared PostgreSQL
store also stream), reads the rows after the last one it saw with ``store.tail`` in a worker
thread, and offers each row once to every :class:`Client` whose filter matches.

PostgreSQL identity ids can commit out of order (a transaction holding ids 10..20 can
commit after one holding 21). The :class:`IdTracker` keeps a low-water mark (every id up to
it is done) and the ids seen above it; an id missing below the highest one seen is read
again at each pass until it arrives or, after :data:`GAP_SECONDS`, counts as never coming
(a rolled-back insert or a duplicate skipped by ``ON CONFLICT`` also uses up ids).

A subscriber's queue is bounded: when it is full the hub counts a drop for that client and
moves on, so a slow client never slows the hub or the others.

The hub also paces the resumes of its clients (:class:`Slots`: at most
:data:`MAX_BACKFILLS` read the store at once) and watches the token file (every
:data:`TOKEN_CHECK_SECONDS`): when it changes, every subscriber re-checks its token, so a
revoked token loses its live tail at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._core.errors import error_reporter
from ..store.base import LogStore
from .matcher import Row, fetch_rows, row_ids
from .tail_guard import token_file_mark

if TYPE_CHECKING:
    from .state import ServerState

__all__ = ["HUB_KEY", "Client", "Hub", "IdTracker", "Position", "Slots", "get_hub"]

HUB_KEY = "live_tail_hub"
POLL_SECONDS = 0.5
"""The hub reads the store at least this often, woken by the indexer or not."""
TAIL_BATCH = 1000
PRIME_IDS = 1000
"""At start, ids missing among this many below the newest are waited for (see IdTracker)."""
GAP_SECONDS = 10.0
"""How long a missing id is waited for before it counts as never coming."""
MAX_BACKFILLS = 2
"""Resumes (``?after=``) of one server that read the store at the same time; the others
wait their turn."""
TOKEN_CHECK_SECONDS = 0.5
"""How often the hub looks whether the token file changed."""
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Position:
    """Which rows the hub had fanned out at one moment: every id up to ``low``, and
    ``seen`` above it (up to ``high``)."""

    low: int
    high: int
    seen: frozenset[int]

    def delivered(self, row_id: int) -> bool:
        """Whether the hub had already fanned out ``row_id``."""
        return row_id <= self.low or row_id in self.seen


@dataclass(slots=True)
class _Gap:
    start: int
    end: int
    since: float


class IdTracker:
    """The ids the hub has fanned out, tolerant of ids that commit out of order.

    Every id in ``(low, high]`` is either in ``seen`` or in a pending gap.

    Args:
        start: ids up to here count as done (the newest id when the hub starts).
        gap_seconds: how long a missing id is waited for.
    """

    def __init__(self, start: int, gap_seconds: float = GAP_SECONDS) -> None:
        self.gap_seconds = gap_seconds
        self.low = self.high = start
        self.seen: set[int] = set()
        self.gaps: deque[_Gap] = deque()

    def reset(self, start: int, present: list[int] | None = None, now: float = 0.0) -> None:
        """Start over at ``start``, the newest id. ``present``: the ids stored just below it
        (ascending, the newest last): the ones missing among them may still commit."""
        self.low = self.high = start if not present else min(present) - 1
        self.seen.clear()
        self.gaps.clear()
        for row_id in present or ():
            self.accept(row_id, now)
        self.advance(now)

    def accept(self, row_id: int, now: float) -> bool:
        """Record ``row_id``; False when it was fanned out before (or given up on)."""
        if row_id <= self.low or row_id in self.seen:
            return False
        if row_id > self.high:
            if row_id > self.high + 1:
                self.gaps.append(_Gap(self.high + 1, row_id - 1, now))
            self.high = row_id
        self.seen.add(row_id)
        return True

    def advance(self, now: float) -> None:
        """Move ``low`` up over the ids seen, and over gaps older than ``gap_seconds``."""
        seen, gaps = self.seen, self.gaps
        while self.low < self.high:
            nxt = self.low + 1
            if nxt in seen:
                seen.remove(nxt)
                self.low = nxt
                continue
            while gaps and gaps[0].end < nxt:
                gaps.popleft()
            if not gaps or now - gaps[0].since < self.gap_seconds:
                break
            gap = gaps.popleft()  # waited long enough: those ids never come
            self.low = gap.end
            if gap.end - nxt > len(seen):
                self.seen = seen = {i for i in seen if i > gap.end}
            else:
                for i in range(nxt, gap.end + 1):
                    seen.discard(i)
        while gaps and gaps[0].end <= self.low:
            gaps.popleft()

    def gap_windows(self, merge: int = 64, most: int = 16) -> list[tuple[int, int]]:
        """``(after_id, before_id)`` ranges that cover the pending gaps (near ones merged)."""
        windows: list[list[int]] = []
        for gap in self.gaps:
            start = max(gap.start, self.low + 1)
            if start > gap.end:
                continue
            if windows and (start - windows[-1][1] <= merge or len(windows) >= most):
                windows[-1][1] = gap.end
            else:
                windows.append([start, gap.end])
        return [(start - 1, end + 1) for start, end in windows]

    def position(self) -> Position:
        """The ids fanned out so far."""
        return Position(self.low, self.high, frozenset(self.seen))


class Slots:
    """At most ``size`` holders at once; the others wait in turn (FIFO).

    Args:
        size: holders at once.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        """Holders now."""
        self.waiting = 0
        """Callers waiting for a slot now."""
        self._semaphore = asyncio.Semaphore(size)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold a slot for the ``async with`` block (waiting for one first)."""
        self.waiting += 1
        try:
            await self._semaphore.acquire()
        finally:
            self.waiting -= 1
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
            self._semaphore.release()


class Client(Protocol):
    """What the hub needs of a subscriber (the WebSocket's ``stream.Subscriber``)."""

    capacity: int
    dropped: int

    def deliver(self, row: Row) -> None:
        """Queue ``row`` if the client's role and filter allow it; never blocks."""

    def close(self, code: int = 1000) -> None:
        """End the client's stream (the connection closes with ``code``)."""


class Hub:
    """Reads new rows once and offers them to every subscriber.

    Args:
        store: returns the store (called at each read).
        loop: the event loop the subscribers live in.
        poll: seconds between two reads when nobody wakes the hub.
        batch: rows per ``tail`` call.
        gap_seconds: see :class:`IdTracker`.
        watch: returns a mark of the token file (called in a worker thread every
            :data:`TOKEN_CHECK_SECONDS`); when it changes, every subscriber that has a
            ``revalidate()`` method (never blocking) has it called: it re-checks its token.
    """

    def __init__(
        self,
        store: Callable[[], LogStore],
        loop: asyncio.AbstractEventLoop,
        *,
        poll: float = POLL_SECONDS,
        batch: int = TAIL_BATCH,
        gap_seconds: float = GAP_SECONDS,
        watch: Callable[[], object] | None = None,
    ) -> None:
        self.loop = loop
        self.poll = poll
        self.batch = batch
        self.subscribers: set[Client] = set()
        self.tracker = IdTracker(0, gap_seconds)
        self.stopped = False
        self.ready = asyncio.Event()
        self.backfills = Slots(MAX_BACKFILLS)
        """The resumes reading the store now (see :data:`MAX_BACKFILLS`)."""
        self._watch = watch
        self._watch_mark: object = None
        self._watch_due = 0.0
        self._store = store
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="plexichat-live-tail")
        self._busy = threading.Lock()  # held by the worker while it reads the store

    def store(self) -> LogStore:
        """The store (refused once the hub stopped: the server is closing it)."""
        if self.stopped:
            raise RuntimeError("the live tail has stopped: the log server is shutting down")
        return self._store()

    async def start(self) -> None:
        """Start at the newest stored row and run the reader task."""
        store = self.store()
        await self._prime(store, await self._call(store.last_id))
        if self._watch is not None:
            self._watch_mark = await self._call(self._watch)
            self._watch_due = time.monotonic() + TOKEN_CHECK_SECONDS
        self._task = self.loop.create_task(self._run(), name="plexichat-live-tail-hub")
        self.ready.set()

    def wake(self, batch: object = None) -> None:
        """Read now (thread-safe: the indexer thread calls it after each stored batch)."""
        if self.stopped:
            return
        try:
            self.loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the loop is closed: nothing to wake
            pass

    def subscribe(self, subscriber: Client) -> Position:
        """Add a subscriber; returns the rows already fanned out (what a backfill covers)."""
        self.subscribers.add(subscriber)
        self._wake.set()
        return self.tracker.position()

    def unsubscribe(self, subscriber: Client) -> None:
        """Remove a subscriber (idempotent)."""
        self.subscribers.discard(subscriber)

    def _halted(self) -> bool:
        return self.stopped  # a call: mypy keeps no narrowing of it across awaits

    async def _call(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await self.loop.run_in_executor(self._executor, self._work, fn, args)

    def _work(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        with self._busy:
            self.store()  # refuses once stopped: the store may be closed
            return fn(*args)

    async def _run(self) -> None:
        failures = 0
        while not self.stopped:
            timer = False
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll)
            except TimeoutError:
                timer = True
            self._wake.clear()
            try:
                await self._check_watch()
                await self._read(timer)
                failures = 0
            except Exception as exc:  # noqa: BLE001 - the hub never raises into the server
                if self._halted():
                    return
                failures += 1
                error_reporter.report(
                    "live-tail", f"live tail: reading new records failed: {exc!r}"
                )
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))

    async def _check_watch(self) -> None:
        """Every :data:`TOKEN_CHECK_SECONDS`: when the token file changed, every
        subscriber re-checks its token."""
        now = time.monotonic()
        if self._watch is None or now < self._watch_due:
            return
        self._watch_due = now + TOKEN_CHECK_SECONDS
        mark = await self._call(self._watch)
        if mark != self._watch_mark:
            self._watch_mark = mark
            for subscriber in list(self.subscribers):
                revalidate = getattr(subscriber, "revalidate", None)
                if revalidate is not None:
                    revalidate()

    async def _prime(self, store: LogStore, last: int) -> None:
        """Start at ``last``; ids missing among the :data:`PRIME_IDS` below it are waited
        for like any gap (a transaction that began earlier may still commit them)."""
        low = max(0, last - PRIME_IDS)
        present = await self._call(row_ids, store, low, PRIME_IDS, last + 1)
        self.tracker.reset(last, present, time.monotonic())

    async def _read(self, timer: bool) -> None:
        store = self.store()
        tracker = self.tracker
        if timer:
            last = await self._call(store.last_id)
            if last < tracker.low:  # the store was cleared: start over at its end
                await self._prime(store, last)
        for after, before in tracker.gap_windows():
            while after < before - 1 and not self.stopped:
                count, after = await self._step(store, after, before)
                if count < self.batch:
                    break
        while not self.stopped:
            count, _ = await self._step(store, tracker.high, None)
            tracker.advance(time.monotonic())
            if count < self.batch:
                return

    async def _step(self, store: LogStore, after: int, before: int | None) -> tuple[int, int]:
        """Read one batch and fan it out (only its ids when nobody listens: nothing to
        parse); returns the rows read and the last id."""
        while True:
            if self.subscribers:
                rows = await self._call(fetch_rows, store, after, self.batch, before)
                await self._fan_out(rows)
                return len(rows), rows[-1].id if rows else after
            ids = await self._call(row_ids, store, after, self.batch, before)
            if self.subscribers:  # someone joined meanwhile: read these rows for them
                continue
            now = time.monotonic()
            for row_id in ids:
                self.tracker.accept(row_id, now)
            return len(ids), ids[-1] if ids else after

    async def _fan_out(self, rows: list[Row]) -> None:
        """Offer rows in steps of half the smallest queue (in records, and in characters
        for subscribers with a ``max_bytes`` budget), yielding between steps: the senders
        of clients that keep up empty their queues before the next step."""
        subscribers = list(self.subscribers)
        step = max(1, min((s.capacity for s in subscribers), default=len(rows)) // 2)
        budgets = (getattr(s, "max_bytes", None) for s in subscribers)
        step_chars = min((b for b in budgets if isinstance(b, int)), default=0) // 2
        count = chars = 0
        now = time.monotonic()
        for row in rows:
            if count >= step or (step_chars and chars >= step_chars):
                await asyncio.sleep(0)
                count = chars = 0
                now = time.monotonic()
                subscribers = list(self.subscribers)
            count += 1
            chars += len(row.text)
            if not self.tracker.accept(row.id, now):
                continue
            for subscriber in subscribers:
                try:
                    subscriber.deliver(row)
                except Exception as exc:  # noqa: BLE001 - one bad filter never stops the rest
                    report = f"live tail filter failed: {exc!r}"
                    error_reporter.report("live-tail-filter", report)
                    subscriber.close(1011)

    def stop(self) -> None:
        """Stop reading and close every subscriber (idempotent, any thread)."""
        if self.stopped:
            return
        self.stopped = True
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._shutdown()
        else:
            try:
                self.loop.call_soon_threadsafe(self._shutdown)
            except RuntimeError:  # the loop is closed
                pass
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._busy.acquire(timeout=5.0):  # a read in flight ends before the store closes
            self._busy.release()

    def _shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for subscriber in list(self.subscribers):
            subscriber.close(1001)


async def get_hub(state: ServerState) -> Hub:
    """The hub of ``state``, made and started on first use (in the running loop)."""
    loop = asyncio.get_running_loop()
    hub = state.extras.get(HUB_KEY)
    if isinstance(hub, Hub) and not hub.stopped and hub.loop is loop:
        await hub.ready.wait()
        if hub.stopped:
            raise RuntimeError("the live tail could not start; see the error above")
        return hub
    if isinstance(hub, Hub):  # made in a loop that is gone (a test client's)
        hub.stop()
        state.remove_listener(hub.wake)
    path = state.tokens.path
    hub = Hub(lambda: state.store, loop, watch=lambda: token_file_mark(path))
    state.extras[HUB_KEY] = hub
    state.add_listener(hub.wake)
    state.on_close(hub.stop)
    try:
        await hub.start()
    except BaseException:
        hub.stop()
        hub.ready.set()
        state.extras.pop(HUB_KEY, None)
        raise
    return hub
