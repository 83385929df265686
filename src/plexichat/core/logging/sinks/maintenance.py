"""Background upkeep of a log directory: compression of closed segments and retention.

Runs on its own daemon thread so a rotation never stalls the writer. Only closed segments
are touched: never the segment a live process is writing (the newest of a stream whose
process is alive).
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import os
import queue
import secrets
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .._core.errors import SegmentBusyError, error_reporter
from ..integrity._prune import announce_prune
from .segments import (
    Segment,
    claim_segment,
    is_local,
    list_segments,
    open_segment,
    segment_in_use,
)

__all__ = [
    "Maintenance",
    "RetentionPolicy",
    "SegmentBusyError",
    "apply_retention",
    "compress_segment",
]

_CHUNK = 1 << 20

_EXITING = threading.Event()
"""Set at interpreter exit: a compression in progress stops and removes its partial file."""


class _StoppedError(Exception):
    """A compression gave way to the interpreter's exit."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Delete closed segments older than ``max_age`` seconds or beyond ``max_total_bytes``."""

    max_age: float | None = None
    max_total_bytes: int | None = None


def compress_segment(path: Path, method: str = "gzip") -> Path:
    """Compress a closed segment next to itself, keep its mtime, remove the original.

    The compressed file appears under its final name only when complete (written to a
    temporary name, then renamed), so a crash never leaves a half file that readers trust.
    The segment is claimed (exclusively locked) throughout, so a writer can never be
    writing into it meanwhile.

    Raises:
        SegmentBusyError: a writer has the segment open.
    """
    with claim_segment(path) as claimed:
        if not claimed:
            raise SegmentBusyError(f"{path} is being written; it is compressed once closed")
        return _compress(path, method)


def _compress(path: Path, method: str) -> Path:
    suffix = ".gz" if method == "gzip" else ".zst"
    final = path.with_name(path.name + suffix)
    twins = [t for t in (path.with_name(path.name + s) for s in (".gz", ".zst")) if t.exists()]
    if twins and all(_same_content(path, twin) for twin in twins):
        # a compression that was killed after its rename, before the unlink: finish it
        # (compressing again, maybe with the other method, left two files for one segment)
        path.unlink(missing_ok=True)
        return twins[0]
    tmp = path.with_name(f"{path.name}{suffix}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    st = path.stat()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        with open(path, "rb") as src, open(os.open(tmp, flags, 0o600), "wb") as raw:
            if method == "gzip":
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6) as dst:
                    _copy(src, dst)
            else:
                import zstandard

                with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as dst:
                    _copy(src, dst)
            raw.flush()
            os.fsync(raw.fileno())  # on disk before the plain segment goes (power loss)
        os.chmod(tmp, st.st_mode & 0o777)
        os.utime(tmp, (st.st_atime, st.st_mtime))
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)  # the new name is durable before the old one is removed
    path.unlink(missing_ok=True)
    for twin in twins:  # a stale copy of other content: the plain segment was the truth
        if twin != final:
            twin.unlink(missing_ok=True)
    return final


def _same_content(path: Path, twin: Path) -> bool:
    """Whether compressed ``twin`` holds exactly the bytes of plain ``path``."""
    try:
        with open(path, "rb") as plain, open_segment(twin) as packed:
            return _digest(plain) == _digest(packed)
    except (OSError, EOFError, ValueError):  # damaged or unreadable: not a finished copy
        return False


def _digest(fh: IO[bytes]) -> bytes:
    digest = hashlib.sha256()
    while chunk := fh.read(_CHUNK):
        digest.update(chunk)
    return digest.digest()


def _sync_directory(directory: Path) -> None:
    """fsync a directory, so a rename in it survives a power loss (where the OS allows)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # not supported here (some file systems, Windows)
    finally:
        os.close(fd)


def _copy(src: Any, dst: Any) -> None:
    """Copy in chunks; give way when the interpreter exits (the daemon thread would be cut
    off mid-file and leave its temporary file behind; the plain segment stays either way)."""
    while chunk := src.read(_CHUNK):
        if _EXITING.is_set():
            raise _StoppedError
        dst.write(chunk)


FOREIGN_IDLE = 2 * 86_400.0
"""Another host's newest segment counts as in use until it has been idle this long."""


def _in_use(seg: Segment) -> bool:
    """A stream's newest plain segment is in use if its writer holds its lock (this host's
    streams), or, for another host's stream (its locks are not visible here), if it was
    written to within :data:`FOREIGN_IDLE`."""
    if is_local(seg.stream):
        return segment_in_use(seg.path)
    try:
        return time.time() - seg.path.stat().st_mtime < FOREIGN_IDLE
    except OSError:
        return False


def _closed_segments(
    streams: dict[str, list[Segment]], active: Callable[[Segment], bool]
) -> tuple[list[Segment], list[Segment]]:
    closed: list[Segment] = []
    open_: list[Segment] = []
    for segs in streams.values():
        for i, seg in enumerate(segs):
            if i == len(segs) - 1 and seg.compression is None and active(seg):
                open_.append(seg)
            else:
                closed.append(seg)
    return closed, open_


