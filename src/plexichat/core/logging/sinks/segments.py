"""Segment files: naming, listing and reading (plain, gzip or zstd), shared by writer and readers.

A segment is ``{prefix}.{stream}.{index:06d}.jsonl`` with an optional ``.gz``/``.zst``
suffix once compressed. ``stream`` is ``{host}-{pid}-{random}``: one writer per stream, so no
two processes ever write to the same file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import itertools
import os
import re
import secrets
import socket
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO

from .._core.lockfiles import close_lock_file, open_lock_file
from ._decompress import GzipRaw, ZstdRaw

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
    "MAX_LINE",
    "OversizedLine",
    "Segment",
    "claim_segment",
    "compressed_successor",
    "find_segment",
    "is_local",
    "list_segments",
    "lock_segment",
    "new_stream_id",
    "open_segment",
    "scan_segments",
    "segment_in_use",
    "segment_name",
    "stream_alive",
]

_NAME = re.compile(
    r"^(?P<prefix>[A-Za-z0-9_-]+)\.(?P<stream>[a-z0-9]+-\d+-[0-9a-f]+)\.(?P<index>\d{6,})"
    r"\.(?P<ext>jsonl|log)(?P<comp>\.gz|\.zst)?$"
)


def _host_token() -> str:
    """This host's name as a short file-name-safe token: its start plus a hash of all of it,
    so host names that differ only after the first characters never collide."""
    name = socket.gethostname()
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return (re.sub(r"[^a-z0-9]", "", name.lower())[:12] or "host") + digest


_HOST = _host_token()


def new_stream_id() -> str:
    """Return a fresh stream id ``{host}-{pid}-{random}`` for this process."""
    return f"{_HOST}-{os.getpid()}-{secrets.token_hex(3)}"


def segment_name(prefix: str, stream: str, index: int, ext: str = "jsonl") -> str:
    """Return the file name of segment ``index`` of ``stream`` (``ext`` jsonl, or log for text)."""
    return f"{prefix}.{stream}.{index:06d}.{ext}"


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment file found in a log directory."""

    path: Path
    prefix: str
    stream: str
    index: int
    compression: str | None  # None, "gzip" or "zstd"
    structured: bool = True  # False for console-format text segments (.log)

    @classmethod
    def parse(cls, path: Path) -> Segment | None:
        """Return the segment a path names, or None when it is not a segment file."""
        m = _NAME.match(path.name)
        if m is None:
            return None
        comp = {".gz": "gzip", ".zst": "zstd", None: None}[m.group("comp")]
        return cls(
            path,
            m.group("prefix"),
            m.group("stream"),
            int(m.group("index")),
            comp,
            m.group("ext") == "jsonl",
        )

    @property
    def pid(self) -> int:
        """The process id that wrote the stream."""
        return int(self.stream.split("-")[1])

    @property
    def host(self) -> str:
        """The (sanitized) host name that wrote the stream."""
        return self.stream.split("-")[0]


