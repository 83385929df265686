"""Failure modes found in review: races, forks, torn writes, foreign streams, hostile text."""

from __future__ import annotations

import errno
import io
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import (
    configure_logging,
    flush_logging,
    get_logger,
    get_logging_manager,
    get_logging_stats,
)
from plexichat.core.logging.sinks.console import ConsoleRenderer, ConsoleSink
from plexichat.core.logging.sinks.files import AsyncFileSink, SegmentWriter
from plexichat.core.logging.sinks.maintenance import (
    Maintenance,
    RetentionPolicy,
    apply_retention,
    compress_segment,
)
from plexichat.core.logging.sinks.segments import list_segments
from plexichat.core.logging.testing import read_log_records

QUIET: dict[str, Any] = {"console_enabled": False, "retention_age": "off"}


class _SlowStream(io.StringIO):
    """A console that takes its time, so a reconfiguration lands mid-call."""

    def write(self, text: str) -> int:
        time.sleep(0.002)
        return super().write(text)


def test_reconfigure_mid_call_loses_nothing(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Records whose call picked the old sinks are handed to the new ones, none lost."""
    monkeypatch.setattr(sys, "stderr", _SlowStream())
    configure_logging(directory=log_dir, retention_age="off", compression_enabled=False)
    logger = get_logger("race")
    done = threading.Event()

    def worker() -> None:
        for i in range(400):
            logger.security("rec %d", i)
        done.set()

    thread = threading.Thread(target=worker)
    thread.start()
    flips = 0
    while not done.is_set():
        configure_logging(non_blocking=bool(flips % 2))
        flips += 1
        time.sleep(0.005)
    thread.join()
    assert flush_logging(10)
    time.sleep(0.1)
    messages = [r["message"] for r in read_log_records(log_dir)]
    assert flips > 3
    assert sorted(messages) == sorted(f"rec {i}" for i in range(400))


def _child_logs(directory: str) -> None:
    logger = get_logger("mp.child")
    for i in range(100):
        logger.info("child %d", i)


def test_multiprocessing_fork_child_flushes_at_exit(log_dir: Path) -> None:
    """A multiprocessing (fork) child's queued records are written when it exits."""
    configure_logging(directory=log_dir, flush_interval=60, **QUIET)
    get_logger("mp.parent").info("parent")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_child_logs, args=(str(log_dir),)) for _ in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    flush_logging()
    messages = [r["message"] for r in read_log_records(log_dir)]
    assert messages.count("parent") == 1
    assert sorted(m for m in messages if m.startswith("child")) == sorted(
        f"child {i}" for i in range(100) for _ in range(2)
    )


def test_short_write_then_full_disk_never_tears_a_line(tmp_path: Path) -> None:
    """A line cut by ENOSPC is undone and written whole later, even across a rotation."""
    writer = SegmentWriter(tmp_path, rotation_size=900)
    real = os.write
    state = {"calls": 0}

    def flaky(fd: int, data: bytes | memoryview) -> int:
        state["calls"] += 1
        if state["calls"] == 3:
            return real(fd, bytes(data)[:17])  # a short write ...
        if state["calls"] == 4:
            raise OSError(errno.ENOSPC, "No space left on device")  # ... then a full disk
        return real(fd, data)

    writer.os_write = flaky
    import orjson

    events = [orjson.dumps({"timestamp": f"t{i:03d}", "message": f"m{i}"}) for i in range(30)]
    for i, data in enumerate(events):
        writer.write_one(20, data)
        if i == 5:
            writer._retry_at = 0.0  # retry now instead of a second later
    writer._retry_at = 0.0
    writer.flush_pending()
    writer.close()
    lines = [
        line for path in sorted(tmp_path.glob("*.jsonl")) for line in path.read_bytes().splitlines()
    ]
    records = [orjson.loads(line) for line in lines]  # every line is a whole record
    assert [r["message"] for r in records] == [f"m{i}" for i in range(30)]
    assert [r["seq"] for r in records] == list(range(1, 31))


