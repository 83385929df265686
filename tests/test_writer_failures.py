"""The segment writer under injected I/O faults: what is kept, dropped, retried, reopened."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.sinks import writer as files
from plexichat.core.logging.sinks.files import SegmentWriter
from plexichat.core.logging.sinks.maintenance import compress_segment
from plexichat.core.logging.sinks.reader import Line, StreamFollower
from plexichat.core.logging.testing import read_log_records


def _event(message: str) -> bytes:
    return orjson.dumps({"timestamp": "2024-01-15T10:30:45.000Z", "message": message})


class _Faults:
    """An os.write stand-in that fails while ``broken`` is set."""

    def __init__(self, err: int = errno.ENOSPC) -> None:
        self.broken = False
        self.err = err

    def __call__(self, fd: int, data: bytes | memoryview) -> int:
        if self.broken:
            raise OSError(self.err, os.strerror(self.err))
        return os.write(fd, data)


def _retry_now(writer: SegmentWriter) -> None:
    writer._retry_at = 0.0
    assert writer.flush_pending()


def test_overflowing_buffer_drops_oldest_low_levels_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the pending limit, the oldest INFO records go; SECURITY ones are kept."""
    monkeypatch.setattr(files, "PENDING_LIMIT", 3000)
    writer = SegmentWriter(tmp_path)
    faults = _Faults()
    writer.os_write = faults
    writer.write_one(20, _event("first, written"))
    faults.broken = True
    for i in range(20):
        writer.write_one(20, _event(f"info {i}"))
        writer.write_one(60, _event(f"security {i}"))
    assert writer.dropped[20] > 0
    assert 60 not in writer.dropped
    faults.broken = False
    _retry_now(writer)
    writer.close()
    messages = [r["message"] for r in read_log_records(tmp_path)]
    assert [m for m in messages if m.startswith("security")] == [f"security {i}" for i in range(20)]
    kept_info = [m for m in messages if m.startswith("info")]
    assert kept_info == [f"info {i}" for i in range(writer.dropped[20], 20)]  # newest kept
    assert len(messages) == 1 + 40 - writer.dropped[20]


def test_io_error_closes_and_reopens_the_segment(tmp_path: Path) -> None:
    """After an EIO the writer reopens its segment on retry and loses nothing."""
    writer = SegmentWriter(tmp_path)
    faults = _Faults(errno.EIO)
    writer.os_write = faults
    writer.write_one(20, _event("before"))
    faults.broken = True
    writer.write_one(20, _event("during"))
    assert writer._fd < 0  # closed after an error that is not a full disk
    faults.broken = False
    _retry_now(writer)
    writer.write_one(20, _event("after"))
    writer.close()
    assert [r["message"] for r in read_log_records(tmp_path)] == ["before", "during", "after"]
    assert len(list(tmp_path.glob("*.jsonl"))) == 1


def test_segment_compressed_during_an_outage_is_not_recreated(tmp_path: Path) -> None:
    """A writer whose segment vanished while it could not write continues in a new one."""
    writer = SegmentWriter(tmp_path)
    faults = _Faults(errno.EIO)
    writer.os_write = faults
    writer.write_one(20, _event("one"))
    first = writer.path
    assert first is not None
    faults.broken = True
    writer.write_one(20, _event("two"))
    compress_segment(first, "gzip")  # upkeep claims the closed file meanwhile
    faults.broken = False
    _retry_now(writer)
    writer.close()
    assert writer.path is not None
    assert writer.path != first
    assert not first.exists()
    assert [r["message"] for r in read_log_records(tmp_path)] == ["one", "two"]


def test_untruncatable_fragment_becomes_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When a torn line cannot be cut off, the next write starts on a fresh line."""
    writer = SegmentWriter(tmp_path)
    calls = {"n": 0}

    def torn(fd: int, data: bytes | memoryview) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            return os.write(fd, bytes(data)[:10])
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def no_truncate(fd: int, length: int) -> None:
        raise OSError(errno.EINVAL, "cannot truncate")

    monkeypatch.setattr(os, "ftruncate", no_truncate)
    writer.os_write = torn
    writer.write_one(20, _event("whole"))
    writer.write_one(20, _event("torn then retried"))
    _retry_now(writer)
    writer.write_one(20, _event("next"))
    writer.close()
    assert writer.path is not None
    lines = writer.path.read_bytes().split(b"\n")
    assert orjson.loads(lines[0])["message"] == "whole"
    assert not lines[1].endswith(b"}")  # the fragment, alone on its line
    assert [r["message"] for r in read_log_records(tmp_path)] == [
        "whole",
        "torn then retried",
        "next",
    ]


def test_closed_writer_refuses_to_reopen(tmp_path: Path) -> None:
    """Records reaching a closed writer are counted as dropped; the file stays closed."""
    writer = SegmentWriter(tmp_path)
    writer.write_one(20, _event("kept"))
    writer.close()
    writer.write_batch([(20, _event("too late"))])
    assert writer._fd < 0
    assert writer.dropped == {20: 1}
    assert error_reporter.counts["closed-writer"] == 1
    assert [r["message"] for r in read_log_records(tmp_path)] == ["kept"]


def test_follow_loop_emits_until_stopped(tmp_path: Path) -> None:
    """follow() calls back for every new line and returns once stop() says so."""
    writer = SegmentWriter(tmp_path)
    follower = StreamFollower(tmp_path)
    follower.start_at_end()
    seen: list[Line] = []
    done = threading.Event()
    thread = threading.Thread(
        target=follower.follow, args=(seen.append,), kwargs={"interval": 0.01, "stop": done.is_set}
    )
    thread.start()
    for i in range(5):
        writer.write_one(20, _event(f"live {i}"))
    deadline = threading.Event()
    for _ in range(500):
        if len(seen) == 5:
            break
        deadline.wait(0.01)
    done.set()
    thread.join(5)
    writer.close()
    assert not thread.is_alive()
    assert [line.record["message"] for line in seen if line.record] == [
        f"live {i}" for i in range(5)
    ]
