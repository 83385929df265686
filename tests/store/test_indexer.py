"""The indexer: every stream and segment, exactly once, across restarts and compression."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging import configure_logging, flush_logging, get_logger
from plexichat.core.logging.sinks.files import SegmentWriter
from plexichat.core.logging.sinks.maintenance import compress_segment
from plexichat.core.logging.store import LogQuery, LogStore, StoredRecord, open_store
from plexichat.core.logging.store.indexer import Indexer


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[LogStore]:
    """An embedded store in a temporary directory."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


def _messages(store: LogStore) -> list[str]:
    return [r.message for r in store.iter_records(LogQuery(order="asc"))]


def _event(i: int) -> bytes:
    return orjson.dumps(
        {
            "timestamp": f"2024-01-15T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
            "level": "INFO",
            "category": "system",
            "message": f"m{i}",
            "logger": "idx",
        }
    )


def test_indexes_rotated_and_compressed_segments_once(
    tmp_path: Path, sqlite_store: LogStore
) -> None:
    """All segments of a stream, compressed ones too, are indexed; a second pass adds none."""
    logs = tmp_path / "logs"
    writer = SegmentWriter(logs, rotation_size=500)
    for i in range(40):
        writer.write_one(20, _event(i))
    for path in sorted(logs.glob("*.jsonl"))[:-1][:2]:
        compress_segment(path, "gzip")
    indexer = Indexer(logs, sqlite_store)
    first = indexer.run_once()
    assert first.records == 40
    assert indexer.run_once().records == 0
    for i in range(40, 45):
        writer.write_one(20, _event(i))
    assert indexer.run_once().records == 5
    writer.close()
    assert _messages(sqlite_store) == [f"m{i}" for i in range(45)]


def test_restart_continues_where_it_stopped(tmp_path: Path) -> None:
    """A new indexer on the same store resumes from the saved positions."""
    logs = tmp_path / "logs"
    writer = SegmentWriter(logs)
    for i in range(10):
        writer.write_one(20, _event(i))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    Indexer(logs, store).run_once()
    store.close()
    for i in range(10, 15):
        writer.write_one(20, _event(i))
    store = open_store(url)
    assert Indexer(logs, store).run_once().records == 5
    assert len(_messages(store)) == 15
    store.close()


class _FailingStore:
    """Wraps a store and fails the n-th append, as a crash mid-pass would."""

    def __init__(self, inner: LogStore, fail_at: int) -> None:
        self.inner = inner
        self.calls = 0
        self.fail_at = fail_at
        self.url = inner.url

    def append(
        self, records: Sequence[StoredRecord], positions: Mapping[str, int] | None = None
    ) -> int:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("crash")
        return self.inner.append(records, positions)

    def positions(self) -> dict[str, int]:
        return self.inner.positions()


def test_crash_mid_pass_neither_skips_nor_repeats(
    tmp_path: Path, sqlite_store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records and positions are saved together: after a failed batch, a rerun is exact."""
    from plexichat.core.logging.store import indexer as indexer_module

    monkeypatch.setattr(indexer_module, "BATCH", 7)
    logs = tmp_path / "logs"
    writer = SegmentWriter(logs)
    for i in range(30):
        writer.write_one(20, _event(i))
    failing = _FailingStore(sqlite_store, fail_at=3)
    with pytest.raises(RuntimeError):
        Indexer(logs, failing).run_once()  # type: ignore[arg-type]
    assert len(_messages(sqlite_store)) == 14
    Indexer(logs, sqlite_store).run_once()
    assert _messages(sqlite_store) == [f"m{i}" for i in range(30)]


def test_bad_lines_are_counted_and_skipped(tmp_path: Path, sqlite_store: LogStore) -> None:
    """Garbage, invalid UTF-8, non-objects, huge and torn lines never stop the indexer."""
    logs = tmp_path / "logs"
    writer = SegmentWriter(logs)
    writer.write_one(20, _event(1))
    writer.close()
    assert writer.path is not None
    with writer.path.open("ab") as fh:
        fh.write(b"not json at all\n")
        fh.write(b"\xff\xfe\xfd invalid utf-8\n")
        fh.write(b"[1, 2, 3]\n")
        fh.write(b'{"no_timestamp": true}\n')
        fh.write(b'{"timestamp":"' + b"x" * (11 * 1024 * 1024) + b'"}\n')
        fh.write(_event(2)[:-1] + b',"seq":2}\n')
        fh.write(b'{"timestamp":"2024-01-15T10:00:03.000Z","mess')  # torn
    report = Indexer(logs, sqlite_store).run_once()
    assert report.records == 2
    assert report.malformed == 4
    assert report.oversized == 1
    assert _messages(sqlite_store) == ["m1", "m2"]


def test_two_directories_into_one_store(tmp_path: Path, sqlite_store: LogStore) -> None:
    """Two hosts' directories share one store; every record once."""
    for name in ("host_a", "host_b"):
        writer = SegmentWriter(tmp_path / name)
        for i in range(20):
            writer.write_one(20, _event(i))
        writer.close()
        Indexer(tmp_path / name, sqlite_store).run_once()
    assert sqlite_store.count(LogQuery()) == 40


def test_reindex_rebuilds_from_the_files(tmp_path: Path, sqlite_store: LogStore) -> None:
    """reindex indexes every file of the directory again."""
    logs = tmp_path / "logs"
    configure_logging(directory=logs, console_enabled=False, non_blocking=False)
    for i in range(5):
        get_logger("re").warning("w%d", i)
    flush_logging()
    indexer = Indexer(logs, sqlite_store)
    indexer.run_once()
    sqlite_store.clear()
    assert sqlite_store.count(LogQuery()) == 0
    assert indexer.reindex().records == 5
    assert sqlite_store.count(LogQuery(min_level="WARNING")) == 5


@pytest.mark.parametrize("command", ["index", "reindex"])
def test_cli_refuses_a_missing_directory_without_creating_it(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mistyped directory is a usage error (exit 2), and no store appears in its place."""
    from plexichat.core.logging.cli import main

    missing = tmp_path / "no-such-logs"
    assert main([command, str(missing)]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert not missing.exists()


def test_a_pass_with_nothing_new_writes_nothing(tmp_path: Path) -> None:
    """Once everything is indexed, a pass leaves the database file untouched (a write per
    idle pass made every reader drop its page cache); new lines are written again."""
    import sqlite3

    logs = tmp_path / "logs"
    writer = SegmentWriter(logs, rotation_size=500)
    for i in range(30):  # several segments: closed ones and the open newest one
        writer.write_one(20, _event(i))
    db = tmp_path / "store.db"
    store = open_store(f"sqlite:///{db}")
    indexer = Indexer(logs, store)
    assert indexer.run_once().records == 30
    watcher = sqlite3.connect(db)
    version = watcher.execute("PRAGMA data_version").fetchone()[0]
    for _ in range(3):
        assert indexer.run_once().records == 0
    assert watcher.execute("PRAGMA data_version").fetchone()[0] == version
    writer.write_one(20, _event(30))
    assert indexer.run_once().records == 1
    assert watcher.execute("PRAGMA data_version").fetchone()[0] != version
    writer.close()
    watcher.close()
    assert len(_messages(store)) == 31
    store.close()
