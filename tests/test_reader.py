"""Reading a log directory back: merge, tail, follow across rotation and compression."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from plexichat.core.logging.sinks.files import SegmentWriter
from plexichat.core.logging.sinks.maintenance import compress_segment
from plexichat.core.logging.sinks.reader import Line, StreamFollower, read_directory, tail_lines


def _event(n: int) -> bytes:
    ts = f"2024-01-15T10:30:{n // 1000:02d}.{n % 1000:03d}Z"
    return orjson.dumps({"timestamp": ts, "level": "INFO", "message": f"m{n}", "logger": "r"})


def _messages(lines: list[Line]) -> list[str]:
    return [line.record["message"] for line in lines if line.record]


def test_follower_sees_new_lines_and_new_segments(tmp_path: Path) -> None:
    """poll() returns only what was written since the last poll, across a rotation."""
    writer = SegmentWriter(tmp_path, rotation_size=600)
    writer.write_batch([(20, _event(1))])
    follower = StreamFollower(tmp_path)
    follower.start_at_end()
    assert follower.poll() == []
    writer.write_batch([(20, _event(n)) for n in range(2, 12)])
    assert len(list(tmp_path.iterdir())) > 1  # rotated meanwhile
    assert _messages(follower.poll()) == [f"m{n}" for n in range(2, 12)]
    writer.write_batch([(20, _event(12))])
    assert _messages(follower.poll()) == ["m12"]
    writer.close()


@pytest.mark.parametrize("method", ["gzip", "zstd"])
def test_follower_finishes_a_segment_compressed_under_it(tmp_path: Path, method: str) -> None:
    """A followed segment that gets compressed is finished from the compressed file."""
    writer = SegmentWriter(tmp_path, rotation_size=400)
    writer.write_batch([(20, _event(1))])
    follower = StreamFollower(tmp_path)
    assert _messages(follower.poll()) == ["m1"]
    first = writer.path
    assert first is not None
    writer.write_batch([(20, _event(n)) for n in range(2, 8)])
    compress_segment(first, method)
    assert not first.exists()
    assert _messages(follower.poll()) == [f"m{n}" for n in range(2, 8)]
    writer.close()


def test_partial_line_waits_until_complete(tmp_path: Path) -> None:
    """A line still being written is returned once its newline arrives, never half."""
    writer = SegmentWriter(tmp_path)
    writer.write_batch([(20, _event(1))])
    assert writer.path is not None
    follower = StreamFollower(tmp_path)
    assert _messages(follower.poll()) == ["m1"]
    line = orjson.dumps({"timestamp": "2024-01-15T10:31:00.000Z", "message": "late"}) + b"\n"
    with writer.path.open("ab") as fh:
        fh.write(line[:10])
        fh.flush()
        assert follower.poll() == []
        fh.write(line[10:])
    assert _messages(follower.poll()) == ["late"]


def test_tail_lines_reaches_into_compressed_segments(tmp_path: Path) -> None:
    """tail_lines collects the last lines across plain and compressed segments."""
    writer = SegmentWriter(tmp_path, rotation_size=300)
    for n in range(20):
        writer.write_batch([(20, _event(n))])
    writer.close()
    for path in sorted(tmp_path.glob("*.jsonl"))[:-1]:
        compress_segment(path, "gzip")
    assert _messages(tail_lines(tmp_path, 5)) == [f"m{n}" for n in range(15, 20)]
    assert _messages(list(read_directory(tmp_path))) == [f"m{n}" for n in range(20)]
    assert tail_lines(tmp_path, 0) == []


def test_damaged_compressed_segment_is_skipped(tmp_path: Path) -> None:
    """A corrupt .gz segment does not stop the reader from reading the others."""
    writer = SegmentWriter(tmp_path, rotation_size=300)
    for n in range(10):
        writer.write_batch([(20, _event(n))])
    writer.close()
    paths = sorted(tmp_path.glob("*.jsonl"))
    broken = compress_segment(paths[0], "gzip")
    broken.write_bytes(b"\x1f\x8b not really gzip")
    messages = _messages(list(read_directory(tmp_path)))
    assert messages
    assert "m9" in messages


def test_text_segments_read_as_raw_lines(tmp_path: Path) -> None:
    """.log (text) segments come back as raw lines without a parsed record."""
    writer = SegmentWriter(tmp_path, structured=False)
    writer.write_batch([(20, b"[2024-01-15 10:30:45] [INFO    ] t: hello")])
    writer.close()
    (line,) = list(read_directory(tmp_path))
    assert line.record is None
    assert line.raw == b"[2024-01-15 10:30:45] [INFO    ] t: hello\n"


def test_damaged_zst_segment_does_not_stop_tail_or_read(tmp_path: Path) -> None:
    """A .zst segment of random bytes (zstd's own error type used to escape) is passed
    over: read_directory, tail_lines and a follower still return every other line."""
    import os

    writer = SegmentWriter(tmp_path)
    writer.write_batch([(20, _event(n)) for n in range(5)])
    writer.close()
    (tmp_path / "plexichat.aaa-1-abc.000001.jsonl.zst").write_bytes(os.urandom(300))
    expected = [f"m{n}" for n in range(5)]
    assert _messages(list(read_directory(tmp_path))) == expected
    assert _messages(tail_lines(tmp_path, 10)) == expected
    follower = StreamFollower(tmp_path)
    follower.start_at_end()
    assert follower.poll() == []


def test_reader_skips_a_line_too_long_to_read_whole(tmp_path: Path) -> None:
    """A line over the reader's limit (10 MiB) is skipped, the lines around it are read."""
    writer = SegmentWriter(tmp_path)
    writer.write_batch([(20, _event(1))])
    writer.close()
    assert writer.path is not None
    with writer.path.open("ab") as fh:
        fh.write(b'{"message":"' + b"x" * (10 * 1024 * 1024 + 10) + b'"}\n')
        fh.write(_event(2) + b"\n")
    lines = list(read_directory(tmp_path))
    assert [len(line.raw) < 1024 for line in lines] == [True, True]
    assert _messages(lines) == ["m1", "m2"]