def scan_segments(directory: Path) -> list[Segment]:
    """Every segment file in ``directory`` (any prefix, plain and compressed), unordered;
    an unreadable directory has none. Only regular files count: a symlink, FIFO, socket or
    device named like a segment is passed over (reading one could hang or never end).

    A directory listing is not atomic: while upkeep compresses ``X`` (writes ``X.gz``, then
    removes ``X``) one listing may hold neither name. So every index missing between a
    stream's lowest and highest listed ones is looked up by name (:func:`find_segment`):
    a segment being compressed is found, one deleted (retention) stays a hole.
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    found = [
        seg
        for entry in entries
        if (seg := Segment.parse(Path(entry.path))) is not None and _regular(entry)
    ]
    return found + _fill_holes(found)


_PROBE_EDGE = 8
"""Of a long run of missing indices (segments deleted, a real gap) only this many at each
end are looked up: a segment caught mid-compression next to the gap is still found, and a
listing never costs more than a few ``lstat`` per gap."""


def _fill_holes(found: list[Segment]) -> list[Segment]:
    """The segments missing from a listing between each stream's lowest and highest listed
    index, found by name (3 ``lstat`` per hole at most)."""
    groups: dict[tuple[str, str, bool], dict[int, Segment]] = {}
    for seg in found:
        groups.setdefault((seg.prefix, seg.stream, seg.structured), {})[seg.index] = seg
    extra: list[Segment] = []
    for by_index in groups.values():
        if len(by_index) < 2:
            continue
        like = next(iter(by_index.values()))
        present = sorted(by_index)
        for low, high in itertools.pairwise(present):
            first, last = low + 1, high - 1  # a run of missing indices (empty when adjacent)
            run: Iterable[int] = range(first, last + 1)
            if last - first + 1 > 2 * _PROBE_EDGE:
                run = itertools.chain(
                    range(first, first + _PROBE_EDGE), range(last - _PROBE_EDGE + 1, last + 1)
                )
            extra.extend(hit for index in run if (hit := find_segment(like, index)) is not None)
    return extra


def find_segment(like: Segment, index: int) -> Segment | None:
    """Segment ``index`` of ``like``'s stream (same directory, prefix and kind), looked up by
    name rather than listed: plain, then ``.gz``, then ``.zst``, regular files only.

    Compression creates the compressed file before it removes the plain one, so in this
    order a segment being compressed is always found; None means it is gone (deleted).
    """
    plain = like.path.with_name(
        segment_name(like.prefix, like.stream, index, "jsonl" if like.structured else "log")
    )
    for suffix in ("", ".gz", ".zst"):
        path = plain.with_name(plain.name + suffix)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                return Segment.parse(path)
        except OSError:
            continue
    return None


def _regular(entry: os.DirEntry[str]) -> bool:
    """Whether a directory entry is a regular file itself: a FIFO, socket or device, or a
    symlink (to anything: ``/dev/zero`` too) named like a segment is not one."""
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def list_segments(directory: Path, prefix: str | None = None) -> dict[str, list[Segment]]:
    """Return the segments in ``directory`` per stream, each list ordered by index.

    When a segment exists both plain and compressed (compression just finished and the plain
    file is about to be removed), only the plain one is listed, so nothing is read twice.
    A segment the directory listing missed (being compressed meanwhile) is still listed
    when a later one of its stream is (see :func:`scan_segments`).
    """
    found: dict[tuple[str, int], Segment] = {}
    for seg in scan_segments(directory):
        if prefix is not None and seg.prefix != prefix:
            continue
        key = (seg.stream, seg.index)
        other = found.get(key)
        if other is None or (other.compression is not None and seg.compression is None):
            found[key] = seg
    streams: dict[str, list[Segment]] = {}
    for seg in found.values():
        streams.setdefault(seg.stream, []).append(seg)
    for segs in streams.values():
        segs.sort(key=lambda s: s.index)
    return streams


def compressed_successor(seg: Segment) -> Segment | None:
    """The compressed file a plain segment became (compressed meanwhile), if there is one."""
    for comp in (".gz", ".zst"):
        path = seg.path.with_name(seg.path.name + comp)
        if path.exists():
            return Segment.parse(path)
    return None


def lock_segment(fd: int) -> bool:
    """Mark an open segment as being written: the writer holds a shared lock while it has
    the file open. Returns False when the file was removed meanwhile (compressed by upkeep
    between creation and locking): the writer must move on to a new segment."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)  # blocks only while upkeep holds its claim
        except OSError:
            pass
    try:
        return os.fstat(fd).st_nlink > 0
    except OSError:
        return True


@contextmanager
def claim_segment(path: Path) -> Iterator[bool]:
    """Claim a plain segment for compression or deletion: yields True while an exclusive
    lock is held (no writer has it open), False when a writer holds it, and False for an
    empty segment of a live stream: a writer creates its file, then locks it, and a claim
    in between would compress an empty file and leave it behind as a cut-off segment.

    Without ``fcntl`` (Windows) it falls back to asking whether the stream's process lives.
    """
    seg = Segment.parse(path)
    if seg is None or seg.compression is not None:
        yield True
        return
    if fcntl is None:
        yield not stream_alive(seg.stream)
        return
    try:
        fd = open_lock_file(path, os.O_RDONLY)
    except OSError:
        yield True  # gone already: nothing holds it
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError:
            yield not stream_alive(seg.stream)
            return
        if os.fstat(fd).st_size == 0 and stream_alive(seg.stream):
            yield False  # just created: its writer has not taken its lock yet
            return
        yield True
    finally:
        close_lock_file(fd)  # a child forked meanwhile closed its copy (lockfiles)


def segment_in_use(path: Path) -> bool:
    """Tell whether a writer on this machine has the segment open (it holds its lock)."""
    with claim_segment(path) as claimed:
        return not claimed


def is_local(stream: str) -> bool:
    """Whether the stream was written by a host of this host's name (same machine, or one
    of its containers: they share the kernel, so the segment locks are visible here)."""
    return stream.split("-")[0] == _HOST


