"""The writer's side: what it seals, when it checkpoints, and how crashes and failures show."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging import configure_logging, flush_logging, get_logger, shutdown_logging
from plexichat.core.logging._core.clock import iso_utc
from plexichat.core.logging.integrity import verify_directory
from plexichat.core.logging.integrity._sealer import IntegrityOptions
from plexichat.core.logging.sinks import writer as writer_module
from plexichat.core.logging.sinks.maintenance import RetentionPolicy, apply_retention
from plexichat.core.logging.sinks.writer import SegmentWriter
from plexichat.core.logging.testing import read_log_records

from ._util import QUIET, kinds, read_lines, sealed_dir, segments, verify


def test_every_line_is_tagged_and_segments_start_with_a_header(tmp_path: Path) -> None:
    """Each record ends with its tag; each segment starts with a header, ends sealed."""
    log_dir, _ = sealed_dir(tmp_path, 30)
    for path in segments(log_dir):
        lines = read_lines(path)
        assert lines[0].startswith(b'{"$integrity":"header"')
        assert lines[-1].startswith(b'{"$integrity":"checkpoint"')
        for line in lines:
            assert line.endswith(b'"}\n')
            record = orjson.loads(line)
            assert len(record["tag"]) == 32


def test_readers_never_see_control_lines(tmp_path: Path) -> None:
    """read_log_records (and so tail and the indexer) return the records only."""
    log_dir, _ = sealed_dir(tmp_path, 25)
    records = read_log_records(log_dir)
    assert [r["message"] for r in records] == [f"record {i:04d}" for i in range(25)]
    assert all("$integrity" not in r for r in records)


def test_keys_are_private_and_the_auditor_notice_is_printed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys/ is 0700, the key files 0600; stderr says the auditor key belongs off the host."""
    log_dir, _ = sealed_dir(tmp_path, 3, offline_key=False)
    keys = log_dir / "keys"
    assert keys.stat().st_mode & 0o777 == 0o700
    assert (keys / "auditor.key").stat().st_mode & 0o777 == 0o600
    assert (keys / "host.state").stat().st_mode & 0o777 == 0o600
    err = capsys.readouterr().err
    assert err.count("OFF this host") == 1
    sealed_dir(tmp_path / "again", 3, offline_key=False)
    configure_logging(directory=log_dir, **QUIET)  # same directory again: no second notice
    get_logger("x").info("again")
    shutdown_logging()
    assert capsys.readouterr().err.count("OFF this host") == 1  # only the new directory's


def test_the_non_blocking_writer_seals_too(tmp_path: Path) -> None:
    """The background writer's batches are sealed and verify."""
    log_dir, key = sealed_dir(tmp_path, 500, non_blocking=True, rotation="16 KB")
    report = verify(log_dir, key)
    assert report.ok, report.findings
    assert report.records == 500


def test_checkpoints_come_on_time_without_further_logging(tmp_path: Path) -> None:
    """With a short interval, a checkpoint follows the last record even if nothing else is
    logged (the sync sink's ticker), and a live stream verifies without false alarms."""
    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, integrity_checkpoint_interval="100 ms", **QUIET)
    get_logger("tick").info("only one")
    path = segments(log_dir)[0]
    deadline = time.monotonic() + 10
    while b'"reason":"interval"' not in path.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert b'"reason":"interval"' in path.read_bytes()
    get_logger("tick").info("unsealed but live")
    report = verify_directory(log_dir)
    assert report.ok, report.findings
    assert report.live_streams == 1


def test_integrity_off_writes_plain_lines_and_verify_says_so(tmp_path: Path) -> None:
    """integrity_enabled=False: no keys, no tags, and verify reports the stream unsealed."""
    log_dir, _ = sealed_dir(tmp_path, 5, integrity_enabled=False, offline_key=False)
    assert not (log_dir / "keys").exists()
    assert b'"tag"' not in segments(log_dir)[0].read_bytes()
    from plexichat.core.logging.integrity import init_keys

    init_keys(log_dir, announce=False)
    report = verify_directory(log_dir)
    assert kinds(report) == ["UNSEALED"]
    assert "integrity off" in report.findings[0].detail