def test_live_writer_of_another_process_is_never_compressed(tmp_path: Path) -> None:
    """Sweep and retention leave alone a segment another process is still writing."""
    script = (
        "import sys, time\n"
        "from plexichat.core.logging import configure_logging, get_logger\n"
        "configure_logging(directory=sys.argv[1], console_enabled=False, non_blocking=False)\n"
        "get_logger('live').info('still writing')\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        "get_logger('live').info('after the sweep')\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    try:
        assert proc.stdout.readline().strip() == b"ready"
        (segment,) = tmp_path.glob("*.jsonl")
        old = time.time() - 10 * 86400
        os.utime(segment, (old, old))
        maintenance = Maintenance(
            tmp_path, prefix="plexichat", compression="gzip", retention=RetentionPolicy(1.0)
        )
        maintenance.sweep()
        assert maintenance.wait_idle(10)
        assert apply_retention(tmp_path, RetentionPolicy(max_age=1.0)) == []
        assert segment.exists()
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        proc.stdin.close()
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
    assert [r["message"] for r in read_log_records(tmp_path)] == [
        "still writing",
        "after the sweep",
    ]


def test_foreign_host_streams_are_left_alone_while_recent(tmp_path: Path) -> None:
    """Another host's newest segment is in use while recently written, then ages out."""
    busy = tmp_path / "plexichat.otherhost12345678-1-abcdef.000001.jsonl"
    idle = tmp_path / "plexichat.otherhost12345678-2-abcdef.000001.jsonl"
    for path, age in ((busy, 3600.0), (idle, 10 * 86400.0)):
        path.write_bytes(b'{"timestamp":"x","message":"remote"}\n')
        os.utime(path, (time.time() - age, time.time() - age))
    assert apply_retention(tmp_path, RetentionPolicy(max_age=60.0)) == [idle]
    assert busy.exists()


def test_reconfigured_stream_gets_compressed(log_dir: Path) -> None:
    """The segment a reconfiguration closed is compressed by the new configuration's sweep."""
    configure_logging(directory=log_dir, compression_enabled=True, **QUIET)
    get_logger("re").info("first stream")
    flush_logging()
    configure_logging(level="DEBUG")
    maintenance = get_logging_manager().maintenance
    assert maintenance is not None
    assert maintenance.wait_idle(10)
    streams = list_segments(log_dir)
    compressed = [s for segs in streams.values() for s in segs if s.compression == "gzip"]
    assert len(compressed) == 1
    assert [r["message"] for r in read_log_records(log_dir)] == ["first stream"]


def test_relative_directory_survives_chdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative directory is fixed at configure time; a later chdir does not move logs."""
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    monkeypatch.chdir(first)
    configure_logging(directory="logs", non_blocking=False, **QUIET)
    monkeypatch.chdir(second)
    get_logger("cwd").info("where am I")
    assert [r["message"] for r in read_log_records(first / "logs")] == ["where am I"]
    assert not (second / "logs").exists()


def test_get_logger_survives_uninspectable_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError while checking the directory never escapes get_logger."""

    def refuse(self: Path, *args: Any, **kwargs: Any) -> bool:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "exists", refuse)
    logger = get_logger("perm")
    assert get_logging_manager().configured
    monkeypatch.undo()
    logger.info("still fine")


