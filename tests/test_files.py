"""Segment files: rotation, compression, retention, queue limits, failures and forks."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
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
from plexichat.core.logging.sinks.files import SegmentWriter
from plexichat.core.logging.sinks.maintenance import RetentionPolicy, apply_retention
from plexichat.core.logging.sinks.segments import list_segments
from plexichat.core.logging.testing import read_log_records

QUIET: dict[str, Any] = {
    "console_enabled": False,
    "compression_enabled": False,
    "retention_age": "off",
}


def _segments(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if ".jsonl" in p.name or p.suffix == ".log")


def _wait_maintenance() -> None:
    maintenance = get_logging_manager().maintenance
    assert maintenance is not None
    assert maintenance.wait_idle(10)


def test_sync_mode_record_on_disk_when_call_returns(log_dir: Path) -> None:
    """In sync mode the line is in the file before the logging call returns."""
    configure_logging(directory=log_dir, non_blocking=False, **QUIET)
    get_logger("s").info("durable")
    (path,) = _segments(log_dir)
    assert b'"message":"durable"' in path.read_bytes()


def test_flush_waits_for_non_blocking_writer(log_dir: Path) -> None:
    """A queued record reaches the file at flush_logging(), not before the interval."""
    configure_logging(directory=log_dir, non_blocking=True, flush_interval=60, **QUIET)
    get_logger("nb").info("queued")
    time.sleep(0.05)
    assert (
        not log_dir.exists() or _segments(log_dir) == [] or not _segments(log_dir)[0].stat().st_size
    )
    assert flush_logging(5.0)
    assert [r["message"] for r in read_log_records(log_dir)] == ["queued"]


def test_rotation_by_size_keeps_order_and_seq(log_dir: Path) -> None:
    """Segments stay under the size limit and seq runs on across rotations."""
    configure_logging(directory=log_dir, rotation_size="2 KB", non_blocking=False, **QUIET)
    logger = get_logger("rot")
    for i in range(100):
        logger.info("record %03d", i, pad="x" * 50)
    paths = _segments(log_dir)
    assert len(paths) > 5
    assert all(p.stat().st_size <= 2000 for p in paths)
    records = read_log_records(log_dir)
    assert [r["message"] for r in records] == [f"record {i:03d}" for i in range(100)]
    assert [r["seq"] for r in records] == list(range(1, 101))
    assert len({r["stream"] for r in records}) == 1


def test_rotation_by_time(log_dir: Path) -> None:
    """A segment older than rotation_interval is closed at the next write."""
    configure_logging(directory=log_dir, rotation_interval=0.2, non_blocking=False, **QUIET)
    logger = get_logger("time")
    logger.info("first")
    time.sleep(0.3)
    logger.info("second")
    paths = _segments(log_dir)
    assert len(paths) == 2
    assert b"first" in paths[0].read_bytes()
    assert b"second" in paths[1].read_bytes()


@pytest.mark.parametrize("method", ["gzip", "zstd"])
def test_rotated_segments_are_compressed(log_dir: Path, method: str) -> None:
    """Closed segments are compressed in the background; nothing is lost or doubled."""
    opts = {**QUIET, "compression_enabled": True}
    configure_logging(
        directory=log_dir, rotation_size="4 KB", compression=method, non_blocking=False, **opts
    )
    logger = get_logger("comp")
    for i in range(200):
        logger.info("compress me %d", i)
    _wait_maintenance()
    suffix = ".gz" if method == "gzip" else ".zst"
    names = [p.name for p in _segments(log_dir)]
    assert sum(n.endswith(suffix) for n in names) == len(names) - 1
    assert names[-1].endswith(".jsonl")
    assert [r["message"] for r in read_log_records(log_dir)] == [
        f"compress me {i}" for i in range(200)
    ]


def test_retention_by_total_size_keeps_active_segment(log_dir: Path) -> None:
    """Oldest closed segments go when the directory exceeds retention_size."""
    configure_logging(
        directory=log_dir,
        rotation_size="2 KB",
        retention_size="6 KB",
        non_blocking=False,
        console_enabled=False,
        compression_enabled=False,
    )
    logger = get_logger("ret")
    for i in range(300):
        logger.info("retained? %d", i)
    _wait_maintenance()
    total = sum(p.stat().st_size for p in _segments(log_dir))
    assert total <= 6000 + 2000
    records = read_log_records(log_dir)
    assert records[-1]["message"] == "retained? 299"
    assert len(records) < 300
    assert get_logging_stats()["deleted_segments"] > 0


def _fake_dead_segment(directory: Path, index: int, age: float, compressed: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    from plexichat.core.logging.sinks.segments import _HOST

    name = f"plexichat.{_HOST}-4194303-abcdef.{index:06d}.jsonl"
    path = directory / name
    line = b'{"timestamp":"2020-01-01T00:00:00.000Z","level":"INFO","message":"old"}\n'
    if compressed:
        path = path.with_name(name + ".gz")
        path.write_bytes(gzip.compress(line))
    else:
        path.write_bytes(line)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))
    return path


def test_retention_by_age_and_dry_run(log_dir: Path) -> None:
    """Segments older than the age limit are listed by dry run, then deleted."""
    old = _fake_dead_segment(log_dir, 1, age=7200, compressed=True)
    recent = _fake_dead_segment(log_dir, 2, age=10)
    policy = RetentionPolicy(max_age=3600)
    assert apply_retention(log_dir, policy, dry_run=True) == [old]
    assert old.exists()
    assert apply_retention(log_dir, policy) == [old]
    assert not old.exists()
    assert recent.exists()


def test_startup_sweep_compresses_dead_streams(log_dir: Path) -> None:
    """Uncompressed segments left by a dead process are compressed at start-up."""
    leftover = _fake_dead_segment(log_dir, 1, age=5)
    configure_logging(directory=log_dir, console_enabled=False, compression_enabled=True)
    _wait_maintenance()
    assert not leftover.exists()
    assert leftover.with_name(leftover.name + ".gz").exists()


def test_full_queue_drops_low_levels_but_never_security(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """With the writer stalled, INFO records are dropped and counted (and said once on
    stderr); SECURITY ones wait."""
    gate = threading.Event()
    real = SegmentWriter.write_batch

    def stalled(self: SegmentWriter, items: list[tuple[int, bytes]]) -> None:
        gate.wait(10)
        real(self, items)

    monkeypatch.setattr(SegmentWriter, "write_batch", stalled)
    configure_logging(directory=log_dir, queue_size=16, flush_interval=0.01, **QUIET)
    logger = get_logger("full")
    for i in range(200):
        logger.info("info %d", i)

    def security_burst() -> None:
        for i in range(40):
            logger.security("sec %d", i)

    sec = threading.Thread(target=security_burst)
    sec.start()
    time.sleep(0.2)
    assert sec.is_alive()  # blocked: waiting for room, not dropping
    gate.set()
    sec.join(10)
    assert flush_logging(10)
    records = read_log_records(log_dir)
    stats = get_logging_stats()
    infos = [r for r in records if r["level"] == "INFO"]
    assert [r["message"] for r in records if r["level"] == "SECURITY"] == [
        f"sec {i}" for i in range(40)
    ]
    assert len(infos) + stats["dropped"]["INFO"] == 200
    assert stats["dropped"]["INFO"] > 0
    assert "SECURITY" not in stats["dropped"]
    err = capfd.readouterr().err
    assert err.count("the log queue is full (queue_size=16)") == 1
    assert "PLEXICHAT_LOG_QUEUE_SIZE" in err


def test_reconfigure_under_load_loses_nothing(log_dir: Path) -> None:
    """Records logged by threads while the configuration changes are all written once."""
    configure_logging(directory=log_dir, queue_size=1_000_000, **QUIET)
    logger = get_logger("load")
    stop = threading.Event()

    def worker(n: int) -> None:
        for i in range(3000):
            logger.info("w%d-%d", n, i)
        stop.set()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for flip in range(6):
        configure_logging(non_blocking=bool(flip % 2), rotation_size=f"{20 + flip} KB")
    for t in threads:
        t.join()
    assert flush_logging(10)
    messages = [r["message"] for r in read_log_records(log_dir)]
    assert len(messages) == 12000
    assert set(messages) == {f"w{n}-{i}" for n in range(4) for i in range(3000)}


def test_stats_count_levels_and_bytes(log_dir: Path) -> None:
    """get_logging_stats counts records per level and the bytes in the files."""
    configure_logging(directory=log_dir, level="DEBUG", **QUIET)
    logger = get_logger("stats")
    logger.debug("d")
    logger.info("i")
    logger.info("i2")
    logger.audit("a")
    flush_logging()
    stats = get_logging_stats()
    assert stats["records"] == {"DEBUG": 1, "INFO": 2, "AUDIT": 1}
    assert stats["bytes_written"] == sum(p.stat().st_size for p in _segments(log_dir))
    assert stats["queue_depth"] == 0
    assert stats["dropped_total"] == 0


def test_text_segments_when_structured_disabled(log_dir: Path) -> None:
    """structured_enabled=false writes console-format text lines to .log segments."""
    configure_logging(directory=log_dir, structured_enabled=False, non_blocking=False, **QUIET)
    get_logger("txt").warning("plain %s", "text", user="u")
    (path,) = _segments(log_dir)
    assert path.name.endswith(".log")
    line = path.read_text()
    assert line.endswith("] [WARNING ] txt: plain text  user=u\n")


def test_unwritable_directory_reports_once_and_console_continues(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A directory that cannot be created gives one stderr message; logging goes on."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the log directory should be")
    configure_logging(directory=blocker / "logs", non_blocking=False, console_utc=True)
    logger = get_logger("nodir")
    for i in range(5):
        logger.error("still on console %d", i)
    err = capfd.readouterr().err
    assert err.count("cannot write log file") == 1
    assert str(blocker / "logs") in err
    assert err.count("still on console") == 5
    assert get_logging_stats()["errors"]["file-write"] >= 1


def test_torn_last_line_is_skipped(log_dir: Path) -> None:
    """A partial last line (crash mid-write) never breaks the reader."""
    configure_logging(directory=log_dir, non_blocking=False, **QUIET)
    get_logger("torn").info("whole")
    (path,) = _segments(log_dir)
    with path.open("ab") as fh:
        fh.write(b'{"timestamp":"2030-01-01T00:00:00.000Z","level":"INFO","mess')
    assert [r["message"] for r in read_log_records(log_dir)] == ["whole"]


def test_forked_child_writes_its_own_stream(log_dir: Path) -> None:
    """After fork the child writes a new stream; the parent's queue is not duplicated."""
    configure_logging(directory=log_dir, flush_interval=60, **QUIET)
    logger = get_logger("fork")
    logger.info("parent before fork")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        try:
            logger.info("from child")
            flush_logging(5)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    logger.info("parent after fork")
    flush_logging()
    records = read_log_records(log_dir)
    messages = sorted(r["message"] for r in records)
    assert messages == ["from child", "parent after fork", "parent before fork"]
    streams = {r["message"]: r["stream"] for r in records}
    assert streams["from child"] != streams["parent before fork"]
    assert str(pid) in streams["from child"]


