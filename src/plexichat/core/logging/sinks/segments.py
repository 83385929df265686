"""Segment files: naming, listing and reading (plain, gzip or zstd), shared by writer and readers.

A segment is ``{prefix}.{stream}.{index:06d}.jsonl`` with an optional ``.gz``/``.zst``
suffix once compressed. ``stream`` is ``{host}-{pid}-{random}``: one writer per stream, so no
two processes ever write to the same file.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import re
import secrets
import socket
import stat
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any

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
    device named like a segment is passed over (reading one could hang or never end)."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    return [
        seg
        for entry in entries
        if (seg := Segment.parse(Path(entry.path))) is not None and _regular(entry)
    ]


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
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
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
        os.close(fd)


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

_ZSTD_CHUNK = 1024  # compressed bytes per decompression step: at most ~32 MiB of output


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


class _GzipRaw(io.RawIOBase):
    """The decompressed bytes of a gzip file; damaged deflate data (``zlib.error``) raises
    EOFError like a cut-off file does. Closing it closes the file too."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._gzip = gzip.GzipFile(filename="", mode="rb", fileobj=file)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return self._gzip.readinto(buffer)
        except zlib.error as exc:
            raise EOFError(f"damaged gzip data: {exc}") from exc

    def close(self) -> None:
        try:
            try:
                self._gzip.close()
            finally:
                self._file.close()
        finally:
            super().close()


class _ZstdRaw(io.RawIOBase):
    """The decompressed bytes of a zstd file, every frame of it.

    Damaged data (a ``zstandard.ZstdError``) and data cut off inside a frame raise EOFError,
    as gzip does. Output is bounded per step (small input chunks), so a crafted file cannot
    make one read allocate gigabytes. Closing it closes the file too.
    """

    def __init__(self, file: IO[bytes]) -> None:
        import zstandard

        self._file = file
        self._error: type[Exception] = zstandard.ZstdError
        self._dctx = zstandard.ZstdDecompressor()
        self._frame: Any = None  # the current frame's decompressor; None between frames
        self._out = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while self._pos >= len(self._out):
            if not self._decompress():
                return 0
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._out) - self._pos)
        view[:n] = self._out[self._pos : self._pos + n]
        self._pos += n
        return n

    def _decompress(self) -> bool:
        """Decompress the next input chunk into ``_out``; False at the clean end of input."""
        data = self._file.read(_ZSTD_CHUNK)
        if not data:
            if self._frame is not None:
                raise EOFError("zstd data ends inside a frame: the file is cut off")
            return False
        parts: list[bytes] = []
        while data:
            if self._frame is None:
                self._frame = self._dctx.decompressobj()
            try:
                parts.append(self._frame.decompress(data))
            except self._error as exc:
                raise EOFError(f"damaged zstd data: {exc}") from exc
            data = b""
            if self._frame.eof:  # the frame ended: what follows starts the next one
                data = self._frame.unused_data
                self._frame = None
        self._out, self._pos = b"".join(parts), 0
        return True

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            super().close()


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
            return io.BufferedReader(_GzipRaw(fh))
        if path.name.endswith(".zst"):
            try:
                return io.BufferedReader(_ZstdRaw(fh))
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
