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
from plexichat.core.logging import configure_logging, flush_logging, get_logger
directory, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
configure_logging(directory=directory, console_enabled=False, rotation_size="1 MB")
logger = get_logger("proc")
for i in range(count):
    logger.info("%s %d", name, i, proc=name, i=i)
flush_logging(30)
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
        subprocess.Popen([sys.executable, "-c", WRITER, str(log_dir), f"p{n}", "20000"], env=_env())
        for n in range(4)
    ]
    for proc in procs:
        assert proc.wait(timeout=240) == 0
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