@pytest.fixture
def small_disk(tmp_path: Path) -> object:
    """A 512 KiB tmpfs (root only): a real full disk."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the disk-full test needs root and mount(8) in CI")
        pytest.skip("mounting a tmpfs needs root; the disk-full test runs in CI as root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount tmpfs in CI: {done.stderr.decode()}")
        pytest.skip(f"cannot mount tmpfs here: {done.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_recovers_without_loss(
    small_disk: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """On a full disk: one message, no crash; writing resumes with nothing lost once freed."""
    log_dir = small_disk / "logs"
    ballast = small_disk / "ballast"
    log_dir.mkdir()
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    configure_logging(directory=log_dir, non_blocking=False, **QUIET)
    logger = get_logger("disk")
    for i in range(50):
        logger.info("during full disk %d", i)
    assert capfd.readouterr().err.count("cannot write log file") == 1
    assert flush_logging() is False  # records are held back, not written
    ballast.unlink()
    time.sleep(1.1)
    for i in range(50):
        logger.info("after freeing %d", i)
    flush_logging()
    messages = [r["message"] for r in read_log_records(log_dir)]
    expected = [f"during full disk {i}" for i in range(50)] + [
        f"after freeing {i}" for i in range(50)
    ]
    assert messages == expected
    assert "works again" in capfd.readouterr().err


def test_list_segments_groups_by_stream(log_dir: Path) -> None:
    """list_segments groups files per stream ordered by index and ignores other files."""
    configure_logging(directory=log_dir, rotation_size="1 KB", non_blocking=False, **QUIET)
    for i in range(30):
        get_logger("ls").info("line %d", i)
    (log_dir / "notes.txt").write_text("not a segment")
    (streams,) = list_segments(log_dir).values()
    assert [s.index for s in streams] == list(range(1, len(streams) + 1))


def test_directory_that_is_a_file_is_rejected_at_configure(tmp_path: Path) -> None:
    """configure_logging refuses a directory path that is an existing regular file."""
    from plexichat.core.logging import ConfigError

    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(
        ConfigError, match=r"directory='.*taken' \(from code\): it exists and is not"
    ):
        configure_logging(directory=target)
