"""SQLite-only behaviour of the log store (not part of the cross-backend contract)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from plexichat.core.logging._core.errors import ConfigError, PlexiLoggingError
from plexichat.core.logging.store import LogQuery, StoredRecord, open_store
from plexichat.core.logging.store._sqlite_schema import SCHEMA_VERSION
from plexichat.core.logging.store.base import record_from_event
from plexichat.core.logging.store.sqlite import SQLiteStore


def rec(seq: int, message: str = "m") -> StoredRecord:
    """A minimal record of stream s."""
    return record_from_event(
        {"timestamp": f"2026-01-01T00:00:{seq:02d}Z", "message": message, "stream": "s", "seq": seq}
    )


def test_parent_directories_are_created_and_wal_is_on(tmp_path: Path) -> None:
    """The store creates missing parent directories and runs in WAL mode."""
    path = tmp_path / "a" / "b" / "store.db"
    with SQLiteStore(f"sqlite:///{path}") as store:
        store.append([rec(1)])
    assert path.exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlite:///rel/store.db is a path under the current directory."""
    monkeypatch.chdir(tmp_path)
    SQLiteStore("sqlite:///rel/store.db").close()
    assert (tmp_path / "rel" / "store.db").exists()


def test_corrupt_file_names_the_path(tmp_path: Path) -> None:
    """A file that is not a database gives an error naming it and the fix."""
    path = tmp_path / "store.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(PlexiLoggingError, match=r"store\.db.*reindex"):
        SQLiteStore(f"sqlite:///{path}")


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A store made by a newer version is refused with the versions named."""
    path = tmp_path / "store.db"
    SQLiteStore(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(PlexiLoggingError, match="schema version 99"):
        SQLiteStore(f"sqlite:///{path}")


@pytest.mark.parametrize("url", ["sqlite:///", "sqlite:/x.db", "mysql://x"])
def test_bad_url_is_a_config_error(url: str) -> None:
    """A URL without a path is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="SQLite store URL"):
        SQLiteStore(url)


def test_temporary_store_is_deleted_on_close() -> None:
    """sqlite:// is a private temporary file, deleted by close()."""
    store = open_store("sqlite://")
    assert isinstance(store, SQLiteStore)
    store.append([rec(1)])
    assert store.count(LogQuery()) == 1
    path = store.path
    store.close()
    assert not path.exists()


def test_closed_store_raises(tmp_path: Path) -> None:
    """Calls after close() raise a clear error; close() twice is fine."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    store.close()
    store.close()
    with pytest.raises(PlexiLoggingError, match="closed"):
        store.count(LogQuery())
    with pytest.raises(PlexiLoggingError, match="closed"):
        store.iter_records(LogQuery())


def test_iter_records_is_a_snapshot_and_does_not_block_writes(tmp_path: Path) -> None:
    """Appending while a stream is open works; the stream does not see the new records."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    store.append([rec(i) for i in range(1, 30)])
    it = store.iter_records(LogQuery(order="asc"))
    first = next(it)
    store.append([rec(i) for i in range(30, 40)])
    rest = list(it)
    assert first.seq == 1
    assert len(rest) == 28
    assert store.count(LogQuery()) == 39
    store.close()


def test_storage_bytes_counts_the_wal(tmp_path: Path) -> None:
    """storage_bytes includes the WAL file."""
    path = tmp_path / "s.db"
    store = SQLiteStore(f"sqlite:///{path}")
    store.append([rec(i, "x" * 1000) for i in range(1, 50)])
    wal = Path(f"{path}-wal")
    assert store.stats()["storage_bytes"] == path.stat().st_size + (
        wal.stat().st_size if wal.exists() else 0
    )
    store.close()


def test_fts_stays_in_sync_with_deletes(tmp_path: Path) -> None:
    """Deleting rows (as retention will) removes them from the search index."""
    path = tmp_path / "s.db"
    store = SQLiteStore(f"sqlite:///{path}")
    store.append([rec(1, "needle one"), rec(2, "needle two")])
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM records WHERE seq = 1")
    conn.commit()
    assert (
        conn.execute("INSERT INTO records_text(records_text) VALUES('integrity-check')") is not None
    )
    conn.close()
    assert store.count(LogQuery(search="needle")) == 1
    store.close()


def test_child_process_uses_its_own_connection(tmp_path: Path) -> None:
    """After fork the child opens new connections instead of the parent's."""
    store = SQLiteStore(f"sqlite:///{tmp_path / 's.db'}")
    store.append([rec(1)])
    pid = os.fork()
    if pid == 0:
        code = 0 if store.append([rec(2)]) == 1 else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.count(LogQuery()) == 2
    store.close()


def test_a_writer_waits_for_the_write_lock_then_gives_up_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write behind another connection's write transaction goes through once the lock is
    released; held past the busy timeout, the write fails with SQLite's 'locked' error and
    nothing of it is stored. The connection's busy timeout is restored either way."""
    import threading

    from plexichat.core.logging.store import sqlite as sqlite_module

    path = tmp_path / "store.db"
    store = SQLiteStore(f"sqlite:///{path}")
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
    release.start()
    assert store.append([rec(1)]) == 1  # waited for the lock, then wrote
    release.join()
    monkeypatch.setattr(sqlite_module, "_BUSY_TIMEOUT_S", 0.2)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.append([rec(2)])
    blocker.execute("COMMIT")
    assert store.count(LogQuery()) == 1
    assert store._conn().execute("PRAGMA busy_timeout").fetchone()[0] == 200
    blocker.close()
    store.close()


def test_a_store_whose_directory_cannot_be_made_is_refused_clearly(tmp_path: Path) -> None:
    """A store URL under a file (its directory cannot be created) is a PlexiLoggingError
    naming the URL and the fix, not a bare OSError."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    url = f"sqlite:///{blocker / 'sub' / 'store.db'}"
    with pytest.raises(PlexiLoggingError, match=r"cannot create the directory.*writable"):
        SQLiteStore(url)