def stream_alive(stream: str) -> bool:
    """Tell whether the process that writes ``stream`` may still be running.

    Streams of other hosts are assumed alive (nothing here can tell).
    """
    parts = stream.split("-")
    if len(parts) != 3 or parts[0] != _HOST:
        return True
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


MAX_LINE = 10 * 1024 * 1024
"""The longest line :func:`iter_lines` yields (newline included); longer ones come back as
:class:`OversizedLine` markers, never held whole in memory."""


class OversizedLine(bytes):
    """What :func:`iter_lines` yields for a line longer than its limit: the line's first
    bytes only, with ``size`` the length of the whole line (newline included).

    Readers skip it (the indexer counts it as ``oversized``); it never ends with a newline,
    so it is never taken for a complete line.
    """

    size: int

    def __new__(cls, head: bytes, size: int) -> OversizedLine:
        """A marker holding ``head`` (the line's first bytes) for a line of ``size`` bytes."""
        line = super().__new__(cls, head)
        line.size = size
        return line


def _open_regular(path: Path) -> IO[bytes]:
    """Open a regular file for reading, never through a symlink and never blocking on a
    FIFO or device that took a segment's name (checked on the open file itself)."""
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | nonblock)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(
                errno.EINVAL,
                f"not a regular file (mode {stat.filemode(mode)}); only regular files are "
                "read as segments",
                str(path),
            )
        if nonblock:
            os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def open_segment(path: Path, *, strict: bool = False) -> IO[bytes]:
    """Open a segment for reading its decompressed bytes (plain, ``.gz`` or ``.zst``).

    Args:
        path: the file.
        strict: read only a regular file, not through a symlink, and never block on a FIFO
            or device named like a segment: what a file found in a log directory must be.
            Without it any readable path is opened (a file to import may be a pipe).

    Returns:
        A binary reader of the decompressed bytes; closing it closes the file.

    Raises:
        OSError: the file cannot be opened, is not a regular file (``strict``), or is not
            gzip data (``gzip.BadGzipFile``); reading ``.zst`` needs the zstandard package.
        EOFError: while reading, when compressed data is damaged or cut off.
    """
    fh = _open_regular(path) if strict else open(path, "rb")  # noqa: SIM115 - caller closes
    try:
        if path.name.endswith(".gz"):
            return io.BufferedReader(GzipRaw(fh))
        if path.name.endswith(".zst"):
            try:
                return io.BufferedReader(ZstdRaw(fh))
            except ImportError as exc:
                raise OSError(
                    errno.ENOTSUP,
                    "reading .zst segments needs the zstandard package "
                    "(pip install 'plexichat-logging[zstd]')",
                    str(path),
                ) from exc
    except BaseException:
        fh.close()
        raise
    return fh


def iter_lines(
    path: Path, offset: int = 0, *, max_line: int = MAX_LINE
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(end_offset, line)`` for each complete line of a segment after ``offset``.

    A last line without its newline (a crash mid-write, or a write still under way) is not
    yielded; callers compare the final offset with the file's size to tell. A line longer
    than ``max_line`` bytes is read in bounded pieces and yielded as an
    :class:`OversizedLine` (its first bytes and its size), so a huge or endless line never
    fills memory. Only regular files are read (see ``strict`` in :func:`open_segment`).

    Raises:
        OSError: the file cannot be opened or read.
        EOFError: compressed data is damaged or cut off (lines before it were yielded).
    """
    with open_segment(path, strict=True) as fh:
        if offset:
            if path.suffix in (".jsonl", ".log"):
                fh.seek(offset)
            else:
                _skip(fh, offset)
        pos = offset
        while True:
            line = fh.readline(max_line)
            if not line.endswith(b"\n"):
                if len(line) < max_line:
                    return  # the end: nothing, or a torn last line
                rest = _skip_line(fh, max_line)
                if rest is None:
                    return  # an oversized torn last line
                pos += len(line) + rest
                yield pos, OversizedLine(line[:256], len(line) + rest)
                continue
            pos += len(line)
            yield pos, line


def _skip_line(fh: IO[bytes], chunk: int) -> int | None:
    """Read past the rest of a line, ``chunk`` bytes at a time: its length (newline
    included), or None when the input ends before the newline."""
    count = 0
    while True:
        part = fh.readline(chunk)
        count += len(part)
        if part.endswith(b"\n"):
            return count
        if len(part) < chunk:
            return None


def _skip(fh: IO[bytes], count: int) -> None:
    while count > 0:
        chunk = fh.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)
