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
from .segments import lock_segment, new_stream_id, segment_name

__all__ = ["AsyncFileSink", "SegmentWriter", "SyncFileSink"]

_LIVE_SINKS: weakref.WeakSet[_FileSinkBase] = weakref.WeakSet()


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
        self._torn = False
        self._final = False
        self.os_write: Callable[[int, bytes | memoryview], int] = os.write
        """The write call (replaceable to inject faults in tests)."""
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
            done = self.os_write(fd, line)
        except OSError:
            self.write_batch([(levelno, data)])  # nothing was written: the batch path copes
            return
        self.seq = seq
        if done == len(line):
            self._size = size
            self.bytes_written += done
            self.written[levelno] = self.written.get(levelno, 0) + 1
            if self.failures:
                self._recovered()
            return
        # A short write (the disk is filling up): finish the line, or undo it and keep it.
        self._size += done
        self.bytes_written += done
        try:
            self._write_buf([line[done:]], [(levelno, line)], 0, 1, already=done)
        except OSError as exc:
            self._failed(exc, [(levelno, line)], 0)

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
        """Write what can be written and close the current segment, for good."""
        self._retry_at = 0.0
        self.flush_pending()
        self._final = True
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
        if self._final:  # closed: never reopen (that would leak the file and its lock)
            for levelno, _ in lines:
                self.dropped[levelno] = self.dropped.get(levelno, 0) + 1
            error_reporter.report(
                "closed-writer", f"records reached the closed log segment writer of {self.path}"
            )
            return
        limit = self.rotation_size
        start = 0
        try:
            if self._fd < 0:
                self._open()
            elif time.time() >= self._deadline:
                self._rotate()
            if self._torn:
                newline = self.os_write(self._fd, b"\n")
                self._size += newline
                self.bytes_written += newline
                self._torn = False
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

    def _write_buf(
        self, buf: list[bytes], lines: list[Item], start: int, end: int, already: int = 0
    ) -> None:
        """Write ``buf`` (the bytes of ``lines[start:end]`` minus ``already`` written ones)."""
        if not buf:
            return
        data = b"".join(buf) if len(buf) > 1 else buf[0]
        view = memoryview(data)
        done = 0
        write = self.os_write
        try:
            while done < len(data):
                done += write(self._fd, view[done:])
        except OSError as exc:
            exc.plexi_done = already + done  # type: ignore[attr-defined]
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
        while rest and done >= len(rest[0][1]):  # whole lines that reached the file
            done -= len(rest[0][1])
            lvl = rest[0][0]
            self.written[lvl] = self.written.get(lvl, 0) + 1
            rest = rest[1:]
        if done:  # part of a line reached the file: cut it off, keep the whole line pending
            self._undo_partial(done)
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

    def _undo_partial(self, partial: int) -> None:
        """Remove a torn line's first ``partial`` bytes from the end of the segment.

        One writer per file makes this safe. When the file cannot be truncated, the next
        write starts with a newline so the fragment stays a line of its own (readers skip
        it) and never glues onto a whole record.
        """
        try:
            if self._fd < 0:
                raise OSError(errno.EBADF, "segment not open")
            os.ftruncate(self._fd, self._size - partial)
            self._size -= partial
            self.bytes_written -= partial
        except OSError:
            self._torn = True

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
            self._torn = False  # a fragment stays behind in the previous segment
            self.index += 1
            self.path = self.directory / segment_name(
                self.prefix, self.stream, self.index, "jsonl" if self.structured else "log"
            )
            self._size = 0
            self._deadline = (
                time.time() + self.rotation_interval if self.rotation_interval else _NEVER
            )
        elif not self.path.exists() and self._size:
            # Reopening after a failure, but the segment was removed or compressed meanwhile:
            # never recreate it under the same name; continue in the next segment.
            self.path = None
            self._open()
            return
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o750)
        fd = os.open(
            self.path,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
            self.file_mode,
        )
        if not lock_segment(fd):  # upkeep compressed it between creation and locking
            os.close(fd)
            self.path = None
            self._open()
            return
        self._fd = fd

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


class _Marker:
    """A flush request travelling through the queue: set when the writer passes it."""

    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


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
    """Writes each record to the OS before the logging call returns (survives ``kill -9``)."""

    def __init__(self, writer: SegmentWriter, level: int = 0) -> None:
        self._lock = threading.Lock()
        super().__init__(writer, level)

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        """Write one serialized event."""
        with self._lock:
            if not self._closed:
                self.writer.write_one(levelno, data)
                return
        self._late(levelno, event, data)

    def flush(self, timeout: float | None = None) -> bool:
        """Retry anything a failed write left buffered; True when nothing is left."""
        with self._lock:
            return self.writer.flush_pending()

    def close(self, timeout: float | None = None, successor: Any = None) -> None:
        """Close the current segment; later records go to ``successor``."""
        with self._lock:
            self.successor = successor
            self._closed = True
            self.writer.close()

    def stats(self) -> dict[str, Any]:
        """The writer's counters (queue depth is always 0)."""
        with self._lock:
            return {**self.writer.stats(), "queue_depth": 0, "queue_capacity": 0, "mode": "sync"}

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        super()._after_fork()


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
        self._wake = threading.Event()
        self._signalled = False
        self._drop_lock = threading.Lock()
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
        while True:
            wake.wait(self.flush_interval)
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
