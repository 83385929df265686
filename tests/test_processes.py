"""Several processes logging into one directory, and processes killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plexichat.core.logging.integrity import verify_directory
from plexichat.core.logging.sinks.segments import list_segments
from plexichat.core.logging.testing import read_log_records

pytestmark = pytest.mark.slow

WRITER = """
import sys
from plexichat.core.logging import configure_logging, flush_logging, get_logger, get_logging_stats
directory, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
# The queue holds every record: a full queue drops below SECURITY by design (DESIGN.md), and
# four writers on two busy cores can fill a 10,000-record queue; this test is about rotation.
configure_logging(
    directory=directory, console_enabled=False, rotation_size="1 MB", queue_size=count
)
logger = get_logger("proc")
for i in range(count):
    logger.info("%s %d", name, i, proc=name, i=i)
flush_logging(30)
print(get_logging_stats()["dropped_total"], flush=True)
"""

KILLED = """
import sys, time
from plexichat.core.logging import configure_logging, get_logger
configure_logging(directory=sys.argv[1], console_enabled=False)
logger = get_logger("victim")
print("ready", flush=True)
i = 0
while True:
    logger.info("n %d", i, t=time.time())
    i += 1
    time.sleep(0.005)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    env.pop("COVERAGE_PROCESS_START", None)
    return env


def test_four_processes_80000_records_exactly_once(tmp_path: Path) -> None:
    """4 x 20,000 records with 1 MB rotation: every record present once, none torn."""
    log_dir = tmp_path / "logs"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(log_dir), f"p{n}", "20000"],
            env=_env(),
            stdout=subprocess.PIPE,
        )
        for n in range(4)
    ]
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0
        assert out.strip() == b"0"  # the writer's own count: nothing dropped
    records = read_log_records(log_dir)
    keys = [(r["context"]["proc"], r["context"]["i"]) for r in records]
    assert len(keys) == 80_000
    assert set(keys) == {(f"p{n}", i) for n in range(4) for i in range(20_000)}
    streams = list_segments(log_dir)
    assert len(streams) == 4
    assert any(len(segs) > 1 for segs in streams.values())  # rotation happened
    for segs in streams.values():
        seqs = [
            r["seq"] for r in records if r["stream"] == segs[0].stream
        ]  # per stream, seq counts up without gaps
        assert seqs == list(range(1, len(seqs) + 1))
    report = verify_directory(log_dir)  # four writers started streams on one key ladder
    assert report.ok, report.findings
    assert (report.streams, report.records) == (4, 80_000)


def test_kill_9_loses_at_most_the_last_flush_interval(tmp_path: Path) -> None:
    """After SIGKILL every record accepted more than flush_interval (0.1 s) before is on disk."""
    log_dir = tmp_path / "logs"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(log_dir)], env=_env(), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    time.sleep(2.5)
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stdout.close()
    records = read_log_records(log_dir)
    numbers = [int(r["message"].split()[1]) for r in records]
    assert numbers == list(range(len(numbers)))  # in order, no gap, no duplicate
    assert len(numbers) > 100
    last_accepted_on_disk = records[-1]["context"]["t"]
    assert last_accepted_on_disk >= killed_at - 0.1 - 0.75  # interval + slack (2 busy cores)
    tail = subprocess.run(
        [sys.executable, "-m", "plexichat.core.logging.cli", "tail", str(log_dir), "--no-follow"],
        capture_output=True,
        env=_env(),
        timeout=60,
    )
    assert tail.returncode == 0
    assert f"n {numbers[-1]}" in tail.stdout.decode()


EXITS = """
import sys
from plexichat.core.logging import configure_logging, get_logger
configure_logging(directory=sys.argv[1], console_enabled=False, flush_interval=60)
logger = get_logger("exiting")
for i in range(500):
    logger.info("queued %d", i)  # below the wake-up watermark: only the exit flush writes them
"""


def test_normal_exit_flushes_the_queue(tmp_path: Path) -> None:
    """A process that exits normally writes everything still queued (atexit flush)."""
    log_dir = tmp_path / "logs"
    done = subprocess.run(
        [sys.executable, "-c", EXITS, str(log_dir)], env=_env(), timeout=120, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    messages = [r["message"] for r in read_log_records(log_dir)]
    assert messages == [f"queued {i}" for i in range(500)]


COMPRESSING = """
import os, sys, time
from pathlib import Path
from plexichat.core.logging import configure_logging
from plexichat.core.logging.sinks.segments import _HOST
directory = Path(sys.argv[1])
directory.mkdir()
left = directory / f"plexichat.{_HOST}-4194303-abcdef.000001.jsonl"  # a dead process's segment
with open(left, "wb") as fh:
    for i in range(150_000):
        fh.write(b'{"message":"%d %s"}\\n' % (i, os.urandom(48).hex().encode()))
configure_logging(directory=directory, console_enabled=False, integrity_enabled=False)
deadline = time.monotonic() + 30  # the start-up sweep compresses it in the background
while not list(directory.glob("*.tmp")) and time.monotonic() < deadline:
    time.sleep(0.001)
print(len(list(directory.glob("*.tmp"))), flush=True)
"""


def test_exit_during_compression_leaves_no_partial_file(tmp_path: Path) -> None:
    """A process that exits while its upkeep compresses a segment removes the partial
    compressed file; the plain segment stays, whole, for the next start's sweep."""
    log_dir = tmp_path / "logs"
    done = subprocess.run(
        [sys.executable, "-c", COMPRESSING, str(log_dir)],
        env=_env(),
        timeout=120,
        capture_output=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == b"1"  # it exited mid-compression
    (left,) = log_dir.glob("*.jsonl")
    assert [p.name for p in log_dir.iterdir()] == [left.name]
    assert len(left.read_bytes().splitlines()) == 150_000


def test_a_fork_never_inherits_the_key_directory_lock(tmp_path: Path) -> None:
    """A thread holds the key directory's lock (a stream start, a prune) while another
    thread forks: the child closes its copy, so the lock ends when the parent lets go (a
    child keeping it blocked every process's ladder: its writer hung, or lost its records,
    until it exited)."""
    import fcntl
    import threading

    from plexichat.core.logging.integrity import _keys

    kdir = tmp_path / "keys"
    kdir.mkdir()
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with _keys._locked(kdir):
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: once the parent let go, can it take the lock?
        fd = os.open(kdir / _keys._LOCK_FILE, os.O_RDWR)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os._exit(0)
            except BlockingIOError:
                time.sleep(0.01)
        os._exit(1)
    leave.set()
    holder.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_fork_during_a_claim_does_not_keep_the_segment_claimed(tmp_path: Path) -> None:
    """Upkeep claims a segment (an exclusive lock) while another thread forks: the child
    closes its copy, so the claim ends when upkeep lets go (a child keeping it blocked the
    segment's writer for as long as the child lived)."""
    import fcntl
    import threading

    from plexichat.core.logging.sinks.segments import claim_segment

    path = tmp_path / "plexichat.h-1-abcdef.000001.jsonl"
    path.write_bytes(b'{"m":1}\n')
    inside, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with claim_segment(path) as claimed:
            assert claimed
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: once the parent let go, can a writer lock the file?
        fd = os.open(path, os.O_RDONLY)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                os._exit(0)
            except BlockingIOError:
                time.sleep(0.01)
        os._exit(1)
    leave.set()
    holder.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