def test_a_kill_9_gives_torn_or_unsealed_never_modified(tmp_path: Path) -> None:
    """A writer killed mid-stream leaves a crash signature, not a tampering one."""
    log_dir = tmp_path / "logs"
    script = (
        "import sys\n"
        "from plexichat.core.logging import configure_logging, get_logger\n"
        "configure_logging(directory=sys.argv[1], console_enabled=False, non_blocking=False,"
        " integrity_checkpoint_interval='50 ms')\n"
        "log = get_logger('victim')\n"
        "print('ready', flush=True)\n"
        "i = 0\n"
        "while True:\n"
        "    log.info('n %d', i, pad='x' * 200)\n"
        "    i += 1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(log_dir)], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    report = verify_directory(log_dir)
    assert report.records > 0
    assert kinds(report) in (["TORN"], ["UNSEALED"])
    assert report.findings[0].kind != "MODIFIED"


def test_records_dropped_while_the_disk_was_full_are_announced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records the writer had to drop are announced by a sealed loss line: DELETED, with
    the reason, and the chain around them stays intact."""
    monkeypatch.setattr(writer_module, "PENDING_LIMIT", 3000)
    w = SegmentWriter(tmp_path, integrity=IntegrityOptions())
    real = os.write
    broken = {"on": False}

    def faulty(fd: int, data: bytes | memoryview) -> int:
        if broken["on"]:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    w.os_write = faulty
    event = orjson.dumps({"timestamp": iso_utc(time.time()), "message": "m" * 100})
    w.write_one(20, event)
    broken["on"] = True
    for _ in range(40):
        w.write_one(20, event)
    assert w.dropped[20] > 0
    broken["on"] = False
    w._retry_at = 0.0
    assert w.flush_pending()
    w.close()
    report = verify_directory(tmp_path)
    assert kinds(report) == ["DELETED"]
    assert "announced" in report.findings[0].detail
    assert "disk was full" in report.findings[0].detail


def test_a_failed_write_never_enters_the_chain(tmp_path: Path) -> None:
    """Writes that fail (EIO) and succeed on retry leave a chain that verifies intact."""
    w = SegmentWriter(tmp_path, integrity=IntegrityOptions())
    real = os.write
    failures = {"left": 3}

    def flaky(fd: int, data: bytes | memoryview) -> int:
        if failures["left"] and len(data) > 100 and b"$integrity" not in bytes(data[:20]):
            failures["left"] -= 1
            return real(fd, data[: len(data) // 2]) if failures["left"] == 2 else _fail()
        return real(fd, data)

    def _fail() -> int:
        raise OSError(errno.EIO, "I/O error")

    w.os_write = flaky
    for i in range(10):
        w.write_one(20, orjson.dumps({"message": f"m{i}", "pad": "x" * 120}))
        w._retry_at = 0.0
        w.flush_pending()
    w.close()
    report = verify_directory(tmp_path)
    assert report.ok, report.findings
    assert report.records == 10


def test_retention_deletes_through_a_signed_prune(tmp_path: Path) -> None:
    """Retention announces what it deletes: the rest still verifies from the cut."""
    log_dir, key = sealed_dir(tmp_path, 60, offline_key=False)
    files = segments(log_dir)
    old = time.time() - 3600
    for path in files[:3]:
        os.utime(path, (old, old))
    deleted = apply_retention(log_dir, RetentionPolicy(60, None))
    assert deleted == files[:3]
    report = verify(log_dir, key)
    assert report.ok, report.findings
    assert report.records < 60
    ladder = (log_dir / "keys" / "ladder.jsonl").read_bytes().splitlines()
    assert [orjson.loads(link)["kind"] for link in ladder].count("prune") == 3


def test_a_witness_catches_a_directory_rolled_back_to_an_older_copy(tmp_path: Path) -> None:
    """With a witness, replacing the directory by an earlier copy of itself is TRUNCATED;
    deleting the whole directory leaves a GAP."""
    log_dir = tmp_path / "logs"
    witness = tmp_path / "witness"
    configure_logging(
        directory=log_dir,
        integrity_witness=str(witness),
        integrity_checkpoint_interval="50 ms",
        **QUIET,
    )
    log = get_logger("w")
    for i in range(5):
        log.info("early %d", i)
    path = segments(log_dir)[0]
    while b'"reason":"interval"' not in path.read_bytes():
        time.sleep(0.02)
    snapshot = tmp_path / "snapshot"
    shutil.copytree(log_dir, snapshot)
    for i in range(5):
        log.info("late %d", i)
    shutdown_logging()
    assert verify_directory(log_dir, witness=witness).ok
    shutil.rmtree(log_dir)
    shutil.copytree(snapshot, log_dir)
    report = verify_directory(log_dir, witness=witness)
    assert kinds(report) == ["TRUNCATED"]
    assert "witness" in report.findings[0].detail
    for path in segments(log_dir):
        path.unlink()
    assert kinds(verify_directory(log_dir, witness=witness)) == ["GAP"]


def test_fork_children_seal_their_own_streams(tmp_path: Path) -> None:
    """A forked child starts its own stream on the ladder; both verify."""
    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, **QUIET)
    log = get_logger("fork")
    log.info("parent before")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        log.info("child")
        flush_logging()
        shutdown_logging()
        os._exit(0)
    os.waitpid(pid, 0)
    log.info("parent after")
    shutdown_logging()
    report = verify_directory(log_dir)
    assert report.ok, report.findings
    assert (report.streams, report.records) == (2, 3)


def test_a_segment_compressed_during_verification_is_read_compressed(tmp_path: Path) -> None:
    """Background compression can rename a segment between listing and reading: the verifier
    reads the compressed file instead of reporting it missing."""
    from plexichat.core.logging.integrity import VerifyReport
    from plexichat.core.logging.integrity._keys import read_verification_key
    from plexichat.core.logging.integrity._ladder import read_ladder
    from plexichat.core.logging.integrity._verify import verify_stream
    from plexichat.core.logging.integrity._walk import all_segments
    from plexichat.core.logging.sinks.maintenance import compress_segment

    log_dir, key = sealed_dir(tmp_path, 40)
    streams = all_segments(log_dir)  # listed before the compression
    compress_segment(segments(log_dir)[1], "gzip")
    ladder = read_ladder(log_dir / "keys", read_verification_key(key))
    report = VerifyReport()
    (stream,) = streams
    verify_stream(stream, streams[stream], ladder, report, None)
    assert report.ok, report.findings
    assert report.records == 40


def test_batch_sealing_equals_line_by_line_sealing(tmp_path: Path) -> None:
    """The writer's batch loop produces exactly the lines single sealing would."""
    from plexichat.core.logging.integrity._sealer import Sealer

    sealer = Sealer(tmp_path, "host-1-abc", IntegrityOptions())
    bodies = [b'{"message":"m%d","seq":%d' % (i, i) for i in range(1, 50)]
    start = sealer.snapshot()
    one_by_one = [sealer.seal(body) for body in bodies]
    end = sealer.head
    sealer.restore(start)
    assert sealer.seal_many(bodies) == one_by_one
    assert sealer.head == end


def _child_logs(directory: str) -> None:
    get_logger("mp.child").info("from a multiprocessing child")


@pytest.mark.parametrize("non_blocking", [False, True])
def test_a_multiprocessing_child_seals_its_stream(tmp_path: Path, non_blocking: bool) -> None:
    """A fork child of multiprocessing ends with os._exit: its stream still gets its closing
    checkpoint, so a clean exit is not UNSEALED."""
    import multiprocessing

    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, **{**QUIET, "non_blocking": non_blocking})
    get_logger("mp.parent").info("parent")
    child = multiprocessing.get_context("fork").Process(target=_child_logs, args=(str(log_dir),))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    shutdown_logging()
    report = verify_directory(log_dir)
    assert report.ok, report.findings
    assert (report.streams, report.records) == (2, 2)
