"""Segment files: naming, listing and reading (plain, gzip or zstd), shared by writer and readers.

A segment is ``{prefix}.{stream}.{index:06d}.jsonl`` with an optional ``.gz``/``.zst``
suffix once compressed. ``stream`` is ``{host}-{pid}-{random}``: one writer per stream, so no
two processes ever write to the same file.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = [
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
    an unreadable directory has none."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    return [seg for entry in entries if (seg := Segment.parse(Path(entry.path))) is not None]


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


def open_segment(path: Path) -> IO[bytes]:
    """Open a segment for reading its decompressed bytes."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if path.name.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")  # noqa: SIM115 - closed with the reader
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader)
    return open(path, "rb")


def iter_lines(path: Path, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """Yield ``(end_offset, line)`` for each complete line of a segment after ``offset``.

    A last line without its newline (a crash mid-write, or a write still under way) is not
    yielded; callers compare the final offset with the file's size to tell.
    """
    with open_segment(path) as fh:
        if offset:
            if path.suffix in (".jsonl", ".log"):
                fh.seek(offset)
            else:
                _skip(fh, offset)
        pos = offset
        for line in fh:
            if not line.endswith(b"\n"):
                return
            pos += len(line)
            yield pos, line


def _skip(fh: IO[bytes], count: int) -> None:
    while count > 0:
        chunk = fh.read(min(count, 1 << 20))
        if not chunk:
            return
        count -= len(chunk)
