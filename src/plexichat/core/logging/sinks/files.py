"""The segment writer and the two file sinks that drive it (synchronous and non-blocking).

The writer is single-threaded by contract: the synchronous sink calls it under a lock, the
non-blocking sink only from its writer thread. It appends ``"stream"`` and ``"seq"`` to each
serialized event (the bytes are spliced, never re-serialized), writes whole batches with
``os.write`` and rotates by size and time. When writing fails (directory gone or
unwritable, disk full) records wait in a bounded buffer, one message goes to stderr, and
writing resumes by itself when it works again.
"""

from __future__ import annotations

import errno
import os
import threading
import time
import weakref
from collections import Counter, deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._core.errors import error_reporter
from .._core.levels import SECURITY, level_name
from .segments import new_stream_id, segment_name

__all__ = ["AsyncFileSink", "SegmentWriter", "SyncFileSink"]

_LIVE_SINKS: weakref.WeakSet[SyncFileSink | AsyncFileSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_LIVE_SINKS):
        sink._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)

Item = tuple[int, bytes]
RETRY_INTERVAL = 1.0
_NEVER = float("inf")
PENDING_LIMIT = 16 * 1024 * 1024


class SegmentWriter:
    """Writes one stream of segment files in a directory. Not thread-safe: one caller at a time."""

    def __init__(
        self,
        directory: Path,
        *,
        prefix: str = "plexichat",
        rotation_size: int | None = None,
        rotation_interval: float | None = None,
        on_rotate: Callable[[Path], None] | None = None,
        file_mode: int = 0o640,
        structured: bool = True,
    ) -> None:
        self.directory = Path(directory)
        self.structured = structured
        self.prefix = prefix
        self.rotation_size = rotation_size
        self.rotation_interval = rotation_interval
        self.on_rotate = on_rotate
        self.file_mode = file_mode
        self.stream = new_stream_id()
        self._suffix = f',"stream":"{self.stream}","seq":'.encode()
        self.seq = 0
        self.index = 0
        self.path: Path | None = None
        self._fd = -1
        self._size = 0
        self._deadline = _NEVER
        self._pending: deque[Item] = deque()
        self._pending_bytes = 0
        self._retry_at = 0.0
        self.written: dict[int, int] = {}
        self.dropped: dict[int, int] = {}
        self.bytes_written = 0
        self.rotations = 0
        self.failures = 0

    # --- public --------------------------------------------------------------------------

    def write_batch(self, items: list[Item]) -> None:
        """Append serialized events (``(levelno, json_bytes)``) to the stream, in order."""
        if not items:
            return
        suffix = self._suffix
        seq = self.seq
        lines: list[Item]
        if self.structured:
            lines = [
                (levelno, b"%b%b%d}\n" % (data[:-1], suffix, n))
                for n, (levelno, data) in enumerate(items, seq + 1)
            ]
        else:
            lines = [(levelno, data + b"\n") for levelno, data in items]
        self.seq = seq + len(items)
        if self._pending:
            self._pending.extend(lines)
            self._pending_bytes += sum(len(line) for _, line in lines)
            if time.monotonic() < self._retry_at:
                self._trim_pending()
                return
            lines = list(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
        self._write_lines(lines)

    def write_one(self, levelno: int, data: bytes) -> None:
        """Append one serialized event: :meth:`write_batch` for a single record, minus the
        batch machinery (the synchronous sink's path)."""
        fd = self._fd
        if fd < 0 or self._pending or not self.structured:
            self.write_batch([(levelno, data)])
            return
        seq = self.seq + 1
        line = b"%b%b%d}\n" % (data[:-1], self._suffix, seq)
        size = self._size + len(line)
        limit = self.rotation_size
        if (limit is not None and size > limit) or (
            self._deadline != _NEVER and time.time() >= self._deadline
        ):
            self.write_batch([(levelno, data)])
            return
        try:
            done = os.write(fd, line)
        except OSError:
            self.write_batch([(levelno, data)])  # nothing was written: the batch path copes
            return
        self.seq = seq
        self._size += done
        self.bytes_written += done
        if done < len(line):  # a short write (disk filling up): finish it the careful way
            self._write_lines([(levelno, line[done:])])
        else:
            self.written[levelno] = self.written.get(levelno, 0) + 1
            if self.failures:
                self._recovered()

    def flush_pending(self) -> bool:
        """Try to write what earlier failures left buffered; True when nothing is left."""
        if self._pending and time.monotonic() >= self._retry_at:
            lines = list(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            self._write_lines(lines)
        return not self._pending

    @property
    def pending(self) -> int:
        """Records waiting because writing failed."""
        return len(self._pending)

    def close(self) -> None:
        """Write what can be written and close the current segment."""
        self._retry_at = 0.0
        self.flush_pending()
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1

    def detach_after_fork(self) -> None:
        """In a forked child: forget the parent's file and start a new stream of our own."""
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self.__init__(  # type: ignore[misc]
            self.directory,
            prefix=self.prefix,
            rotation_size=self.rotation_size,
            rotation_interval=self.rotation_interval,
            on_rotate=self.on_rotate,
            file_mode=self.file_mode,
            structured=self.structured,
        )

    # --- internals -----------------------------------------------------------------------

    def _write_lines(self, lines: list[Item]) -> None:
        limit = self.rotation_size
        start = 0
        try:
            if self._fd < 0:
                self._open()
            elif time.time() >= self._deadline:
                self._rotate()
            size = self._size
            if limit is None or size + sum(len(line) for _, line in lines) <= limit:
                self._write_buf([line for _, line in lines], lines, 0, len(lines))
                return
            buf: list[bytes] = []
            for i, (_, line) in enumerate(lines):
                n = len(line)
                if limit is not None and size and size + n > limit:
                    self._write_buf(buf, lines, start, i)
                    start = i
                    buf = []
                    self._rotate()
                    size = 0
                buf.append(line)
                size += n
            self._write_buf(buf, lines, start, len(lines))
        except OSError as exc:
            self._failed(exc, lines, start)

    def _write_buf(self, buf: list[bytes], lines: list[Item], start: int, end: int) -> None:
        if not buf:
            return
        data = b"".join(buf) if len(buf) > 1 else buf[0]
        view = memoryview(data)
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            # Keep exactly the bytes not yet written: the torn line completes on retry.
            exc.plexi_done = done  # type: ignore[attr-defined]
            raise
        finally:
            self._size += done
            self.bytes_written += done
        counts = self.written
        for levelno, count in Counter(levelno for levelno, _ in lines[start:end]).items():
            counts[levelno] = counts.get(levelno, 0) + count
        if self.failures:
            self._recovered()

    def _failed(self, exc: OSError, lines: list[Item], start: int) -> None:
        done = getattr(exc, "plexi_done", 0)
        rest = lines[start:]
        if done and rest:
            # Drop the part of a line (or lines) that did reach the file.
            skip = done
            while rest and skip >= len(rest[0][1]):
                skip -= len(rest[0][1])
                lvl = rest[0][0]
                self.written[lvl] = self.written.get(lvl, 0) + 1
                rest = rest[1:]
            if rest and skip:
                rest = [(rest[0][0], rest[0][1][skip:]), *rest[1:]]
        self._pending.extendleft(reversed(rest))
        self._pending_bytes += sum(len(line) for _, line in rest)
        self._trim_pending()
        self.failures += 1
        self._retry_at = time.monotonic() + RETRY_INTERVAL
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) and self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = -1
        where = self.path or self.directory
        error_reporter.report(
            "file-write",
            f"cannot write log file {where}: {exc.strerror or exc}. Console logging continues;"
            f" up to {PENDING_LIMIT // (1024 * 1024)} MiB of records are kept and written when"
            " it works again (retrying every second).",
        )

    def _recovered(self) -> None:
        self.failures = 0
        lost = sum(self.dropped.values())
        error_reporter.resolved(
            "file-write",
            f"writing log file {self.path} works again"
            + (f"; {lost} records were dropped while it failed" if lost else ""),
        )

    def _trim_pending(self) -> None:
        if self._pending_bytes <= PENDING_LIMIT:
            return
        kept: deque[Item] = deque()
        # Drop the oldest non-security records first; SECURITY/AUDIT are dropped last.
        for levelno, line in self._pending:
            if self._pending_bytes > PENDING_LIMIT and levelno < SECURITY:
                self._pending_bytes -= len(line)
                self.dropped[levelno] = self.dropped.get(levelno, 0) + 1
            else:
                kept.append((levelno, line))
        while self._pending_bytes > PENDING_LIMIT and kept:
            levelno, line = kept.popleft()
            self._pending_bytes -= len(line)
            self.dropped[levelno] = self.dropped.get(levelno, 0) + 1
        self._pending = kept

    def _open(self) -> None:
        if self.path is None:
            self.index += 1
            self.path = self.directory / segment_name(
                self.prefix, self.stream, self.index, "jsonl" if self.structured else "log"
            )
            self._size = 0
            self._deadline = (
                time.time() + self.rotation_interval if self.rotation_interval else _NEVER
            )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        self._fd = os.open(
            self.path,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
            self.file_mode,
        )

    def _rotate(self) -> None:
        old = self.path
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.path = None
        self._open()
        self.rotations += 1
        if old is not None and self.on_rotate is not None:
            try:
                self.on_rotate(old)
            except Exception as exc:  # noqa: BLE001
                error_reporter.report("rotate-hook", f"after rotating {old}: {exc!r}")

    def stats(self) -> dict[str, Any]:
        """Counters: records written and dropped per level, bytes, rotations, pending."""
        return {
            "stream": self.stream,
            "segment": str(self.path) if self.path else None,
            "written": {level_name(k): v for k, v in sorted(self.written.items())},
            "dropped": {level_name(k): v for k, v in sorted(self.dropped.items())},
            "bytes_written": self.bytes_written,
            "rotations": self.rotations,
            "pending": len(self._pending),
        }


class SyncFileSink:
    """Writes each record to the OS before the logging call returns (survives ``kill -9``)."""

    needs_bytes = True

    def __init__(self, writer: SegmentWriter, level: int = 0) -> None:
        self.writer = writer
        self.level = level
        self._lock = threading.Lock()
        _LIVE_SINKS.add(self)

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        """Write one serialized event."""
        with self._lock:
            self.writer.write_one(levelno, data)

    def flush(self, timeout: float | None = None) -> bool:
        """Retry anything a failed write left buffered."""
        with self._lock:
            return self.writer.flush_pending()

    def close(self, timeout: float | None = None) -> None:
        """Close the current segment."""
        with self._lock:
            self.writer.close()

    def stats(self) -> dict[str, Any]:
        """The writer's counters (queue depth is always 0)."""
        with self._lock:
            return {**self.writer.stats(), "queue_depth": 0, "queue_capacity": 0, "mode": "sync"}

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self.writer.detach_after_fork()


class AsyncFileSink:
    """Puts serialized events on a bounded queue; one writer thread writes them in batches.

    When the queue is full, records below SECURITY are dropped and counted; SECURITY and
    AUDIT records wait for room. The writer wakes every ``flush_interval`` seconds, when the
    queue passes a watermark, for SECURITY/AUDIT records and on :meth:`flush`.
    """

    needs_bytes = True

    def __init__(
        self,
        writer: SegmentWriter,
        level: int = 0,
        *,
        capacity: int = 10_000,
        flush_interval: float = 1.0,
    ) -> None:
        self.writer = writer
        self.level = level
        self.capacity = capacity
        self.flush_interval = flush_interval
        self._watermark = max(1, min(512, capacity // 8))
        self._closed = False
        self._setup()
        _LIVE_SINKS.add(self)

    def _setup(self) -> None:
        self._queue: deque[tuple[int, Any]] = deque()
        self._wake = threading.Event()
        self._drop_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.dropped: dict[int, int] = {}
        self._thread = threading.Thread(target=self._run, name="plexichat-log-writer", daemon=True)
        self._thread.start()

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        """Queue one serialized event (never blocks below SECURITY)."""
        queue = self._queue
        if len(queue) >= self.capacity:
            self._full(levelno, data)
            return
        queue.append((levelno, data))
        if levelno >= SECURITY or len(queue) == self._watermark:
            self._wake.set()

    def _full(self, levelno: int, data: bytes) -> None:
        if levelno < SECURITY:
            with self._drop_lock:
                self.dropped[levelno] = self.dropped.get(levelno, 0) + 1
            return
        self._wake.set()
        while len(self._queue) >= self.capacity:
            if not self._thread.is_alive() or self._closed:
                with self._write_lock:
                    self.writer.write_batch([(levelno, data)])
                return
            time.sleep(0.0005)
        self._queue.append((levelno, data))
        self._wake.set()

    def _run(self) -> None:
        queue = self._queue
        wake = self._wake
        while True:
            wake.wait(self.flush_interval)
            wake.clear()
            stop = self._closed
            try:
                with self._write_lock:
                    self._drain(queue)
            except Exception as exc:  # noqa: BLE001 - the writer thread must survive
                error_reporter.report("writer", f"log writer error: {exc!r}")
            if stop and not queue:
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
                writer.flush_pending()
                data.set()
                continue
            batch.append((levelno, data))
            if len(batch) >= 4096:
                writer.write_batch(batch)
                batch = []
        writer.write_batch(batch)
        if writer.pending:
            writer.flush_pending()

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Wait until everything queued before this call is written; False on timeout."""
        if not self._thread.is_alive():
            with self._write_lock:
                self._drain(self._queue)
            return True
        done = threading.Event()
        self._queue.append((-1, done))
        self._wake.set()
        return done.wait(timeout)

    def take_leftovers(self) -> list[Item]:
        """Remove and return records queued after :meth:`close` (a reconfiguration race)."""
        left: list[Item] = []
        while self._queue:
            levelno, data = self._queue.popleft()
            if levelno >= 0:
                left.append((levelno, data))
            else:
                data.set()
        return left

    def close(self, timeout: float | None = 5.0) -> None:
        """Write everything queued, stop the writer thread and close the segment."""
        self._closed = True
        self._wake.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        with self._write_lock:
            self._drain(self._queue)
            self.writer.close()

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
        self.writer.detach_after_fork()
        if not self._closed:
            self._setup()