def test_no_python_caller_frame_still_logs(tmp_path: Path) -> None:
    """A level method called straight from C (an atexit callback) writes its record."""
    script = (
        "import atexit, sys\n"
        "from plexichat.core.logging import configure_logging, get_logger\n"
        "configure_logging(directory=sys.argv[1], console_enabled=False, non_blocking=False)\n"
        "atexit.register(get_logger('x').warning, 'bye from atexit')\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True)
    assert done.returncode == 0, done.stderr
    assert b"could not build" not in done.stderr
    assert [r["message"] for r in read_log_records(tmp_path)] == ["bye from atexit"]


def test_fork_while_console_lock_held_does_not_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A child forked while another thread held the console lock can still log."""
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    configure_logging(file_enabled=False)
    logger = get_logger("forklock")
    (console,) = [s for s in get_logging_manager().handler.sinks if isinstance(s, ConsoleSink)]
    release = threading.Event()
    holding = threading.Event()

    def hold() -> None:
        with console._lock:
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    holding.wait(5)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        logger.error("child can log")
        os._exit(0)
    release.set()
    thread.join()
    deadline = time.time() + 10
    while time.time() < deadline:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    pytest.fail("the forked child deadlocked on the console lock")


def test_full_queue_wakes_the_writer(log_dir: Path) -> None:
    """Even after a lost wake-up, a full queue wakes the writer instead of waiting 60 s."""
    configure_logging(directory=log_dir, queue_size=64, flush_interval=60, **QUIET)
    logger = get_logger("wake")
    (sink,) = get_logging_manager().handler.sinks
    assert isinstance(sink, AsyncFileSink)
    sink._signalled = True  # as if a wake-up had been missed
    for i in range(65):  # the 65th finds the queue full
        logger.info("burst %d", i)

    def handled() -> int:  # written or dropped: the queue empties before the batch is written
        stats = get_logging_stats()
        return int(stats["records"].get("INFO", 0) + stats["dropped"].get("INFO", 0))

    deadline = time.monotonic() + 10
    while handled() < 65 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handled() == 65  # written long before the 60 s interval
    assert get_logging_stats()["queue_depth"] == 0


def test_console_escapes_control_characters() -> None:
    """A message cannot forge a log line or send terminal escapes."""
    event = {
        "timestamp": "2024-01-15T10:30:45.123Z",
        "level": "INFO",
        "logger": "auth",
        "message": "login bob\n[2024-01-15 10:30:46] [AUDIT   ] admin: \x1b[2Jgranted",
        "context": {"user": "x\ny"},
    }
    text = ConsoleRenderer(show_context=True, utc=True).render(event)
    assert "\n" not in text
    assert "\x1b" not in text
    assert text == (
        "[2024-01-15 10:30:45] [INFO    ] auth: login bob\\n[2024-01-15 10:30:46] "
        "[AUDIT   ] admin: \\x1b[2Jgranted  user=x\\ny"
    )


def test_compression_is_durable_before_the_plain_segment_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compressed data is fsynced before its rename, and the directory after it, before
    the plain segment is removed: a power loss leaves one whole copy, never none."""
    path = tmp_path / "plexichat.h-1-abcdef.000001.jsonl"
    path.write_bytes(b'{"m":1}\n' * 1000)
    events: list[str] = []
    real_fsync, real_replace, real_unlink = os.fsync, os.replace, Path.unlink

    def fsync(fd: int) -> None:
        events.append("fsync dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync file")
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        events.append("rename")
        real_replace(src, dst)

    def unlink(self: Path, missing_ok: bool = False) -> None:
        events.append(f"unlink {self.suffix}")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    compress_segment(path, "gzip")
    assert events == ["fsync file", "rename", "fsync dir", "unlink .jsonl"]


def test_a_compression_killed_after_its_rename_is_finished_not_repeated(tmp_path: Path) -> None:
    """Killed between the rename and the unlink, a compression left the plain segment and
    its whole .gz; the next upkeep (configured for zstd) finishes it instead of making a
    .zst beside the .gz (two files claimed one segment). A twin of other content is stale:
    the plain segment is compressed and the twin replaced."""
    import gzip

    body = b'{"m":1}\n' * 1000
    path = tmp_path / "plexichat.h-1-abcdef.000001.jsonl"
    path.write_bytes(body)
    twin = path.with_name(path.name + ".gz")
    twin.write_bytes(gzip.compress(body))
    assert compress_segment(path, "zstd") == twin
    assert sorted(p.name for p in tmp_path.iterdir()) == [twin.name]

    other = tmp_path / "plexichat.h-1-abcdef.000002.jsonl"
    other.write_bytes(body)
    stale = other.with_name(other.name + ".gz")
    stale.write_bytes(gzip.compress(b'{"m":"older"}\n'))
    final = compress_segment(other, "zstd")
    assert final.name.endswith(".zst")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([twin.name, final.name])
    assert [r["m"] for r in read_log_records(tmp_path)] == [1] * 2000


def test_compressed_file_keeps_mode_and_leaves_no_temp(tmp_path: Path) -> None:
    """Compression keeps the segment's permissions and leaves no temporary file."""
    path = tmp_path / "plexichat.h-1-abcdef.000001.jsonl"
    path.write_bytes(b'{"m":1}\n' * 1000)
    os.chmod(path, 0o640)
    final = compress_segment(path, "gzip")
    assert oct(final.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def _child_configures(directory: str) -> None:
    configure_logging(directory=directory, flush_interval=60, console_enabled=False)
    logger = get_logger("mp.own")
    for i in range(50):
        logger.info("own %d", i)


@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_children_that_configure_themselves_flush_at_exit(log_dir: Path, method: str) -> None:
    """forkserver and spawn children that configure logging write their queue at exit."""
    ctx: Any = multiprocessing.get_context(method)
    proc = ctx.Process(target=_child_configures, args=(str(log_dir),))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    messages = [r["message"] for r in read_log_records(log_dir)]
    assert messages == [f"own {i}" for i in range(50)]


def test_locked_segment_of_a_dead_pid_is_kept(tmp_path: Path) -> None:
    """What protects a segment is its writer's lock, not a pid check (pids lie across
    containers): a held segment is neither compressed nor deleted."""
    import orjson

    from plexichat.core.logging._core.errors import SegmentBusyError
    from plexichat.core.logging.sinks.segments import _HOST

    writer = SegmentWriter(tmp_path)
    writer.stream = f"{_HOST}-4194303-abcdef"  # a pid that does not exist here
    writer._suffix = f',"stream":"{writer.stream}","seq":'.encode()
    writer.write_one(20, orjson.dumps({"timestamp": "t", "message": "held"}))
    assert writer.path is not None
    old = time.time() - 10 * 86400
    os.utime(writer.path, (old, old))
    with pytest.raises(SegmentBusyError):
        compress_segment(writer.path, "gzip")
    assert apply_retention(tmp_path, RetentionPolicy(max_age=60.0)) == []
    assert writer.path.exists()
    writer.close()
    assert apply_retention(tmp_path, RetentionPolicy(max_age=60.0)) == [writer.path]


def test_a_segment_created_but_not_yet_locked_is_not_compressed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's upkeep that looks between a writer's create and its lock finds an
    empty segment of a live stream: it leaves it alone (compressing it left an empty
    ``.gz`` that verification reports as a cut-off segment, seen with four processes)."""
    import orjson

    from plexichat.core.logging._core.errors import SegmentBusyError
    from plexichat.core.logging.sinks import segments

    real_lock = segments.lock_segment
    refused: list[str] = []

    def upkeep_first(fd: int) -> bool:
        (created,) = tmp_path.glob("*.jsonl")
        assert created.stat().st_size == 0
        with pytest.raises(SegmentBusyError):
            compress_segment(created, "gzip")
        assert apply_retention(tmp_path, RetentionPolicy(max_total_bytes=0)) == []
        refused.append(created.name)
        return real_lock(fd)

    monkeypatch.setattr("plexichat.core.logging.sinks.writer.lock_segment", upkeep_first)
    writer = SegmentWriter(tmp_path)
    writer.write_one(20, orjson.dumps({"timestamp": "t", "message": "kept"}))
    writer.close()
    assert writer.path is not None
    assert refused == [writer.path.name]  # the writer stayed in the segment it created
    assert sorted(p.name for p in tmp_path.iterdir()) == [writer.path.name]
    assert [r["message"] for r in read_log_records(tmp_path)] == ["kept"]


def test_application_level_on_third_party_logger_wins(log_dir: Path) -> None:
    """A level the application sets on a third-party logger survives later reconfigurations."""
    import logging

    configure_logging(directory=log_dir, **QUIET)
    noisy = logging.getLogger("urllib3")
    assert noisy.level == logging.WARNING
    noisy.setLevel(logging.DEBUG)
    for _ in range(3):
        configure_logging(level="INFO")
        assert noisy.level == logging.DEBUG


def test_bidi_and_zero_width_controls_are_escaped() -> None:
    """Bidirectional overrides and zero-width characters are shown, not obeyed."""
    from plexichat.core.logging.sinks.console import escape_controls

    assert escape_controls("user\u202eevil\u200b") == "user\\u202eevil\\u200b"
    assert escape_controls("plain é ü 漢字") == "plain é ü 漢字"


def test_flush_of_a_replaced_sink_reaches_its_successor(log_dir: Path) -> None:
    """Flushing a sink that a reconfiguration closed flushes the sink that replaced it."""
    configure_logging(directory=log_dir, flush_interval=60, **QUIET)
    (old,) = get_logging_manager().handler.sinks
    assert isinstance(old, AsyncFileSink)
    configure_logging(level="DEBUG")
    (new,) = get_logging_manager().handler.sinks
    old.write(20, {}, b'{"timestamp":"t","message":"late"}')  # a call that picked the old sink
    assert old.flush(5)
    assert [r["message"] for r in read_log_records(log_dir)] == ["late"]
    assert old.successor is new
