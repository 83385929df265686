"""The segment writer: one stream of JSON-lines segment files, sealed when integrity is on.

The writer is single-threaded by contract: the synchronous sink calls it under a lock, the
non-blocking sink only from its writer thread. It appends ``"stream"`` and ``"seq"`` to each
serialized event (the bytes are spliced, never re-serialized) and, with integrity on, seals
each line (chain value + tag, see :mod:`..integrity`) at the moment it is written, so a line
that never reached the file never entered the chain. Segments start with a header line and
end with a signed checkpoint; checkpoints also come on an interval and as an idle heartbeat.

When writing fails (directory gone or unwritable, disk full) records wait in a bounded
buffer, one message goes to stderr, and writing resumes by itself when it works again;
records dropped meanwhile are announced by a sealed ``loss`` line.
"""

from __future__ import annotations

import errno
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._core.errors import error_reporter
from .._core.levels import SECURITY, level_name
from ..integrity._format import TAG_LEN, seq_of
from ..integrity._sealer import IntegrityOptions, Sealer
from .segments import lock_segment, new_stream_id, segment_name

__all__ = ["PENDING_LIMIT", "RETRY_INTERVAL", "SegmentWriter"]

Item = tuple[int, bytes]
"""``(levelno, body)``: a line without its end (``}``/tag and newline)."""
RETRY_INTERVAL = 1.0
_NEVER = float("inf")
PENDING_LIMIT = 16 * 1024 * 1024
CHECKPOINT_RESERVE = 640
"""Bytes a sealed segment keeps free under ``rotation_size`` for its closing checkpoint."""


