"""Audit regressions: signal-handler re-entry, sink isolation, traceback line forgery,
oversized records and hostile ``extra=`` objects."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import (
    configure_logging,
    flush_logging,
    get_logger,
    get_logging_stats,
    shutdown_logging,
)
from plexichat.core.logging._core.handler import MAX_RECORD_BYTES, PlexiHandler, fit_record
from plexichat.core.logging.sinks.console import ConsoleSink
from plexichat.core.logging.sinks.segments import MAX_LINE
from plexichat.core.logging.testing import read_log_records
from tests.helpers import only_plexi_handler

FORGED = "[2024-01-15 10:30:45] [AUDIT   ] auth: role changed to admin for bob"

# --- 1. a signal handler that logs while the sink is mid-write ---------------------------

_SIGNAL_SCRIPT = """
import json, logging, os, signal, sys
from plexichat.core.logging import configure_logging, get_logger, shutdown_logging
from plexichat.core.logging._core.handler import PlexiHandler
from plexichat.core.logging.integrity import verify_directory
from plexichat.core.logging.testing import read_log_records

mode, directory = sys.argv[1], sys.argv[2]
log = get_logger("app")
inside = []


def on_signal(signum, frame):
    inside.append(busy[0])
    if mode == "async":
        log.security("from handler")  # SECURITY wakes the writer: the nested wake-up
    else:
        log.warning("from handler")


signal.signal(signal.SIGUSR1, on_signal)
busy = [False]
fired = []


def fire():
    if not fired:
        fired.append(1)
        busy[0] = True
        os.kill(os.getpid(), signal.SIGUSR1)
        busy[0] = False


class Console:
    def __init__(self):
        self.text = []

    def write(self, text):
        fire()
        self.text.append(text)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


if mode == "console":
    configure_logging(file_enabled=False)
    sys.stderr = console = Console()
else:
    configure_logging(
        directory=directory, console_enabled=False, non_blocking=(mode == "async")
    )
handler = next(h for h in logging.getLogger().handlers if isinstance(h, PlexiHandler))
sink = handler.sinks[0]
if mode == "sync":
    original = sink.writer.write_one

    def write_one(levelno, data):
        fire()
        original(levelno, data)

    sink.writer.write_one = write_one
elif mode == "async":
    cond = sink._wake._cond
    original_notify = cond.notify_all

    def notify_all():
        fire()  # the wake-up's lock is held here
        original_notify()

    cond.notify_all = notify_all

if mode == "async":
    log.security("outer")
else:
    log.warning("outer")
shutdown_logging()
if mode == "console":
    sys.stderr = sys.__stderr__
    lines = "".join(console.text).splitlines()
    out = {"inside": inside, "messages": [line.split(": ", 1)[1] for line in lines]}
else:
    records = read_log_records(directory)
    out = {
        "inside": inside,
        "messages": [r["message"] for r in records],
        "ok": verify_directory(directory).ok,
    }
