"""Reading a log directory back: every stream merged by time, torn lines tolerated, follow mode.

Used by ``plexichat-logs tail`` and the test helpers, and by the indexer later on.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ..integrity._format import CONTROL_PREFIX
from .segments import (
    OversizedLine,
    Segment,
    compressed_successor,
    find_segment,
    list_segments,
)
from .segments import iter_lines as _iter_all_lines

__all__ = ["Line", "StreamFollower", "read_directory", "tail_lines"]


@dataclass(frozen=True, slots=True)
class Line:
    """One complete line read from a segment, with its parsed record when it is JSON."""

    raw: bytes
    record: dict[str, Any] | None
    segment: Segment

    @property
    def sort_key(self) -> tuple[str, str, int]:
        """(timestamp, stream, seq): the merge order across streams."""
        rec = self.record or {}
        seq = rec.get("seq")
        return (
            str(rec.get("timestamp", "")),
            self.segment.stream,
            seq if isinstance(seq, int) else 0,
        )


def iter_lines(path: Path, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    """:func:`.segments.iter_lines` without the integrity control lines (headers,
    checkpoints) and without lines too long to read whole (:class:`.segments.OversizedLine`):
    what readers show and index are the records."""
    for end, raw in _iter_all_lines(path, offset):
        if not raw.startswith(CONTROL_PREFIX) and not isinstance(raw, OversizedLine):
            yield end, raw


def _parse(raw: bytes, seg: Segment) -> Line:
    record: dict[str, Any] | None = None
    if seg.structured and not raw.startswith(CONTROL_PREFIX):
        try:
            value = orjson.loads(raw)
            if isinstance(value, dict):
                record = value
        except orjson.JSONDecodeError:
            record = None
    return Line(raw, record, seg)


def _segment_lines(seg: Segment, offset: int = 0) -> Iterator[tuple[int, Line, Segment]]:
    """``(end, line, segment read)`` for each line of a segment after ``offset``, finishing
    from its compressed file when it was compressed meanwhile. A file that cannot be read,
    or whose compressed data is damaged or cut off, ends where reading failed: readers
    never raise for it."""
    try:
        for end, raw in iter_lines(seg.path, offset):
            yield end, _parse(raw, seg), seg
        return
    except FileNotFoundError:  # compressed or deleted meanwhile: read the new name
        pass
    except (OSError, EOFError):  # unreadable, or a damaged compressed file: keep what was read
        return
    alt = compressed_successor(seg)
    if alt is None:
        return
    try:
        for end, raw in iter_lines(alt.path, offset):
            yield end, _parse(raw, alt), alt
    except (OSError, EOFError):
        return


def _stream_lines(segs: list[Segment]) -> Iterator[Line]:
    for seg in segs:
        for _, line, _ in _segment_lines(seg):
            yield line


def read_directory(directory: Path, prefix: str | None = None) -> Iterator[Line]:
    """Yield every complete line of every stream, merged by (timestamp, stream, seq).

    A torn last line (a crash mid-write) is skipped; it never breaks the reader.
    """
    streams = list_segments(Path(directory), prefix)
    iters = [_stream_lines(segs) for _, segs in sorted(streams.items())]
    yield from heapq.merge(*iters, key=lambda line: line.sort_key)


def tail_lines(directory: Path, count: int, prefix: str | None = None) -> list[Line]:
    """Return the last ``count`` lines across all streams, in time order."""
    return StreamFollower(Path(directory), prefix).backlog(count)


def _read_segment(seg: Segment) -> tuple[list[Line], int]:
    """All complete lines of a segment (finished from its compressed file when it was
    compressed meanwhile) and the offset after the last complete line."""
    lines: list[Line] = []
    end = 0
    for end, line, _ in _segment_lines(seg):  # noqa: B007 - end is read after the loop
        lines.append(line)
    return lines, end


_HOLE_POLLS = 3
"""How many polls in a row a stream's next segment must be missing (neither listed nor
found by name) before a follower gives it up as deleted and goes on with the next one
there is (two when no older segment of the stream is left: see :class:`StreamFollower`)."""


@dataclass
class _Position:
    """Where a follower is in one stream: segment ``index`` is read up to ``offset``
    (decompressed bytes; 0 when not started) and every lower index is done with."""

    index: int
    offset: int
    missing: int = 0
    """Consecutive polls in which segment ``index`` was neither listed nor found by name."""


@dataclass
class StreamFollower:
    """Follows a directory: each :meth:`poll` returns the lines written since the last one.

    New streams and new segments are picked up; a segment compressed while being followed is
    finished from its compressed file; lines come back merged by time within each poll.

    Per stream, the follower keeps one :class:`_Position`: the index of the segment it
    reads and how far it read it, every lower index being done with. A segment counts as
    done once it was read to its end while a later segment of its stream was already
    listed (the writer creates the next segment only after closing this one, so nothing
    more can come). Segments are read strictly in index order and never skipped on the
    strength of one listing: a directory listing is not atomic, and one taken while upkeep
    compresses a segment can hold neither its plain nor its compressed name. So the next
    segment is taken from the listing or, when the listing lacks it, looked up by name
    (:func:`.segments.find_segment`, which finds a segment being compressed); when that
    fails too, the stream waits there (its later segments are read at a later poll). The
    segment is taken as deleted, and the stream continued after it, only when a later poll
    still lacks it and it is older than every listed segment of its stream (retention
    deletes the oldest first and outran the follower), or after :data:`_HOLE_POLLS` polls
    in a row without it.
    """

    directory: Path
    prefix: str | None = None
    _pos: dict[str, _Position] = field(default_factory=dict)

    def backlog(self, count: int) -> list[Line]:
        """Return the last ``count`` lines across all streams, in time order, and continue
        :meth:`poll` right after what was read, so nothing is skipped or shown twice."""
        picked: list[Line] = []
        for stream, segs in list_segments(self.directory, self.prefix).items():
            collected: list[Line] = []
            for seg in reversed(segs):
                lines, end = _read_segment(seg)
                if seg is segs[-1]:
                    self._pos[stream] = _Position(seg.index, end)
                collected = lines + collected
                if len(collected) >= count:
                    break
            if count > 0:
                picked.extend(collected[-count:])
        picked.sort(key=lambda line: line.sort_key)
        return picked[-count:] if count > 0 else []

    def start_at_end(self) -> None:
        """Skip everything already written (follow only new lines)."""
        for stream, segs in list_segments(self.directory, self.prefix).items():
            last = segs[-1]
            end = 0
            try:
                for end, _ in iter_lines(last.path):  # noqa: B007 - end is read after the loop
                    pass
            except (OSError, EOFError):  # unreadable or damaged: start after what was read
                pass
            self._pos[stream] = _Position(last.index, end)

    def poll(self) -> list[Line]:
        """Return the complete lines written since the last poll, merged by time."""
        out: list[Line] = []
        for stream, segs in list_segments(self.directory, self.prefix).items():
            out.extend(self._advance(stream, segs))
        out.sort(key=lambda line: line.sort_key)
        return out

    def _advance(self, stream: str, segs: list[Segment]) -> list[Line]:
        """Read one stream on from its position, given its segments as just listed."""
        listed = {seg.index: seg for seg in segs}
        last = segs[-1].index
        pos = self._pos.get(stream)
        if pos is None:  # a new stream: from its first segment (the listing may miss it)
            first = segs[0].index
            while first > 1 and (below := find_segment(segs[0], first - 1)) is not None:
                first, listed[below.index] = below.index, below
            pos = self._pos[stream] = _Position(first, 0)
        out: list[Line] = []
        while pos.index <= last:
            seg = listed.get(pos.index) or find_segment(segs[-1], pos.index)
            if seg is None:
                pos.missing += 1
                oldest = pos.index < segs[0].index  # its older segments are gone too: retention
                if pos.missing < (2 if oldest else _HOLE_POLLS):
                    break  # not there yet as far as this listing tells: look again next poll
                pos.index = min(i for i in listed if i > pos.index)  # deleted: go on after it
                pos.offset, pos.missing = 0, 0
                continue
            pos.missing = 0
            for end, line, _ in _segment_lines(seg, pos.offset):
                out.append(line)
                pos.offset = end
            if pos.index == last:
                break  # possibly still being written: continue from the offset next poll
            pos.index, pos.offset = pos.index + 1, 0  # closed and read to its end: done
        return out

    def follow(
        self,
        emit: Callable[[Line], None],
        *,
        interval: float = 0.25,
        stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Call ``emit`` for each new line until ``stop()`` is true."""
        while not stop():
            for line in self.poll():
                emit(line)
            time.sleep(interval)
