"""The two file sinks (synchronous and non-blocking) that drive a :class:`SegmentWriter`.

The writer itself (segments, rotation, sealing, failure handling) is in :mod:`.writer`.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any

from .._core.errors import error_reporter
from .._core.levels import SECURITY, level_name
from .writer import SegmentWriter

__all__ = ["AsyncFileSink", "SegmentWriter", "SyncFileSink"]

_LIVE_SINKS: weakref.WeakSet[_FileSinkBase] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_LIVE_SINKS):
        sink._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

Item = tuple[int, bytes]
TICK = 1.0
"""Longest time between two checkpoint checks of a sealed stream."""


class _Marker:
    """A flush request travelling through the queue: set when the writer passes it."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class _Wake:
    """A ``threading.Event`` whose ``set`` is re-entrant: a signal handler that logs while
    this thread is inside ``set`` (holding the condition's lock) must not deadlock, so the
    condition uses an RLock (``threading.Event`` uses a plain Lock)."""

    __slots__ = ("_cond", "_flag")

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._flag = False

    def set(self) -> None:
        """Wake the waiter."""
        with self._cond:
            self._flag = True
            self._cond.notify_all()

    def clear(self) -> None:
        """Reset the flag."""
        self._flag = False

    def wait(self, timeout: float | None) -> bool:
        """Wait until set or ``timeout``; True when set."""
        with self._cond:
            if not self._flag:
                self._cond.wait(timeout)
            return self._flag