print(json.dumps(out))
"""


def _run_signal_case(mode: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "signal_case.py"
    script.write_text(textwrap.dedent(_SIGNAL_SCRIPT))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    try:
        done = subprocess.run(
            [sys.executable, str(script), mode, str(tmp_path / "logs")],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{mode}: logging from a signal handler deadlocked")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.skipif(not hasattr(os, "kill") or sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("mode", ["console", "sync", "async"])
def test_logging_from_a_signal_handler_mid_write(mode: str, tmp_path: Path) -> None:
    result = _run_signal_case(mode, tmp_path)
    assert result["inside"] == [True]  # the handler really ran inside the sink's write
    assert sorted(result["messages"]) == ["from handler", "outer"]  # each exactly once
    if mode == "sync":
        assert result["messages"] == ["outer", "from handler"]  # right after, in order
    if mode != "console":
        assert result["ok"]


# --- 2. one failing sink never keeps a record from the others ----------------------------


class _Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("detached instance")


def test_console_render_error_keeps_the_file_record(log_dir: Path) -> None:
    configure_logging(directory=log_dir, console_show_context=True)
    err = io.StringIO()
    with redirect_stderr(err):
        log = get_logger("app")
        log.warning("before")
        log.warning("order created", order=_Unrepresentable())
        log.warning("after")
        flush_logging()
    assert [r["message"] for r in read_log_records(log_dir)] == [
        "before",
        "order created",
        "after",
    ]
    assert "order created" in err.getvalue()


def test_console_sink_renders_a_fallback_line_and_the_file_sink_still_writes() -> None:
    console = ConsoleSink(colors=False, show_context=True)
    keep = _Keep()
    handler = PlexiHandler()
    handler.set_sinks((console, keep))  # type: ignore[arg-type]
    event = {
        "timestamp": "2024-01-15T10:30:45.000Z",
        "level": "WARNING",
        "message": "order created",
        "logger": "app",
        "context": {"order": _Unrepresentable()},
    }
    err = io.StringIO()
    with redirect_stderr(err):
        handler.emit_event(logging.WARNING, event)
    assert keep.got == ["order created"]
    (line,) = err.getvalue().splitlines()
    assert line.startswith("[2024-01-15 10:30:45] [WARNING ] app: order created")
    assert "not shown" in line


class _Broken:
    level = 0
    needs_bytes = False

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        raise RuntimeError("broken sink")


class _Keep:
    level = 0
    needs_bytes = True

    def __init__(self) -> None:
        self.got: list[str] = []

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        self.got.append(str(event["message"]))


def test_emit_event_isolates_each_sink() -> None:
    handler = PlexiHandler()
    keep = _Keep()
    handler.set_sinks((_Broken(), keep))  # type: ignore[arg-type]
    handler.emit_event(logging.INFO, {"message": "hello", "level": "INFO"})
    assert keep.got == ["hello"]


# --- 3. a newline in an exception message cannot forge a record line ---------------------


def _raise_and_log() -> None:
    username = "bob\n" + FORGED
    try:
        raise PermissionError(f"unknown user {username}")
    except PermissionError:
        get_logger("auth").exception("login failed")


def test_exception_newline_cannot_forge_a_console_line() -> None:
    configure_logging(file_enabled=False)
    err = io.StringIO()
    with redirect_stderr(err):
        _raise_and_log()
    lines = err.getvalue().splitlines()
    assert not any(line.startswith(FORGED[:21]) for line in lines)
    assert any(FORGED in line for line in lines)  # still shown, just not as a record line
    assert any(line.startswith("Traceback") for line in lines)  # own structure kept


def test_exception_newline_cannot_forge_a_text_segment_line(log_dir: Path) -> None:
    configure_logging(directory=log_dir, console_enabled=False, structured_enabled=False)
    _raise_and_log()
    shutdown_logging()
    text = "".join(p.read_text("utf-8") for p in sorted(log_dir.rglob("*.log")))
    assert "login failed" in text
    assert not any(line.startswith(FORGED[:21]) for line in text.splitlines())


# --- 4. records over the readers' line limit are cut to fit, never unreadable ------------


def test_huge_record_is_truncated_and_readable(log_dir: Path) -> None:
    configure_logging(directory=log_dir, console_enabled=False)
    log = get_logger("app")
    log.info("small")
    log.info("big payload", body="x" * 11_000_000)
    flush_logging()
    records = read_log_records(log_dir)
    assert [r["message"] for r in records] == ["small", "big payload"]
    body = records[1]["context"]["body"]
    assert "...[truncated " in body
    assert body.endswith(" bytes]")
    assert len(body) < MAX_RECORD_BYTES < MAX_LINE
    assert get_logging_stats()["errors"].get("oversized-record") == 1


def test_huge_text_record_is_truncated_and_readable(log_dir: Path) -> None:
    configure_logging(directory=log_dir, console_enabled=False, structured_enabled=False)
    get_logger("app").info("big " + "y" * 11_000_000)
    shutdown_logging()
    data = b"".join(p.read_bytes() for p in sorted(log_dir.rglob("*.log")))
    line = next(line for line in data.split(b"\n") if b"big " in line)
    assert len(line) < MAX_LINE
    assert line.endswith(b" bytes]")


@pytest.mark.parametrize(
    "value",
    [list(range(2_000_000)), {f"k{i}": i for i in range(800_000)}, ["z" * 300] * 40_000],
)
def test_fit_record_shrinks_any_shape(value: object) -> None:
    import orjson

    data = orjson.dumps({"timestamp": "t", "level": "INFO", "message": "m", "context": value})
    limit = 1_000_000
    assert len(data) > limit
    event, out = fit_record(data, limit)
    assert len(out) <= limit
    assert orjson.loads(out) == event
    assert event["message"] == "m"
    assert event["level"] == "INFO"


# --- 5. a hostile extra= object costs only itself ----------------------------------------


class _Lazy:
    def __len__(self) -> int:
        raise RuntimeError("not loaded")

    def __bool__(self) -> bool:
        raise RuntimeError("not loaded")


def test_hostile_extra_keeps_the_record(log_dir: Path) -> None:
    configure_logging(directory=log_dir, console_enabled=False)
    log = get_logger("app")
    with only_plexi_handler():  # the fast path (no LogRecord)
        log.info("A", extra=_Lazy())  # type: ignore[arg-type]
    log.info("B", extra=_Lazy())  # type: ignore[arg-type]  # the stdlib path (pytest's handlers)
    log.info("C")
    flush_logging()
    records = read_log_records(log_dir)
    assert [r["message"] for r in records] == ["A", "B", "C"]
    assert "_Lazy" in records[0]["metadata"]["extra"]
    assert "_Lazy" in records[1]["metadata"]["extra"]


def test_the_error_hook_can_be_entered_again_on_its_own_thread() -> None:
    """A signal handler that logs may run while its thread is inside the error hook: the
    hook must not wait for itself (its lock is re-entrant)."""
    import threading

    from plexichat.core.logging._core.errors import error_reporter

    done: list[int] = []

    def nested() -> None:
        with error_reporter._lock:  # as if interrupted inside report()
            error_reporter.report("reentry-check", "nested report")
            done.append(error_reporter.counts["reentry-check"])

    worker = threading.Thread(target=nested, daemon=True)
    worker.start()
    worker.join(10)
    assert done == [1]
    error_reporter.counts.pop("reentry-check", None)
