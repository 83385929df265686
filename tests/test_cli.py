"""``plexichat-logs``: tail, config show/validate and demo, as a user runs them."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import orjson
import pytest

from plexichat.core.logging import LogCategory, LogLevel, configure_logging, flush_logging
from plexichat.core.logging.cli import main
from plexichat.core.logging.sinks.files import SegmentWriter
from plexichat.core.logging.testing import read_log_records


def _event(ts: str, message: str) -> bytes:
    return orjson.dumps(
        {"timestamp": ts, "level": "INFO", "category": "system", "message": message, "logger": "t"}
    )


def _two_streams(directory: Path) -> None:
    a, b = SegmentWriter(directory), SegmentWriter(directory)
    a.write_batch([(20, _event("2024-01-15T10:30:45.100Z", "a1"))])
    a.write_batch([(20, _event("2024-01-15T10:30:45.300Z", "a2"))])
    b.write_batch([(20, _event("2024-01-15T10:30:45.200Z", "b1"))])
    b.write_batch([(20, _event("2024-01-15T10:30:45.400Z", "b2"))])
    a.close()
    b.close()


def test_tail_merges_streams_by_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two processes' streams come out interleaved by timestamp in console format."""
    _two_streams(tmp_path)
    assert main(["tail", str(tmp_path), "--no-follow", "--utc"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in out] == ["a1", "b1", "a2", "b2"]
    assert out[0] == "[2024-01-15 10:30:45] [INFO    ] t: a1"


def test_tail_json_passes_lines_through(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the stored lines unchanged, -n limits to the last ones."""
    _two_streams(tmp_path)
    assert main(["tail", str(tmp_path), "--no-follow", "--json", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [orjson.loads(line)["message"] for line in lines] == ["a2", "b2"]
    assert all('"stream":' in line and '"seq":' in line for line in lines)


def test_tail_rejects_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A directory that does not exist is a usage error (exit 2) with the reason."""
    assert main(["tail", str(tmp_path / "nope"), "--no-follow"]) == 2
    assert "is not a directory" in capsys.readouterr().err


def _read_until(stream: IO[bytes], needle: bytes, timeout: float) -> bytes:
    """Read lines from a pipe until one contains ``needle`` (or the time is up)."""
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.2)
        if not ready:
            continue
        line = stream.readline()
        seen += line
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed within {timeout}s; got {seen!r}")


def test_tail_follows_new_lines_from_other_processes(tmp_path: Path) -> None:
    """A running `tail` shows the backlog, then lines written afterwards, nothing twice."""
    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, console_enabled=False, non_blocking=False)
    from plexichat.core.logging import get_logger

    get_logger("live").info("written before tail started")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    cmd = [sys.executable, "-m", "plexichat.core.logging.cli", "tail", str(log_dir)]
    proc = subprocess.Popen([*cmd, "--interval", "0.05"], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    try:
        _read_until(proc.stdout, b"written before tail started", 60)
        get_logger("live").warning("appeared while following")
        line = _read_until(proc.stdout, b"appeared", 30)
        assert b"[WARNING ] live: appeared while following" in line
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()


def test_config_show_json_reports_sources(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """config show --json gives each value with where it came from."""
    monkeypatch.setenv("PLEXICHAT_LOG_LEVEL", "WARNING")
    assert main(["config", "show", "--json"]) == 0
    doc = orjson.loads(capsys.readouterr().out)
    assert doc["level"] == {"value": "WARNING", "source": "env PLEXICHAT_LOG_LEVEL"}
    assert doc["directory"]["source"] == "default"


def test_config_show_table(capsys: pytest.CaptureFixture[str]) -> None:
    """The table lists settings with human units and their environment variables."""
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert "rotation_size" in out
    assert "100 MB" in out
    assert "PLEXICHAT_LOG_ROTATION_SIZE" in out


def test_config_validate_good_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """validate exits 0 for a good file and 1 naming the problem for a bad one."""
    good = tmp_path / "good.yaml"
    good.write_text('level: "INFO"\nrotation_size: "10 MB"\n')
    bad = tmp_path / "bad.yaml"
    bad.write_text('level: "LOUD"\n')
    assert main(["config", "validate", str(good)]) == 0
    assert "valid (2 settings)" in capsys.readouterr().out
    assert main(["config", "validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "level='LOUD'" in err
    assert "TRACE, DEBUG, INFO" in err


def test_demo_logs_every_level_and_category(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo writes every level and category and prints where the files are."""
    log_dir = tmp_path / "demo"
    assert main(["demo", "--dir", str(log_dir)]) == 0
    flush_logging()
    out = capsys.readouterr().out
    assert f"Log directory: {log_dir.resolve()}" in out
    records = read_log_records(log_dir)
    assert {r["level"] for r in records} == {m.name for m in LogLevel}
    assert {r["category"] for r in records} >= {c.value for c in LogCategory}
    assert any(r.get("exception") for r in records)
    assert any(r["logger"] == "thirdparty.client" for r in records)
