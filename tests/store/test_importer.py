"""Importing foreign JSON-lines logs written by the real libraries."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging.store import LogQuery, LogStore, open_store
from plexichat.core.logging.store.importer import import_file


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    """An embedded store."""
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield s
    s.close()


def _records(store: LogStore) -> list[dict[str, object]]:
    return [r.record for r in store.iter_records(LogQuery(order="asc"))]


def test_structlog_lines(tmp_path: Path, store: LogStore) -> None:
    """structlog's JSONRenderer output: event, level, timestamp, logger, extra keys."""
    import structlog

    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    try:
        structlog.get_logger("svc").error("db down", user_id="u1", attempt=2)
    finally:
        structlog.reset_defaults()
    path = tmp_path / "structlog.jsonl"
    path.write_text(out.getvalue())
    assert import_file(path, store).records == 1
    (rec,) = _records(store)
    assert rec["level"] == "ERROR"
    assert rec["message"] == "db down"
    assert rec["context"] == {"user_id": "u1", "attempt": 2}


def test_loguru_serialized_lines(tmp_path: Path, store: LogStore) -> None:
    """loguru serialize=True: text + record with time, level, extra."""
    from loguru import logger

    path = tmp_path / "loguru.jsonl"
    sink = logger.add(path, serialize=True)
    try:
        logger.bind(request_id="r1").warning("slow request {}", 3)
    finally:
        logger.remove(sink)
    assert import_file(path, store).records == 1
    (rec,) = _records(store)
    assert rec["level"] == "WARNING"
    assert rec["message"] == "slow request 3"
    assert rec["context"] == {"request_id": "r1"}
    assert rec["function"] == "test_loguru_serialized_lines"


def test_python_json_logger_lines(tmp_path: Path, store: LogStore) -> None:
    """python-json-logger: asctime, levelname, name, message and extra fields."""
    from pythonjsonlogger import json as pjl

    path = tmp_path / "pjl.jsonl"
    handler = logging.FileHandler(path)
    handler.setFormatter(pjl.JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    lg = logging.getLogger("pjl.test")
    lg.propagate = False
    lg.addHandler(handler)
    try:
        lg.critical("disk full", extra={"mount": "/var"})
    finally:
        lg.removeHandler(handler)
        handler.close()
    assert import_file(path, store).records == 1
    (rec,) = _records(store)
    assert rec["level"] == "CRITICAL"
    assert rec["logger"] == "pjl.test"
    assert rec["context"] == {"mount": "/var"}


def test_plain_lines_and_bad_ones(tmp_path: Path, store: LogStore) -> None:
    """Plain timestamp/level/message lines import; garbage and unknown levels are counted."""
    path = tmp_path / "plain.jsonl"
    path.write_bytes(
        b'{"timestamp": "2024-01-15T10:30:45Z", "level": "warn", "message": "a"}\n'
        b'{"time": 1705314645.5, "severity": "NOTICE", "msg": "b"}\n'
        b"garbage\n"
        b'{"message": "no time"}\n'
    )
    report = import_file(path, store)
    assert report.records == 2
    assert report.malformed == 2
    assert report.unknown_levels == 1
    assert [r["message"] for r in _records(store)] == ["a", "b"]
    assert import_file(path, store).records == 0  # importing again adds nothing


def test_cli_import_then_query_just_works(tmp_path: Path) -> None:
    """`plexichat-logs import app.jsonl` then `plexichat-logs query --level ERROR`."""
    app = tmp_path / "app.jsonl"
    app.write_bytes(
        b'{"timestamp": "2024-01-15T10:30:45.000Z", "level": "INFO", "message": "fine"}\n'
        b'{"timestamp": "2024-01-15T10:30:46.000Z", "level": "ERROR", "message": "db timeout"}\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    env["PLEXICHAT_LOG_DIRECTORY"] = str(tmp_path / "logs")
    cli = [sys.executable, "-m", "plexichat.core.logging.cli"]
    done = subprocess.run([*cli, "import", str(app)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "imported 2 records" in done.stdout
    done = subprocess.run(
        [*cli, "query", "--level", "ERROR", "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line)["message"] for line in done.stdout.splitlines()] == ["db timeout"]
    done = subprocess.run(
        [*cli, "query", "--search", "database AND"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "search" in done.stderr
