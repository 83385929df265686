"""A directory listing is not atomic: taken while upkeep compresses segment ``X`` (writes
``X.gz``, then removes ``X``), one listing can hold neither name. Readers must not lose the
segment: ``list_segments`` looks missing indices up by name, and a follower never skips a
segment it has not read because one listing lacked it."""

from __future__ import annotations

import collections
import os
import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from plexichat.core.logging.sinks import reader as reader_module
from plexichat.core.logging.sinks import segments as segments_module
from plexichat.core.logging.sinks.maintenance import compress_segment
from plexichat.core.logging.sinks.reader import Line, StreamFollower, read_directory
from plexichat.core.logging.sinks.segments import (
    Segment,
    iter_lines,
    list_segments,
    scan_segments,
)
from plexichat.core.logging.sinks.writer import SegmentWriter

from .integrity._util import sealed_dir, verify


def _event(n: int, **extra: Any) -> bytes:
    ts = f"2024-01-15T10:{n // 60000:02d}:{n // 1000 % 60:02d}.{n % 1000:03d}Z"
    return orjson.dumps({"timestamp": ts, "message": f"m{n}", **extra})


def _numbers(lines: list[Line]) -> list[int]:
    return [int(line.record["message"][1:]) for line in lines if line.record]


def _write_until(writer: SegmentWriter, start: int, index: int) -> int:
    """Write records numbered from ``start`` until the writer is in segment ``index``;
    the number of the next record."""
    n = start
    while writer.index < index or writer.path is None:
        writer.write_batch([(20, _event(n))])
        n += 1
    return n


def _hide(monkeypatch: pytest.MonkeyPatch, directory: Path, *indices: int, times: int = 1) -> None:
    """Make the next ``times`` listings of ``directory`` miss every name (plain or
    compressed) of the given segment indices: what a listing racing a compression sees."""
    real = os.scandir
    left = [times]
    marks = tuple(f".{index:06d}." for index in indices)

    def scandir(path: Any = ".") -> Any:
        if Path(path) != directory or left[0] <= 0:
            return real(path)
        left[0] -= 1
        with real(path) as entries:
            return [e for e in entries if not any(mark in e.name for mark in marks)]

    monkeypatch.setattr(os, "scandir", scandir)


def _indices(directory: Path) -> list[int]:
    (segs,) = list_segments(directory).values()
    return [seg.index for seg in segs]


def test_list_segments_finds_a_segment_the_listing_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment missing from the listing between two listed ones is looked up by name:
    found compressed, or plain while both exist (plain preferred); readers and a follower
    see each of its records once. A segment really deleted stays a hole."""
    writer = SegmentWriter(tmp_path, rotation_size=300)
    total = _write_until(writer, 0, 4)
    writer.close()
    second = next(tmp_path.glob("*.000002.jsonl"))
    gz = compress_segment(second, "gzip")

    _hide(monkeypatch, tmp_path, 2)
    (segs,) = list_segments(tmp_path).values()
    assert [seg.index for seg in segs] == [1, 2, 3, 4]
    assert segs[1].path == gz

    _hide(monkeypatch, tmp_path, 2, times=2)
    assert _numbers(list(read_directory(tmp_path))) == list(range(total))
    assert _numbers(StreamFollower(tmp_path).poll()) == list(range(total))

    # mid-compression: both names exist; the listing missed both, the plain one is taken
    shutil.copyfile(gz, second)
    _hide(monkeypatch, tmp_path, 2)
    (segs,) = list_segments(tmp_path).values()
    assert segs[1].path == second
    assert segs[1].compression is None
    second.unlink()

    # the verifier's own listing (every file, any prefix) gets the same look-up
    _hide(monkeypatch, tmp_path, 3)
    assert sorted(seg.index for seg in scan_segments(tmp_path)) == [1, 2, 3, 4]

    gz.unlink()  # deleted (retention): no name to find, the hole stays
    assert _indices(tmp_path) == [1, 3, 4]


def test_follower_finishes_its_segment_when_a_listing_misses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follower is part way through a segment that gets compressed, and the next
    listing holds neither of its names (only later segments): it still finishes it."""
    writer = SegmentWriter(tmp_path, rotation_size=300)
    writer.write_batch([(20, _event(0))])
    follower = StreamFollower(tmp_path)
    assert _numbers(follower.poll()) == [0]
    first = writer.path
    assert first is not None
    total = _write_until(writer, 1, 3)
    compress_segment(first, "gzip")
    _hide(monkeypatch, tmp_path, 1)
    assert _numbers(follower.poll()) == list(range(1, total))
    assert follower.poll() == []
    writer.close()


def _content(directory: Path, index: int) -> list[int]:
    """The record numbers in segment ``index`` (plain, not compressed)."""
    (path,) = directory.glob(f"*.{index:06d}.jsonl")
    return [int(orjson.loads(raw)["message"][1:]) for _, raw in iter_lines(path)]