def apply_retention(
    directory: Path,
    policy: RetentionPolicy,
    *,
    prefix: str | None = None,
    now: float | None = None,
    dry_run: bool = False,
    active: Callable[[Segment], bool] = _in_use,
    key_dir: Path | None = None,
) -> list[Path]:
    """Delete (or, with ``dry_run``, list) the closed segments the policy no longer keeps.

    A sealed segment's deletion is first announced by a signed prune link in the key ladder
    (``key_dir``: the integrity key directory when it is not ``DIR/keys``), so verification
    continues from the cut instead of reporting a gap. Returns the deleted paths, oldest
    first.
    """
    if policy.max_age is None and policy.max_total_bytes is None:
        return []
    now = time.time() if now is None else now
    closed, open_ = _closed_segments(list_segments(directory, prefix), active)
    sized: list[tuple[float, int, Segment]] = []
    for seg in closed + open_:
        try:
            st = seg.path.stat()
        except OSError:
            continue
        sized.append((st.st_mtime, st.st_size, seg))
    total = sum(size for _, size, _ in sized)
    open_set = {id(s) for s in open_}
    doomed: list[Path] = []
    for mtime, size, seg in sorted(sized, key=lambda t: t[0]):
        if id(seg) in open_set:
            continue
        too_old = policy.max_age is not None and now - mtime > policy.max_age
        too_big = policy.max_total_bytes is not None and total > policy.max_total_bytes
        if not (too_old or too_big):
            continue
        doomed.append(seg.path)
        total -= size
    if dry_run:
        return doomed
    deleted: list[Path] = []
    for path in doomed:
        with claim_segment(path) as claimed:
            if not claimed:
                continue  # a writer picked it up again: keep it
            announce_prune(directory, path, key_dir)
            try:
                path.unlink()
            except FileNotFoundError:
                continue
        deleted.append(path)
    return deleted


_LIVE: weakref.WeakSet[Maintenance] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for maintenance in list(_LIVE):
        maintenance._after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _stop_at_exit(timeout: float = 1.0) -> None:
    """Stop upkeep at exit: a compression in progress removes its partial file, queued jobs
    are left to the next start's sweep. Registered before the logging manager's exit flush,
    so it runs after it."""
    _EXITING.set()
    deadline = time.monotonic() + timeout
    for maintenance in list(_LIVE):
        thread = maintenance._thread
        if thread is not None:
            thread.join(max(0.0, deadline - time.monotonic()))


atexit.register(_stop_at_exit)


class Maintenance:
    """A daemon thread that compresses rotated segments and applies retention."""

    def __init__(
        self,
        directory: Path,
        *,
        prefix: str,
        compression: str | None,
        retention: RetentionPolicy,
        expire: Callable[[], int] | None = None,
        key_dir: Path | None = None,
    ) -> None:
        """``expire``, when given, replaces the age/size deletion: it deletes what the policy
        no longer keeps and returns how many segments it deleted (the level/category rules
        of the store package, which keep segments holding longer-lived records)."""
        self.directory = directory
        self.prefix = prefix
        self.compression = compression
        self.retention = retention
        self.expire = expire
        self.key_dir = key_dir
        self.compressed = 0
        self.deleted = 0
        self._jobs: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        _LIVE.add(self)

    def _after_fork(self) -> None:
        """In a forked child: no thread, no jobs, fresh locks (the parent does its own upkeep)."""
        self._jobs = queue.SimpleQueue()
        self._thread = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()

    def segment_closed(self, path: Path) -> None:
        """Called by the writer after a rotation: compress it, then apply retention."""
        self._submit("closed", path)

    def sweep(self) -> None:
        """Compress closed segments left by dead processes and apply retention (at start-up)."""
        self._submit("sweep", None)

    def _submit(self, kind: str, arg: Any) -> None:
        if kind == "closed" and not self.compression and not self._has_retention():
            return
        self._idle.clear()
        self._jobs.put((kind, arg))
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="plexichat-log-maintenance", daemon=True
                )
                self._thread.start()

    def _has_retention(self) -> bool:
        return self.retention.max_age is not None or self.retention.max_total_bytes is not None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until queued jobs are done (tests, shutdown)."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while True:
            try:
                kind, arg = self._jobs.get(timeout=5.0)
                if _EXITING.is_set():
                    self._idle.set()
                    return
            except queue.Empty:
                with self._lock:
                    if self._jobs.empty():
                        self._thread = None
                        self._idle.set()
                        return
                continue
            try:
                if kind == "closed":
                    if self.compression:
                        self._compress(arg)
                else:
                    self._sweep()
                if self.expire is not None:
                    self.deleted += self.expire()
                elif self._has_retention():
                    self.deleted += len(
                        apply_retention(
                            self.directory, self.retention, prefix=self.prefix, key_dir=self.key_dir
                        )
                    )
            except Exception as exc:  # noqa: BLE001 - upkeep never crashes the application
                error_reporter.report("maintenance", f"log directory upkeep failed: {exc!r}")
            if self._jobs.empty():
                self._idle.set()

    def _compress(self, path: Path) -> None:
        if not self.compression:
            return
        try:
            compress_segment(path, self.compression)
        except (FileNotFoundError, SegmentBusyError):  # done by another process, or still written
            return
        except _StoppedError:  # the interpreter exits: the next start's sweep compresses it
            return
        self.compressed += 1

    def _sweep(self) -> None:
        now = time.time()
        for entry in self.directory.glob(f"{self.prefix}.*.tmp"):
            try:
                if now - entry.stat().st_mtime > 600:
                    entry.unlink()
            except OSError:
                pass
        if not self.compression:
            return
        closed, _ = _closed_segments(list_segments(self.directory, self.prefix), _in_use)
        for seg in closed:
            if seg.compression is None:
                self._compress(seg.path)
