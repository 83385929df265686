"""The embedded log store: one SQLite file in WAL mode, FTS5 full-text search, keyset pages.

Threads: a store may be shared between threads. Each thread gets its own connection (WAL:
readers never wait for the writer); a write takes SQLite's write lock up front (``BEGIN
IMMEDIATE``) and waits up to the busy timeout for another writer, of this process or another.
"""

from __future__ import annotations

import math
import os
import sqlite3
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._core.errors import ConfigError, PlexiLoggingError
from ._sqlite_budget import Budget
from ._sqlite_query import (
    _match,
    _select,
    _select_by_search,
    _where,
)
from ._sqlite_rows import row_of, unstored
from ._sqlite_schema import DELETE_TRIGGER, SCHEMA, SCHEMA_VERSION, upgrade_from_v1
from ._sqlite_tid import allocate
from .base import (
    LogQuery,
    Page,
    RawPage,
    StoredRecord,
    check_budget,
    check_tail,
    decode_cursor,
    entry_page,
    micros_to_iso,
    position_stream,
    raw_page,
)

if TYPE_CHECKING:
    from .retention import RetentionRules

__all__ = ["SQLiteStore"]

_BATCH = 1000
_FEW = 5000  # a search matching fewer rows drives the query plan
_BUSY_TIMEOUT_S = 10.0
_RETRY_S = 0.002  # between two tries of a writer waiting for the write lock
_UPGRADE_WAIT_S = 3600.0  # for the write lock, when opening a store another may be upgrading
_CACHE_KIB = 32768  # page cache per connection, at most (SQLite's default 2 MiB makes the
# indexer re-read index pages of a large store: ~8% slower at 200,000 records)
_SEARCH_STEPS = 400_000  # work for the search-first plan (~5 ms) before the other plan
_FIELDS = tuple(f.name for f in fields(StoredRecord) if f.name != "doc")  # doc: never stored
_COLUMNS = ", ".join("CAST(raw AS BLOB)" if f == "raw" else f for f in _FIELDS)
_RAW_PAGE = "tid, ts, CAST(raw AS BLOB), sensitive"  # what query_raw reads
_GROUPS = (
    ("levels", "level", ""),
    ("categories", "category", ""),
    ("loggers", "logger", " LIMIT 20"),
)
_INSERT = (
    "INSERT OR IGNORE INTO records (ts, levelno, level, category, logger, module, message, "
    "stream, seq, event_type, security_severity, sensitive, attrs, raw, tid, id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INDEX_NEW = (
    "INSERT INTO records_text (rowid, message, logger, attrs) "
    "SELECT tid, message, logger, attrs FROM records WHERE id > ?"
)
_POSITION_KEYS = "SELECT key FROM file_positions"
_DELETE_STREAM = (
    "DELETE FROM records WHERE tid IN "
    "(SELECT tid FROM records WHERE stream = ? ORDER BY tid LIMIT ?)"
)
_LAST_ID = "SELECT coalesce(max(value), 0) FROM counters WHERE name = 'last_id'"
_SAVE_LAST_ID = (
    "INSERT INTO counters (name, value) VALUES ('last_id', ?) "
    "ON CONFLICT (name) DO UPDATE SET value = excluded.value"
)
_UPSERT_POSITION = (
    'INSERT INTO file_positions (key, "offset") VALUES (?, ?) '
    'ON CONFLICT (key) DO UPDATE SET "offset" = excluded."offset"'
)


