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
from .segments import OversizedLine, Segment, compressed_successor, list_segments
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


def _read_segment(seg: Segment) -> tuple[list[Line], Segment, int]:
    """All complete lines of a segment, the segment actually read (it may have been
    compressed meanwhile) and the offset after the last complete line."""
    lines: list[Line] = []
    end = 0
    read = seg
    for end, line, read in _segment_lines(seg):  # noqa: B007 - end, read used after the loop
        lines.append(line)
    return lines, read, end


@dataclass
class _Position:
    segment: Segment
    offset: int


@dataclass
class StreamFollower:
    """Follows a directory: each :meth:`poll` returns the lines written since the last one.

    New streams and new segments are picked up; a segment compressed while being followed is
    finished from its compressed file; lines come back merged by time within each poll.
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
                lines, read, end = _read_segment(seg)
                if seg is segs[-1]:
                    self._pos[stream] = _Position(read, end)
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
            self._pos[stream] = _Position(last, end)

    def poll(self) -> list[Line]:
        """Return the complete lines written since the last poll, merged by time."""
        out: list[Line] = []
        for stream, segs in list_segments(self.directory, self.prefix).items():
            pos = self._pos.get(stream)
            for seg in segs:
                if pos is not None and seg.index < pos.segment.index:
                    continue
                offset = pos.offset if pos is not None and seg.index == pos.segment.index else 0
                end, read = offset, seg
                for end, line, read in _segment_lines(seg, offset):  # noqa: B007 - used after the loop
                    out.append(line)
                pos = _Position(read, end)
                self._pos[stream] = pos
        out.sort(key=lambda line: line.sort_key)
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
