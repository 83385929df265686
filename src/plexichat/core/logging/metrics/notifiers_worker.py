"""Background workers for notifications: a bounded queue per worker, retries with backoff.

Submitting never blocks: a full queue drops the item and counts it. A worker's thread starts
on the first item and ends on :meth:`Worker.stop`; a later item starts it again (also when a
stop timed out on a blocked item and the thread ended later, or the thread died).

After ``fork()`` every worker in the child starts afresh: an empty queue (the parent delivers
what it had queued), a new lock, and a thread started by the child's first item.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .._core.errors import error_reporter

__all__ = ["DeliveryError", "RetryingSender", "Worker"]

T = TypeVar("T")


class DeliveryError(Exception):
    """A notification could not be delivered.

    Attributes:
        retry: whether trying again may help (False for a rejected request).
    """

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Worker(Generic[T]):
    """Runs ``handle(item)`` for each submitted item on one daemon thread, in order.

    Args:
        name: the thread's name.
        handle: called with each item; an exception it raises is reported, never raised.
        capacity: the most items waiting; more are dropped and counted in :attr:`dropped`.
    """

    def __init__(self, name: str, handle: Callable[[T], object], capacity: int = 1000) -> None:
        self.name = name
        self._handle = handle
        self.capacity = capacity
        self._items: deque[T] = deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        self.abort = threading.Event()
        """Set while stopping: long waits (retry backoff) end early."""
        self.dropped = 0
        self.handled = 0
        _workers.add(self)

    def _after_fork_in_child(self) -> None:
        """Start afresh in a forked child: the parent's thread does not exist here, its lock
        may have been held at the fork, and the parent delivers the items it had queued."""
        self._cv = threading.Condition()
        self._items = deque()
        self._thread = None
        self._stopping = False
        self._busy = False
        self.abort = threading.Event()

    def submit(self, item: T) -> bool:
        """Queue ``item``; False (counted, reported once) when the queue is full."""
        with self._cv:
            if len(self._items) >= self.capacity:
                self.dropped += 1
                full = True
            else:
                full = False
                self._items.append(item)
                thread = self._thread
                if thread is None or not thread.is_alive():
                    self._stopping = False
                    self.abort.clear()
                    self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                    self._thread.start()
                self._cv.notify()
        if full:
            error_reporter.report(
                f"{self.name}-full",
                f"{self.name}: queue full ({self.capacity} waiting), notification dropped",
            )
        return not full

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._items and not self._stopping:
                    self._cv.wait()
                if not self._items:
                    if self._thread is threading.current_thread():
                        self._thread = None  # a stop that timed out left them set
                        self._stopping = False
                    return
                item = self._items.popleft()
                self._busy = True
            try:
                self._handle(item)
            except Exception as exc:  # noqa: BLE001 - a notification never kills the worker
                error_reporter.report(self.name, f"{self.name} failed: {exc!r}")
            finally:
                with self._cv:
                    self._busy = False
                    self.handled += 1
                    self._cv.notify_all()

    @property
    def pending(self) -> int:
        """Items waiting or being handled."""
        with self._cv:
            return len(self._items) + self._busy

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every submitted item was handled; False on timeout."""
        with self._cv:
            return self._cv.wait_for(lambda: not self._items and not self._busy, timeout)

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Handle what is queued (retries end early), end the thread and wait for it.

        Returns:
            False when the thread did not end within ``timeout``.
        """
        with self._cv:
            thread = self._thread
            if thread is None:
                return True
            self._stopping = True
            self.abort.set()
            self._cv.notify_all()
        thread.join(timeout)
        with self._cv:
            if thread.is_alive():
                return False
            self._thread = None
            self._stopping = False
            return True


_workers: weakref.WeakSet[Worker[Any]] = weakref.WeakSet()
"""Every live worker, reset in a forked child."""


def _reset_workers_after_fork() -> None:
    for worker in list(_workers):
        worker._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_workers_after_fork)


class RetryingSender(Generic[T]):
    """Delivers items with ``send(item)`` on its own thread, retrying with backoff.

    A failure is reported once per outage (on stderr and as a log record, without secrets);
    the first success afterwards reports the recovery. An item that still fails after
    ``attempts`` tries, or that ``send`` rejects as not retryable, is counted in
    :attr:`failed`.

    Args:
        name: the channel (``"email"``, ``"webhook"``): names the thread and the reports.
        send: delivers one item or raises (:class:`DeliveryError` to say whether to retry).
        attempts: tries per item (>= 1).
        backoff: seconds before the first retry; doubled after each failure.
        max_backoff: the longest wait between two tries.
        capacity: the most items waiting.
        on_outage: called with a description when an outage starts, and with None when it
            ends (the notifiers log these).
    """

    def __init__(
        self,
        name: str,
        send: Callable[[T], object],
        *,
        attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        capacity: int = 100,
        on_outage: Callable[[str, str | None], object] | None = None,
    ) -> None:
        if attempts < 1 or backoff < 0 or max_backoff < 0:
            raise ValueError(
                f"invalid retry policy attempts={attempts!r} backoff={backoff!r} "
                f"max_backoff={max_backoff!r}: attempts >= 1 and waits >= 0"
            )
        self.name = name
        self._send = send
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._on_outage = on_outage
        self.worker: Worker[T] = Worker(f"plexichat-alerts-{name}", self._deliver, capacity)
        self.sent = 0
        self.failed = 0
        self.retries = 0
        self.outage = False

    def submit(self, item: T) -> bool:
        """Queue ``item`` for delivery; never blocks (False when the queue is full)."""
        return self.worker.submit(item)

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until every queued item was delivered or given up."""
        return self.worker.flush(timeout)

    def stop(self, timeout: float | None = 5.0) -> bool:
        """Stop the thread; retries still waiting are given up."""
        return self.worker.stop(timeout)

    def _deliver(self, item: T) -> None:
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                self._send(item)
            except Exception as exc:  # noqa: BLE001 - every failure is retried or counted
                retry = getattr(exc, "retry", True) and attempt < self.attempts
                self._failed(exc)
                if not retry or self.worker.abort.wait(delay):
                    self.failed += 1
                    return
                self.retries += 1
                delay = min(delay * 2, self.max_backoff)
                continue
            self.sent += 1
            if self.outage:
                self.outage = False
                kind = f"alerts-{self.name}"
                error_reporter.resolved(kind, f"alert {self.name} delivery works again")
                if self._on_outage is not None:
                    self._on_outage(self.name, None)
            return

    def _failed(self, exc: Exception) -> None:
        why = str(exc) if isinstance(exc, DeliveryError) else type(exc).__name__
        error_reporter.report(
            f"alerts-{self.name}",
            f"alert {self.name} delivery failed: {why}; retrying with backoff "
            "(reported once until it works again)",
        )
        if not self.outage:
            self.outage = True
            if self._on_outage is not None:
                self._on_outage(self.name, why)