class SQLiteStore:
    """A :class:`~plexichat.core.logging.store.LogStore` in one SQLite file.

    Args:
        url: ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or ``sqlite://``
            (a temporary store). Missing parent directories are created.

    Raises:
        ConfigError: the URL is not an SQLite URL with a path.
        PlexiLoggingError: the file is not a usable store (damaged, not a database, or
            made by a newer version); the message names the path and the fix.

    Example:
        >>> store = SQLiteStore("sqlite://")
        >>> store.count(LogQuery())
        0
        >>> store.close()
    """

    def __init__(self, url: str) -> None:
        self.url = url
        path = _path_from_url(url)
        if path is None:
            fd, name = tempfile.mkstemp(prefix="plexichat-store-", suffix=".db")
            os.close(fd)
            path = Path(name)
            weakref.finalize(self, _remove_files, path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PlexiLoggingError(
                f"cannot create the directory of the SQLite store {url!r}: {exc.strerror or exc}"
                "; give a store URL in a writable directory"
            ) from exc
        self.path: Path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._inherited: list[sqlite3.Connection] = []  # a forked parent's; never used or closed
        self._pid = os.getpid()
        self._closed = False
        self._open_schema()

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
        except sqlite3.DatabaseError as exc:
            raise self._unusable(exc) from exc
        return conn

    def _unusable(self, exc: BaseException) -> PlexiLoggingError:
        return PlexiLoggingError(
            f"log store {str(self.path)!r} cannot be opened: {exc}. If the file is damaged, "
            "move it away and run `plexichat-logs reindex` to rebuild it from the log files"
        )

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        if self._closed:
            raise PlexiLoggingError(f"log store {self.url!r} is closed; open it again")
        if os.getpid() != self._pid:  # forked: never touch the parent's connections
            with self._lock:
                self._inherited.extend(self._conns)
                self._conns, self._pid, self._local = [], os.getpid(), threading.local()
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.budget = Budget(conn)
            with self._lock:
                self._conns.append(conn)
        return conn

    @contextmanager
    def _transaction(self, wait: float = _BUSY_TIMEOUT_S) -> Iterator[sqlite3.Connection]:
        """A write transaction: the write lock is taken up front, waiting up to ``wait``
        seconds for it (see :func:`_begin`)."""
        conn = self._conn()
        _begin(conn, wait)
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _open_schema(self) -> None:
        if sqlite3.sqlite_version_info < (3, 38):
            raise PlexiLoggingError(
                f"SQLite {sqlite3.sqlite_version} is too old for the log store: 3.38 or "
                "newer is needed (use a Python linked against a newer SQLite)"
            )
        conn = self._conn()
        try:
            if self._version(conn) is None:
                conn.executescript(f"BEGIN IMMEDIATE;{SCHEMA}COMMIT;")
            elif self._version(conn) == 1:
                # another process may be upgrading it (~40 s per million records): wait
                with self._transaction(wait=_UPGRADE_WAIT_S):  # see _sqlite_schema
                    if self._version(conn) == 1:  # not done meanwhile by another process
                        upgrade_from_v1(conn)
            version = self._version(conn)
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.close()
            raise self._unusable(exc) from exc
        if version != SCHEMA_VERSION:
            self.close()
            raise PlexiLoggingError(
                f"log store {str(self.path)!r} has schema version {version}, this version of "
                f"plexichat-logging reads {SCHEMA_VERSION}: upgrade plexichat-logging, or "
                "move the file away and run `plexichat-logs reindex`"
            )

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int | None:
        try:
            row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return None if row is None else row[0]

    def append(
        self, records: Sequence[StoredRecord], positions: Mapping[str, int] | None = None
    ) -> int:
        """Insert records and save indexer positions in one transaction.

        A record whose ``(stream, seq)`` is already stored is skipped. Either everything is
        saved or, on any error, nothing.

        Args:
            records: the records to index.
            positions: file key to byte offset, saved with the records.

        Returns:
            How many records were inserted (skipped duplicates not counted).

        Raises:
            ValueError: a position is not a byte offset (an int >= 0); nothing is saved.
        """
        with self._transaction() as conn:
            # ids are given only to records not stored yet, from a mark that never goes
            # back (deletes at the top, clear()): the live tail reads ids in order, with
            # no gap to wait on and no id used twice
            fresh = unstored(conn, records)
            last = max(
                conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0],
                conn.execute(_LAST_ID).fetchone()[0],
            )
            keys = allocate(conn, [r.ts for r in fresh])
            rows = [
                (*row_of(rec), key, last + n)
                for n, (rec, key) in enumerate(zip(fresh, keys, strict=True), 1)
            ]
            inserted = conn.executemany(_INSERT, rows).rowcount if rows else 0
            if inserted > 0:  # one statement per batch: 2.5x faster than a per-row trigger
                conn.execute(_INDEX_NEW, (last,))
                conn.execute(_SAVE_LAST_ID, (last + len(rows),))
            for key, offset in (positions or {}).items():
                if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                    raise ValueError(
                        f"position {key!r}: offset {offset!r} is not a byte offset (int >= 0)"
                    )
                conn.execute(_UPSERT_POSITION, (key, offset))
        return max(inserted, 0)

    def positions(self) -> dict[str, int]:
        """The saved indexer positions (file key to byte offset)."""
        return dict(self._conn().execute('SELECT key, "offset" FROM file_positions').fetchall())

    def clear(self) -> None:
        """Delete every record, the search index and every position (before a reindex)."""
        with self._transaction() as conn:
            conn.execute("DROP TRIGGER IF EXISTS records_ad")  # one 'delete-all', not N deletes
            conn.execute("DELETE FROM records")
            conn.execute("INSERT INTO records_text (records_text) VALUES ('delete-all')")
            conn.execute("DELETE FROM file_positions")
            conn.execute(DELETE_TRIGGER)

    def delete_streams(self, streams: Sequence[str]) -> int:
        """Delete the records of ``streams`` and their segments' positions (positions first:
        a crash half-way leaves records that the next pass finds stored already). Records go
        in chunks, one statement each in key order (see ``retention._SQLITE_DELETE``), so
        writers get the lock between chunks. Returns records deleted."""
        wanted = set(streams)
        if not wanted:
            return 0
        with self._transaction() as conn:
            keys = [k for (k,) in conn.execute(_POSITION_KEYS) if position_stream(k) in wanted]
            conn.executemany("DELETE FROM file_positions WHERE key = ?", [(k,) for k in keys])
        deleted = 0
        for stream in sorted(wanted):
            done = _BATCH
            while done == _BATCH:
                with self._transaction() as conn:
                    done = conn.execute(_DELETE_STREAM, (stream, _BATCH)).rowcount
                deleted += done
        return deleted

    def apply_retention(
        self, rules: RetentionRules, now: float | None = None, dry_run: bool = False
    ) -> dict[str, int]:
        """Retention (see :mod:`.retention`): delete in short transactions with pauses, so
        writers never wait long; the delete trigger keeps the search index in step.
        Returns deletions per rule."""
        from .retention import run_retention, sqlite_ops

        ops = sqlite_ops(self._conn, self._transaction)
        return run_retention(ops, rules, now=now, dry_run=dry_run)

    def query(self, query: LogQuery) -> Page:
        """One page of records matching ``query``, in its order (newest first by default).

        Pages are keyset pages on the time-ordered key (``_sqlite_tid``): records inserted
        between two calls never make a stored record appear twice or be skipped.

        Returns:
            The records (parsed original lines) and the cursor of the next page, None on the
            last page.

        Raises:
            QuerySyntaxError: the search has no words, or a value cannot be searched.
        """
        rows = self._page_rows(self._conn(), self._budget(), query, "tid, ts, raw", [])
        return entry_page(rows, query)

    def query_raw(self, query: LogQuery) -> RawPage:
        """The page :meth:`query` returns, as the stored lines (never parsed), with whether
        each record is a security or audit record, read from its columns (see
        :class:`~plexichat.core.logging.store.base.RawPage`).

        Raises:
            QuerySyntaxError: as for :meth:`query`.
        """
        return self._raw_page(self._conn(), self._budget(), query)

    def _budget(self) -> Budget:
        """The progress handler of this thread's connection (:meth:`_conn`)."""
        self._conn()
        budget: Budget = self._local.budget
        return budget

    def try_query_raw(self, query: LogQuery, budget: float) -> RawPage | None:
        """:meth:`query_raw` for a caller that must not block (an event loop): the page when
        it is read within about ``budget`` seconds, else None (then call :meth:`query_raw`
        in a worker thread).

        The read uses a connection of this thread that never waits for a lock (a busy
        database gives None at once) and that SQLite interrupts once the deadline passes
        (its progress handler checks the time every few hundred virtual machine steps).

        Raises:
            ValueError: ``budget`` is not a number of seconds > 0.
            QuerySyntaxError: as for :meth:`query`.
        """
        seconds = check_budget(budget)
        conn, limits = self._quick_conn()
        limits.deadline = time.monotonic() + seconds
        try:
            return self._raw_page(conn, limits, query)
        except sqlite3.OperationalError:  # interrupted at the deadline, or a busy database
            return None
        finally:
            limits.deadline = math.inf

    def _quick_conn(self) -> tuple[sqlite3.Connection, Budget]:
        """This thread's connection for :meth:`try_query_raw` (no busy wait, interrupted
        at the deadline its :class:`Budget` holds)."""
        self._conn()  # refuses a closed store; a forked child starts afresh
        local = self._local
        conn: sqlite3.Connection | None = getattr(local, "quick", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=0, isolation_level=None, check_same_thread=False
                )
            except sqlite3.DatabaseError as exc:
                raise self._unusable(exc) from exc
            local.quick, local.quick_budget = conn, Budget(conn)
            with self._lock:
                self._conns.append(conn)
        limits: Budget = local.quick_budget
        return conn, limits

    def _raw_page(self, conn: sqlite3.Connection, budget: Budget, query: LogQuery) -> RawPage:
        rows = self._page_rows(conn, budget, query, _RAW_PAGE, [])
        return raw_page(rows, query)

    def _page_rows(
        self,
        conn: sqlite3.Connection,
        budget: Budget,
        query: LogQuery,
        columns: str,
        column_params: list[object],
    ) -> list[Any]:
        """The rows of one page (and one more, if any): first through the search index
        (newest matches first, see :func:`._sqlite_query._select_by_search`) within
        :data:`_SEARCH_STEPS`, else the plan that filters a walk down the time order."""
        after = decode_cursor(query.cursor, query.order) if query.cursor else None
        plan = _select_by_search(query, columns, after, query.limit + 1)
        if plan is not None:
            rows = budget.run(conn, plan[0], [*column_params, *plan[1]], _SEARCH_STEPS)
            if rows is not None:
                return rows
        drive = "tid" if self._few_matches(query, conn) else "+tid"
        sql, params = _select(query, columns, after, query.limit + 1, drive)
        return conn.execute(sql, [*column_params, *params]).fetchall()

    def _few_matches(self, query: LogQuery, conn: sqlite3.Connection) -> bool:
        """Whether the search alone matches few records, so it should drive the query
        (look those rows up and sort them) rather than filter a walk down the time index."""
        expr, rest_tree = _match(query)
        if expr is None or rest_tree is not None:
            return False
        sql = "SELECT count(*) FROM (SELECT 1 FROM records_text WHERE records_text MATCH ? LIMIT ?)"
        found = conn.execute(sql, (expr, _FEW)).fetchone()[0]
        return bool(found < _FEW)

    def iter_records(self, query: LogQuery) -> Iterator[StoredRecord]:
        """Every record matching ``query`` in its order, streamed in batches.

        ``limit`` is ignored; ``cursor``, when given, is honoured (streaming starts after
        it). The iteration reads one consistent snapshot on its own connection, so records
        appended meanwhile are not included and other calls are never blocked by it.

        Raises:
            QuerySyntaxError: as for :meth:`query`.
        """
        after = decode_cursor(query.cursor, query.order) if query.cursor else None
        # built now so errors raise here, not at the first next(); "+tid": walk the time
        # order instead of sorting every search match (constant memory)
        sql, params = _select(query, _COLUMNS, after, None, "+tid")
        if self._closed:
            raise PlexiLoggingError(f"log store {self.url!r} is closed; open it again")
        return self._stream(sql, params)

    def _stream(self, sql: str, params: list[object]) -> Iterator[StoredRecord]:
        conn = self._connect()
        try:
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(_BATCH):
                for row in batch:
                    yield StoredRecord(*row)  # the columns are selected in field order
        finally:
            conn.close()

    def count(self, query: LogQuery) -> int:
        """How many records match ``query`` (limit and cursor ignored)."""
        where, params = _where(query)
        row = self._conn().execute(f"SELECT count(*) FROM records WHERE {where}", params)
        return int(row.fetchone()[0])

    def tail(
        self, after_id: int, limit: int, before_id: int | None = None
    ) -> list[tuple[int, StoredRecord]]:
        """Up to ``limit`` rows with ``after_id < id < before_id``, in id order (the live
        tail: ids grow with every insert).

        Raises:
            ValueError: ``limit`` is not 1..10000, or an id is not an int >= 0.
        """
        after_id, limit, before_id = check_tail(after_id, limit, before_id)
        sql = f"SELECT id, {_COLUMNS} FROM records WHERE id > ? AND id < ? ORDER BY id LIMIT ?"
        rows = self._conn().execute(sql, (after_id, before_id, limit)).fetchall()
        return [(row[0], StoredRecord(*row[1:])) for row in rows]

    def last_id(self) -> int:
        """The highest row id stored (0 when the store is empty)."""
        return int(self._conn().execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        """Counts per level and category, the 20 busiest loggers, time range, storage size.

        Returns:
            ``{"records", "levels", "categories", "loggers", "first", "last",
            "storage_bytes"}``; ``first``/``last`` are ISO-8601 UTC times or None.
        """
        conn = self._conn()
        conn.execute("BEGIN")  # one snapshot for all the numbers
        try:
            total, first, last = conn.execute(
                "SELECT count(*), min(ts), max(ts) FROM records"
            ).fetchone()
            out: dict[str, Any] = {"records": total}
            for key, column, top in _GROUPS:
                sql = f"SELECT {column}, count(*) AS n FROM records GROUP BY 1 ORDER BY n DESC, 1"
                out[key] = dict(conn.execute(sql + top).fetchall())
        finally:
            conn.execute("COMMIT")
        out["first"], out["last"] = (
            (None, None) if first is None else (micros_to_iso(first), micros_to_iso(last))
        )
        files = (self.path, Path(f"{self.path}-wal"))
        out["storage_bytes"] = sum(p.stat().st_size for p in files if p.exists())
        return out

    def close(self) -> None:
        """Close every connection (a temporary ``sqlite://`` store is deleted). Idempotent."""
        with self._lock:
            conns, self._conns, self._closed = self._conns, [], True
        for conn in conns:
            with suppress(sqlite3.Error):
                conn.close()
        if self.url in _TEMPORARY_URLS:
            _remove_files(self.path)

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_TEMPORARY_URLS = ("sqlite://", "sqlite:///:memory:")


def _path_from_url(url: str) -> Path | None:
    if url in _TEMPORARY_URLS:
        return None
    if not url.startswith("sqlite:///") or url == "sqlite:///":
        raise ConfigError(
            f"invalid SQLite store URL {url!r}: use sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite:// (temporary)"
        )
    return Path(url.removeprefix("sqlite:///")).expanduser().absolute()


def _remove_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with suppress(OSError):
            os.unlink(f"{path}{suffix}")


def _begin(conn: sqlite3.Connection, wait: float) -> None:
    """``BEGIN IMMEDIATE``, tried again every :data:`_RETRY_S` for up to ``wait`` seconds.

    SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms), so a
    writer behind another could sleep through the pause that retention leaves between its
    short transactions and wait hundreds of ms; polling takes the lock within a few ms of
    its release.

    Raises:
        sqlite3.OperationalError: still locked after ``wait`` seconds, or another error.
    """
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(_RETRY_S)
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
