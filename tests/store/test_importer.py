"""Importing foreign JSON-lines logs written by the real libraries."""

from __future__ import annotations

import gzip
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging.cli import main
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


def _plain_lines(prefix: str, count: int) -> bytes:
    return b"".join(
        orjson.dumps(
            {"timestamp": f"2024-01-15T10:{i // 60:02d}:{i % 60:02d}Z", "message": f"{prefix} {i}"}
        )
        + b"\n"
        for i in range(count)
    )


def test_a_rotated_file_is_known_by_its_content(tmp_path: Path, store: LogStore) -> None:
    """logrotate renames and gzips app.jsonl, a new app.jsonl starts: importing both stores
    the old records once and every new one."""
    app = tmp_path / "app.jsonl"
    app.write_bytes(_plain_lines("day1", 30))
    assert import_file(app, store).records == 30
    with gzip.open(tmp_path / "app.jsonl.1.gz", "wb") as gz:
        gz.write(app.read_bytes())
    app.write_bytes(_plain_lines("day2", 20))
    new = import_file(app, store)
    rotated = import_file(tmp_path / "app.jsonl.1.gz", store)
    assert (new.records, new.duplicates) == (20, 0)
    assert (rotated.records, rotated.duplicates) == (0, 30)
    messages = [str(r["message"]) for r in _records(store)]
    assert sorted(messages) == sorted(
        [f"day1 {i}" for i in range(30)] + [f"day2 {i}" for i in range(20)]
    )
    assert new.stream != rotated.stream


def test_a_grown_file_adds_only_its_new_lines(tmp_path: Path, store: LogStore) -> None:
    """A file imported, then appended to, keeps its stream: the next import adds the rest."""
    app = tmp_path / "app.jsonl"
    lines = _plain_lines("m", 8).splitlines(keepends=True)
    app.write_bytes(b"".join(lines[:5]))
    first = import_file(app, store)
    app.write_bytes(b"".join(lines))
    second = import_file(app, store)
    assert (second.records, second.duplicates, second.stream) == (3, 5, first.stream)
    assert [r.seq for r in store.iter_records(LogQuery(order="asc"))] == list(range(1, 9))


def _native(stream: str, seq: int, message: str) -> bytes:
    return orjson.dumps(
        {
            "timestamp": "2024-01-15T10:30:45.000Z",
            "level": "ERROR",
            "category": "system",
            "message": message,
            "logger": "app",
            "stream": stream,
            "seq": seq,
            "tag": "0123456789abcdef0123456789abcdef",
        }
    )


def test_own_records_keep_their_line_stream_and_seq(tmp_path: Path, store: LogStore) -> None:
    """PlexiChat's own lines are stored as they are; integrity control lines are skipped."""
    path = tmp_path / "plexichat.s1.000001.jsonl"
    control = b'{"$integrity":"header","stream":"s1","seq":0,"tag":"00"}'
    lines = [_native("s1", 1, "first"), _native("s1", 2, "second")]
    path.write_bytes(b"\n".join([control, *lines]) + b"\n")
    report = import_file(path, store)
    assert (report.records, report.control_lines, report.malformed) == (2, 1, 0)
    stored = list(store.iter_records(LogQuery(order="asc")))
    assert [(r.stream, r.seq, r.raw) for r in stored] == [("s1", 1, lines[0]), ("s1", 2, lines[1])]
    assert "null" not in [r.message for r in stored]


def test_importing_an_indexed_sealed_segment_adds_nothing(tmp_path: Path, store: LogStore) -> None:
    """A sealed segment the indexer stored already: every record is a duplicate, no control
    line becomes a record."""
    from plexichat.core.logging.integrity._sealer import IntegrityOptions
    from plexichat.core.logging.sinks.writer import SegmentWriter
    from plexichat.core.logging.store.indexer import Indexer

    logs = tmp_path / "logs"
    writer = SegmentWriter(logs, integrity=IntegrityOptions())
    for i in range(5):
        event = {"timestamp": "2024-01-15T10:30:45.000Z", "level": "INFO", "message": f"m{i}"}
        writer.write_one(20, orjson.dumps({**event, "category": "system", "logger": "app"}))
    writer.close()
    assert Indexer(logs, store).run_once().records == 5
    (segment,) = logs.glob("*.jsonl")
    assert segment.read_bytes().startswith(b'{"$integrity":')
    report = import_file(segment, store)
    assert (report.records, report.duplicates) == (0, 5)
    assert report.control_lines >= 1
    assert store.count(LogQuery()) == 5