class _FileSinkBase:
    """What both file sinks share: a writer, a level, and forwarding after close.

    A record can reach a sink just after a reconfiguration closed it (the logging call had
    already picked the old sinks). Such late records go to ``successor``, the sink that
    replaced this one, so reconfiguring never loses them.
    """

    needs_bytes = True

    def __init__(self, writer: SegmentWriter, level: int) -> None:
        self.writer = writer
        self.level = level
        self.successor: Any = None
        self._closed = False
        _LIVE_SINKS.add(self)

    def _after_fork(self) -> None:
        """In a forked child: a stream of its own (the parent's file is the parent's)."""
        self.writer.detach_after_fork()

    def _late(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        successor = self.successor
        if successor is not None:
            successor.write(levelno, event, data)
        else:
            error_reporter.report(
                "closed-sink", "a record arrived after logging was shut down; it was not written"
            )


class SyncFileSink(_FileSinkBase):
    """Writes each record to the OS before the logging call returns (survives ``kill -9``).

    Signal-safe: a signal handler that logs while this thread is inside the writer (the
    lock is re-entrant, so it does not deadlock) never enters the writer a second time, which
    would corrupt the integrity chain. Its record waits in ``_reentered`` and the outer call
    writes it right after its own, in order.
    """

    def __init__(self, writer: SegmentWriter, level: int = 0) -> None:
        self._lock = threading.RLock()
        self._busy = False
        """True while the lock's owner is inside the writer (only the owner reads it)."""
        self._reentered: deque[tuple[int, Mapping[str, Any], bytes]] = deque()
        self._shut = False
        super().__init__(writer, level)
        self._start_ticker()

    def _start_ticker(self) -> None:
        """Sealed streams need checkpoints on time even when nobody logs: a small thread
        asks the writer every second (under the sink's lock)."""
        self._stop = threading.Event()
        if self.writer.integrity is None:
            return
        interval = min(TICK, self.writer.integrity.checkpoint_interval / 2)
        thread = threading.Thread(
            target=self._tick_loop, args=(interval,), name="plexichat-log-sealer", daemon=True
        )
        thread.start()

    def _tick_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    if self._closed:
                        return
                    self._busy = True
                    try:
                        self.writer.tick()
                    finally:
                        self._leave()
            except Exception as exc:  # noqa: BLE001 - the ticker must survive
                error_reporter.report("writer", f"log sealer error: {exc!r}")

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        """Write one serialized event."""
        with self._lock:
            if self._busy:  # a signal handler on this thread, inside our own write
                self._reentered.append((levelno, event, data))
                return
            if not self._closed:
                self._busy = True
                try:
                    self.writer.write_one(levelno, data)
                finally:
                    self._busy = False  # then look: a record queued after this writes itself
                    if self._reentered or self._closed:
                        self._busy = True
                        self._leave()
                return
        self._late(levelno, event, data)

    def _leave(self) -> None:
        """Write what signal handlers logged meanwhile (and close the writer when one of
        them closed the sink), then clear ``_busy``; the caller holds the lock.

        The loop re-checks after clearing: a record queued between the last write and the
        clearing is still written here, and one logged after it writes itself.
        """
        queue = self._reentered
        try:
            while True:
                while queue:
                    levelno, event, data = queue.popleft()
                    try:
                        if self._closed:
                            self._late(levelno, event, data)
                        else:
                            self.writer.write_one(levelno, data)
                    except Exception as exc:  # noqa: BLE001 - the next ones still go
                        error_reporter.report("writer", f"log writer error: {exc!r}")
                if self._closed and not self._shut:
                    self._shut = True
                    try:
                        self.writer.close()
                    except Exception as exc:  # noqa: BLE001
                        error_reporter.report("close", f"could not close a log sink: {exc!r}")
                self._busy = False
                if not queue:
                    return
                self._busy = True
        finally:
            self._busy = False  # even on KeyboardInterrupt: never leave the sink stuck

    def flush(self, timeout: float | None = None) -> bool:
        """Retry anything a failed write left buffered; True when nothing is left."""
        with self._lock:
            if self._busy:  # called from a signal handler mid-write: the outer call flushes
                return False
            self._busy = True
            try:
                return self.writer.flush_pending()
            finally:
                self._leave()

    def close(self, timeout: float | None = None, successor: Any = None) -> None:
        """Close the current segment; later records go to ``successor``."""
        self._stop.set()
        with self._lock:
            self.successor = successor
            self._closed = True
            if self._busy:  # from a signal handler mid-write: the outer call closes
                return
            self._busy = True
            self._leave()

    def stats(self) -> dict[str, Any]:
        """The writer's counters (queue depth is always 0)."""
        with self._lock:
            return {**self.writer.stats(), "queue_depth": 0, "queue_capacity": 0, "mode": "sync"}

    def _after_fork(self) -> None:
        self._lock = threading.RLock()
        self._busy = False
        self._reentered = deque()  # the parent's records: the parent writes them
        super()._after_fork()
        if not self._closed:
            self._start_ticker()


class AsyncFileSink(_FileSinkBase):
    """Puts serialized events on a bounded queue; one writer thread writes them in batches.

    When the queue is full, records below SECURITY are dropped and counted; SECURITY and
    AUDIT records wait for room. The writer wakes every ``flush_interval`` seconds, when the
    queue reaches a watermark, for SECURITY/AUDIT records and on :meth:`flush`.
    """

    def __init__(
        self,
        writer: SegmentWriter,
        level: int = 0,
        *,
        capacity: int = 10_000,
        flush_interval: float = 1.0,
    ) -> None:
        self.capacity = capacity
        self.flush_interval = flush_interval
        self._watermark = max(1, min(512, capacity // 8))
        super().__init__(writer, level)
        self._setup()

    def _setup(self) -> None:
        self._queue: deque[tuple[int, Any]] = deque()
        self._wake = _Wake()  # set from the logging call: re-entrant (signal handlers)
        self._signalled = False
        self._drop_lock = threading.RLock()  # taken on the logging call: re-entrant too
        self._write_lock = threading.Lock()
        self.dropped: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name="plexichat-log-writer", daemon=True)
        self._thread.start()

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        """Queue one serialized event (never blocks below SECURITY)."""
        queue = self._queue
        if self._closed:
            self._late(levelno, event, data)
            return
        if len(queue) >= self.capacity:
            self._full(levelno, event, data)
            return
        queue.append((levelno, data))
        if self._closed:  # another thread closed us meanwhile: hand the queue over
            self._forward_queue()  # type: ignore[unreachable]
            return
        if levelno >= SECURITY or (len(queue) >= self._watermark and not self._signalled):
            self._signalled = True
            self._wake.set()

    def _full(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        self._wake.set()
        if levelno < SECURITY:
            with self._drop_lock:
                self.dropped[levelno] = self.dropped.get(levelno, 0) + 1
            error_reporter.report(
                "queue-full",
                f"the log queue is full (queue_size={self.capacity}): records below SECURITY"
                " are dropped and counted in get_logging_stats()['dropped'] until the writer"
                " catches up; raise queue_size (PLEXICHAT_LOG_QUEUE_SIZE) or log less",
            )
            return
        while len(self._queue) >= self.capacity:
            if self._closed:
                self._late(levelno, event, data)
                return
            if not self._thread.is_alive():
                with self._write_lock:
                    self.writer.write_batch([(levelno, data)])
                return
            time.sleep(0.0005)
        self._queue.append((levelno, data))
        self._wake.set()

    def _run(self) -> None:
        queue = self._queue
        wake = self._wake
        wait = self.flush_interval
        if self.writer.integrity is not None:  # checkpoints are due on time
            wait = min(wait, TICK, self.writer.integrity.checkpoint_interval / 2)
        while True:
            wake.wait(wait)
            wake.clear()
            self._signalled = False
            stop = self._closed
            try:
                with self._write_lock:
                    self._drain(queue)
            except Exception as exc:  # noqa: BLE001 - the writer thread must survive
                error_reporter.report("writer", f"log writer error: {exc!r}")
            if stop:
                return

    def _drain(self, queue: deque[tuple[int, Any]]) -> None:
        """Write everything queued; the caller holds ``_write_lock``."""
        batch: list[Item] = []
        popleft = queue.popleft
        writer = self.writer
        while queue:
            levelno, data = popleft()
            if levelno < 0:  # a flush marker
                writer.write_batch(batch)
                batch = []
                data.ok = writer.flush_pending()
                data.done.set()
                continue
            batch.append((levelno, data))
            if len(batch) >= 4096:
                writer.write_batch(batch)
                batch = []
        writer.write_batch(batch)
        if writer.pending:
            writer.flush_pending()
        writer.tick()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything queued before this call is written.

        Returns False on timeout, or when records are still held back because writing
        fails (they are retried every second).
        """
        if self._closed:
            self._forward_queue()
            successor = self.successor
            return bool(successor.flush(timeout)) if successor is not None else True
        if not self._thread.is_alive():
            with self._write_lock:
                self._drain(self._queue)
                return self.writer.pending == 0
        marker = _Marker()
        self._queue.append((-1, marker))
        self._wake.set()
        return marker.done.wait(timeout) and marker.ok

    def close(self, timeout: float | None = 5.0, successor: Any = None) -> None:
        """Write everything queued, stop the writer thread and close the segment.

        Records that arrive afterwards go to ``successor`` (the sink that replaced this one).
        """
        self.successor = successor
        self._closed = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._write_lock:
            self._drain(self._queue)
            self.writer.close()

    def _forward_queue(self) -> None:
        """After close: pass what is queued to the successor (pops are atomic: each record
        goes exactly once, whoever pops it)."""
        queue = self._queue
        while True:
            try:
                levelno, data = queue.popleft()
            except IndexError:
                return
            if levelno < 0:
                successor = self.successor
                data.ok = successor.flush(5.0) if successor is not None else True
                data.done.set()
            else:
                self._late(levelno, {}, data)

    def stats(self) -> dict[str, Any]:
        """The writer's counters plus queue depth and queue drops."""
        stats = self.writer.stats()
        dropped = dict(stats["dropped"])
        with self._drop_lock:
            for levelno, count in self.dropped.items():
                name = level_name(levelno)
                dropped[name] = dropped.get(name, 0) + count
        stats.update(
            dropped=dropped,
            queue_depth=len(self._queue),
            queue_capacity=self.capacity,
            mode="non-blocking",
        )
        return stats

    def _after_fork(self) -> None:
        # The inherited queue holds the parent's records: the parent writes them, not us.
        super()._after_fork()
        if not self._closed:
            self._setup()