def test_follower_waits_for_a_segment_missing_from_a_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even when a poll finds a segment neither listed nor by name, the follower does not
    go past it: the later segments wait for the next poll, and every record comes out
    once, in order. Only a segment still missing poll after poll is taken as deleted."""
    writer = SegmentWriter(tmp_path, rotation_size=300)
    total = _write_until(writer, 0, 4)
    listing = segments_module.list_segments
    finding = segments_module.find_segment
    blind = [True]

    def list_without_2(directory: Path, prefix: str | None = None) -> dict[str, list[Segment]]:
        streams = listing(directory, prefix)
        if blind[0]:
            streams = {s: [g for g in segs if g.index != 2] for s, segs in streams.items()}
        return streams

    def find_not_2(like: Segment, index: int) -> Segment | None:
        return None if blind[0] and index == 2 else finding(like, index)

    monkeypatch.setattr(reader_module, "list_segments", list_without_2)
    monkeypatch.setattr(reader_module, "find_segment", find_not_2)
    follower = StreamFollower(tmp_path)
    first = _content(tmp_path, 1)
    assert _numbers(follower.poll()) == first  # segment 1 only: 2 is awaited
    blind[0] = False
    assert _numbers(follower.poll()) == list(range(len(first), total))
    assert follower.poll() == []

    # a segment deleted (never read) between two others is given up after a few polls
    end = _write_until(writer, total, 6)
    lost = _content(tmp_path, 5)
    next(tmp_path.glob("*.000005.jsonl")).unlink()
    got: list[int] = []
    for _ in range(reader_module._HOLE_POLLS):
        got += _numbers(follower.poll())
    assert got == [n for n in range(total, end) if n not in lost]

    # the oldest segments deleted under the follower: given up at the next poll already
    last = _write_until(writer, end, 8)
    kept = _content(tmp_path, 8)
    for path in tmp_path.glob("*.jsonl"):  # retention: every segment before 8
        if not path.name.endswith(".000008.jsonl"):
            path.unlink()
    assert _numbers(follower.poll()) == []
    assert _numbers(follower.poll()) == kept == list(range(kept[0], last))
    writer.close()


def test_verifier_does_not_report_a_gap_for_a_segment_the_listing_missed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verifier lists the directory itself: a segment missing from its listings
    (compressed meanwhile) is found by name, not reported as a GAP."""
    log_dir, key = sealed_dir(tmp_path, 60, compress="gzip")
    assert verify(log_dir, key).ok
    _hide(monkeypatch, log_dir, 2, times=1000)
    report = verify(log_dir, key)
    assert report.ok, report.findings


def _run_race(directory: Path, writers: int, records: int) -> collections.Counter[tuple[int, int]]:
    """Writers rotate small segments, two threads compress each closed one at once, and a
    follower polls all along (and twice after): what it emitted, per (writer, record)."""
    for i in range(1000):  # a big directory: a listing takes several reads of it
        (directory / f"other-{i:04d}.txt").touch()
    closed: queue.Queue[Path | None] = queue.Queue()

    def write(w: int) -> None:
        out = SegmentWriter(directory, rotation_size=1024, on_rotate=closed.put)
        for n in range(records):
            out.write_batch([(20, _event(n, w=w))])
        out.close()

    def compress() -> None:
        while (path := closed.get()) is not None:
            compress_segment(path, "gzip")

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    compressors = [threading.Thread(target=compress) for _ in range(2)]
    for thread in threads + compressors:
        thread.start()
    follower = StreamFollower(directory)
    seen: collections.Counter[tuple[int, int]] = collections.Counter()

    def take(poll: Callable[[], list[Line]]) -> None:
        for line in poll():
            assert line.record is not None
            seen[(line.record["w"], int(line.record["message"][1:]))] += 1

    try:
        while any(thread.is_alive() for thread in threads):
            take(follower.poll)
    finally:
        for thread in threads:
            thread.join()
        for _ in compressors:
            closed.put(None)
        for thread in compressors:
            thread.join()
    take(follower.poll)
    take(follower.poll)
    return seen


def test_follower_emits_every_record_once_while_segments_are_compressed(
    tmp_path: Path,
) -> None:
    """Real concurrency: writers rotate every ~1 KB and their segments are compressed as
    soon as they close, while a follower polls without pause. Every record comes out
    exactly once (no segment skipped for a listing that missed it, none read twice)."""
    writers, records = 3, 2000
    seen = _run_race(tmp_path, writers, records)
    expected = {(w, n) for w in range(writers) for n in range(records)}
    assert set(seen) == expected, f"{len(expected - set(seen))} records never emitted"
    assert [key for key, count in seen.items() if count > 1] == []