@pytest.mark.parametrize("bad", [b"1e300", b"-1e300", b"1e21", b"253402300800000000000"])
def test_an_impossible_numeric_timestamp_is_one_malformed_line(
    tmp_path: Path, store: LogStore, bad: bytes
) -> None:
    """A number that is no time in the years 1..9999 skips its line; the rest imports."""
    path = tmp_path / "app.jsonl"
    bad_line = b'{"timestamp": ' + bad + b', "message": "bad"}\n'
    path.write_bytes(_plain_lines("a", 3) + bad_line + _plain_lines("b", 3))
    report = import_file(path, store)
    assert (report.records, report.malformed) == (6, 1)
    assert "bad" not in [r["message"] for r in _records(store)]


def test_numeric_timestamps_in_any_unit(tmp_path: Path, store: LogStore) -> None:
    """Seconds, milliseconds, microseconds and nanoseconds since the epoch, and the year 1."""
    path = tmp_path / "app.jsonl"
    path.write_bytes(
        b'{"ts": 1705314645.123, "msg": "s"}\n'
        b'{"ts": 1705314645123, "msg": "ms"}\n'
        b'{"ts": 1705314645123456, "msg": "us"}\n'
        b'{"ts": 1705314645123456789, "msg": "ns"}\n'
        b'{"ts": -62135596800, "msg": "year 1"}\n'
        b'{"ts": "0001-01-01T00:30:00+01:00", "msg": "year 0 in UTC"}\n'
    )
    report = import_file(path, store)
    assert (report.records, report.malformed) == (5, 1)
    times = {r["message"]: r["timestamp"] for r in _records(store)}
    assert times == {
        "s": "2024-01-15T10:30:45.123Z",
        "ms": "2024-01-15T10:30:45.123Z",
        "us": "2024-01-15T10:30:45.123Z",
        "ns": "2024-01-15T10:30:45.123Z",
        "year 1": "0001-01-01T00:00:00.000Z",
    }


def test_a_damaged_gzip_keeps_what_was_read(tmp_path: Path, store: LogStore) -> None:
    """A .gz cut short: the records before the damage are stored, and the report says why
    the import stopped."""
    data = b"".join(
        orjson.dumps(
            {"timestamp": "2024-01-15T10:30:45Z", "message": f"m{i}", "n": os.urandom(8).hex()}
        )
        + b"\n"
        for i in range(20000)
    )
    packed = gzip.compress(data)
    path = tmp_path / "app.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    report = import_file(path, store)
    assert report.error is not None
    assert "cannot read past line" in report.error
    assert 0 < report.records < 20000
    assert store.count(LogQuery()) == report.records


def test_cli_import_prints_duplicates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The import summary says how many lines were already stored and how many malformed."""
    app = tmp_path / "app.jsonl"
    app.write_bytes(_plain_lines("m", 4) + b"garbage\n")
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["import", str(app), "--store", url]) == 0
    first = capsys.readouterr().out
    assert "imported 4 records" in first
    assert "(0 already stored, 1 malformed lines skipped)" in first
    assert main(["import", str(app), "--store", url]) == 0
    assert "imported 0 records" in (again := capsys.readouterr().out)
    assert "(4 already stored, 1 malformed lines skipped)" in again


def test_cli_import_of_a_damaged_gzip_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged .gz: the records read are reported, the error too, and the exit status is 1."""
    packed = gzip.compress(_plain_lines("m", 3000))
    path = tmp_path / "app.jsonl.gz"
    path.write_bytes(packed[: len(packed) // 2])
    assert main(["import", str(path), "--store", f"sqlite:///{tmp_path / 's.db'}"]) == 1
    captured = capsys.readouterr()
    assert "imported" in captured.out
    assert "cannot read past line" in captured.err