def _seq(body: bytes) -> int:
    """The sequence number of a body this writer built (it always ends with one)."""
    return seq_of(body) or 0


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
        integrity: IntegrityOptions | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.structured = structured
        self.prefix = prefix
        self.rotation_size = rotation_size
        self.rotation_interval = rotation_interval
        self.on_rotate = on_rotate
        self.file_mode = file_mode
        self.integrity = integrity if structured else None
        self.stream = new_stream_id()
        self._suffix = f',"stream":"{self.stream}","seq":'.encode()
        self.seq = 0
        self.written_seq = 0
        """The sequence number of the last record that reached a file."""
        self.index = 0
        self.path: Path | None = None
        self._fd = -1
        self._size = 0
        self._fresh_size = 0
        self._deadline = _NEVER
        self._pending: deque[Item] = deque()
        self._pending_bytes = 0
        self._torn = False
        self._final = False
        self._sealer: Sealer | None = None
        self._needs_header = False
        self._lost: list[list[int]] = []
        self._lost_count = 0
        self.os_write: Callable[[int, bytes | memoryview], int] = os.write
        """The write call (replaceable to inject faults in tests)."""
        self._retry_at = 0.0
        self.written: dict[int, int] = {}
        self.dropped: dict[int, int] = {}
        self.bytes_written = 0
        self.rotations = 0
        self.failures = 0

    @property
    def _reserve(self) -> int:
        """Room kept at the end of a segment for its closing checkpoint."""
        return CHECKPOINT_RESERVE if self.integrity is not None else 0

    @property
    def _overhead(self) -> int:
        if not self.structured:
            return 1
        return TAG_LEN + 1 if self.integrity is not None else 2

    def _finish(self, body: bytes) -> bytes:
        """An unsealed line (sealed ones are finished by the sealer)."""
        return body + (b"}\n" if self.structured else b"\n")

    # --- public --------------------------------------------------------------------------

    def write_batch(self, items: list[tuple[int, bytes]]) -> None:
        """Append serialized events (``(levelno, json_bytes)``) to the stream, in order."""
        if not items:
            return
        lines: list[Item]
        if self.structured:
            suffix = self._suffix
            lines = [
                (levelno, b"%b%b%d" % (data[:-1], suffix, n))
                for n, (levelno, data) in enumerate(items, self.seq + 1)
            ]
        else:
            lines = list(items)
        self.seq += len(items)
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
        if fd < 0 or self._pending or self._lost or self._needs_header or not self.structured:
            self.write_batch([(levelno, data)])
            return
        seq = self.seq + 1
        body = b"%b%b%d" % (data[:-1], self._suffix, seq)
        sealer = self._sealer
        head = b""
        if sealer is None:
            line = body + b"}\n"
        else:
            head = sealer.head
            line = sealer.seal(body)
        size = self._size + len(line)
        limit = self.rotation_size
        if (limit is not None and size + self._reserve > limit) or (
            self._deadline != _NEVER and time.time() >= self._deadline
        ):
            if sealer is not None:
                sealer.head = head
            self.write_batch([(levelno, data)])
            return
        try:
            done = self.os_write(fd, line)
        except OSError:
            if sealer is not None:
                sealer.head = head
            self.write_batch([(levelno, data)])  # nothing was written: the batch path copes
            return
        self.seq = seq
        if done == len(line):
            self._size = size
            self.bytes_written += done
            self.written[levelno] = self.written.get(levelno, 0) + 1
            self.written_seq = seq
            if sealer is not None:
                sealer.unsealed += 1
            if self.failures:
                self._recovered()
            return
        # A short write (the disk is filling up): finish the line, or undo it and keep it.
        self._size += done
        self.bytes_written += done
        try:
            self._write_buf([line[done:]], [(levelno, body)], 0, 1, already=done)
        except OSError as exc:
            exc.plexi_buf = [line]  # type: ignore[attr-defined]
            exc.plexi_head = head  # type: ignore[attr-defined]
            self._failed(exc, [(levelno, body)], 0)
            return
        self.written_seq = seq
        if sealer is not None:
            sealer.unsealed += 1

    def flush_pending(self) -> bool:
        """Try to write what earlier failures left buffered; True when nothing is left."""
        if self._pending and time.monotonic() >= self._retry_at:
            lines = list(self._pending)
            self._pending.clear()
            self._pending_bytes = 0
            self._write_lines(lines)
        return not self._pending

    def tick(self) -> None:
        """Write a checkpoint when one is due (interval or idle heartbeat)."""
        sealer = self._sealer
        if sealer is None or self._fd < 0 or self._pending or self._final or self._needs_header:
            return
        reason = sealer.due()
        if reason is not None:
            try:
                self._checkpoint(reason)
            except OSError as exc:
                error_reporter.report(
                    "checkpoint", f"cannot write an integrity checkpoint to {self.path}: {exc}"
                )

    @property
    def pending(self) -> int:
        """Records waiting because writing failed."""
        return len(self._pending)

    @property
    def sealer(self) -> Sealer | None:
        """The stream's sealer once the first segment is open (integrity on), else None."""
        return self._sealer

    def close(self) -> None:
        """Write what can be written, seal the current segment and close it, for good."""
        self._retry_at = 0.0
        self.flush_pending()
        if (
            self._fd >= 0
            and self._sealer is not None
            and not (self._pending or self._final or self._needs_header)
        ):
            try:
                self._checkpoint("close")
            except OSError as exc:
                error_reporter.report(
                    "checkpoint", f"cannot write the closing checkpoint to {self.path}: {exc}"
                )
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
            integrity=self.integrity,
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
        extra = self._overhead
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
            if self._needs_header:
                self._write_header()
            if self._lost and self._sealer is not None:
                self._announce_loss()
            size = self._size
            reserve = self._reserve
            if limit is None or size + sum(len(b) + extra for _, b in lines) + reserve <= limit:
                self._write_group(lines, 0, len(lines))
                return
            for i, (_, body) in enumerate(lines):
                n = len(body) + extra
                if size > self._fresh_size and size + n + reserve > limit:
                    self._write_group(lines, start, i)
                    start = i
                    self._rotate()
                    size = self._size
                size += n
            self._write_group(lines, start, len(lines))
        except OSError as exc:
            self._failed(exc, lines, start)

    def _write_group(self, lines: list[Item], start: int, end: int) -> None:
        """Seal and write ``lines[start:end]``; on failure the exception carries what is
        needed to roll the chain back to the last whole line that reached the file."""
        if start >= end:
            return
        sealer = self._sealer
        head = b""
        if sealer is not None:
            head = sealer.head
            buf = sealer.seal_many([body for _, body in lines[start:end]])
        else:
            finish = self._finish
            buf = [finish(body) for _, body in lines[start:end]]
        try:
            self._write_buf(buf, lines, start, end)
        except OSError as exc:
            exc.plexi_buf = buf  # type: ignore[attr-defined]
            exc.plexi_head = head  # type: ignore[attr-defined]
            raise
        if self.structured:
            self.written_seq = _seq(lines[end - 1][1])
        if sealer is not None:
            sealer.unsealed += end - start

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

    def _control(self, make: Callable[[Sealer], tuple[bytes, dict[str, Any] | None]]) -> None:
        """Write one control line (header, checkpoint, loss); all or nothing."""
        sealer = self._sealer
        assert sealer is not None
        snap = sealer.snapshot()
        line, fields = make(sealer)
        done = 0
        try:
            while done < len(line):
                done += self.os_write(self._fd, line[done:])
        except OSError:
            sealer.restore(snap)
            self._size += done
            self.bytes_written += done
            if done:
                self._undo_partial(done)
            raise
        self._size += done
        self.bytes_written += done
        if fields is not None:
            sealer.committed(fields)

    def _checkpoint(self, reason: str) -> None:
        index, seq = self.index, self.written_seq
        self._control(lambda s: s.checkpoint(seq, index, reason))

    def _announce_loss(self) -> None:
        lost, count = self._lost, self._lost_count
        self._control(lambda s: (s.loss(lost, count, "the disk was full or unwritable"), None))
        self._lost = []
        self._lost_count = 0

    def _failed(self, exc: OSError, lines: list[Item], start: int) -> None:
        done = getattr(exc, "plexi_done", 0)
        buf: list[bytes] | None = getattr(exc, "plexi_buf", None)
        rest = lines[start:]
        whole = 0
        sizes = [len(b) for b in buf] if buf is not None else []
        while rest and whole < len(sizes) and done >= sizes[whole]:  # whole lines written
            done -= sizes[whole]
            lvl = rest[0][0]
            self.written[lvl] = self.written.get(lvl, 0) + 1
            if self.structured:
                self.written_seq = _seq(rest[0][1])
            rest = rest[1:]
            whole += 1
        sealer = self._sealer
        if sealer is not None and buf is not None:  # the chain ends at the last whole line
            sealer.head = getattr(exc, "plexi_head", sealer.head)
            for _, body in lines[start : start + whole]:
                sealer.seal(body)
            sealer.unsealed += whole
        if done and buf is not None:  # part of a line reached the file: cut it off
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

    def _drop(self, levelno: int, body: bytes) -> None:
        self._pending_bytes -= len(body)
        self.dropped[levelno] = self.dropped.get(levelno, 0) + 1
        if self.structured and self.integrity is not None:
            seq = _seq(body)
            if self._lost and self._lost[-1][1] == seq - 1:
                self._lost[-1][1] = seq
            else:
                self._lost.append([seq, seq])
            self._lost_count += 1

    def _trim_pending(self) -> None:
        if self._pending_bytes <= PENDING_LIMIT:
            return
        kept: deque[Item] = deque()
        # Drop the oldest non-security records first; SECURITY/AUDIT are dropped last.
        for levelno, line in self._pending:
            if self._pending_bytes > PENDING_LIMIT and levelno < SECURITY:
                self._drop(levelno, line)
            else:
                kept.append((levelno, line))
        while self._pending_bytes > PENDING_LIMIT and kept:
            levelno, line = kept.popleft()
            self._drop(levelno, line)
        if len(self._lost) > 1000:  # keep the announcement small: merge into one range
            self._lost = [[self._lost[0][0], self._lost[-1][1]]]
        self._pending = kept

    def _start_sealing(self) -> None:
        if self._sealer is not None or self.integrity is None:
            return
        try:
            self._sealer = Sealer(self.directory, self.stream, self.integrity, self.prefix)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.integrity = None
            error_reporter.report(
                "integrity",
                f"cannot set up integrity keys for {self.directory}: {exc}. This stream is "
                "written WITHOUT tamper evidence; fix the key directory and restart.",
            )

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
        self._fresh_size = 0
        if self.integrity is not None and self._size == 0:
            self._start_sealing()
            if self._sealer is not None:
                self._needs_header = True
                self._write_header()

    def _write_header(self) -> None:
        """Write the segment's header line (again, after a failure; records never go
        before it)."""
        index, first = self.index, self.written_seq + 1
        self._control(lambda s: (s.header(index, first), None))
        self._needs_header = False
        self._fresh_size = self._size  # a header alone never triggers a rotation

    def _rotate(self) -> None:
        old = self.path
        if self._fd >= 0:
            if self._sealer is not None:
                self._checkpoint("rotate")
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
        sealer = self._sealer
        return {
            "stream": self.stream,
            "segment": str(self.path) if self.path else None,
            "written": {level_name(k): v for k, v in sorted(self.written.items())},
            "dropped": {level_name(k): v for k, v in sorted(self.dropped.items())},
            "bytes_written": self.bytes_written,
            "rotations": self.rotations,
            "pending": len(self._pending),
            "integrity": None
            if sealer is None
            else {"checkpoints": sealer.checkpoints, "unsealed": sealer.unsealed},
        }
