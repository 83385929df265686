"""The embedded log store: one SQLite file in WAL mode, FTS5 full-text search, keyset pages.

Threads: a store may be shared between threads. Each thread gets its own connection (WAL:
readers never wait for the writer); a write takes SQLite's write lock up front (``BEGIN
IMMEDIATE``) and waits up to the busy timeout for another writer, of this process or another.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import unicodedata
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .._core.errors import ConfigError, PlexiLoggingError
from .base import LogQuery, Page, StoredRecord, decode_cursor, encode_cursor
from .search import And, Node, Not, Or, Phrase, QuerySyntaxError, Term

__all__ = ["SQLiteStore"]

SCHEMA_VERSION = 1
_BATCH = 1000
_FEW = 5000  # a search matching fewer rows drives the query plan
_BUSY_TIMEOUT_S = 10.0
_ATTR_DEPTH = 6
_FIELDS = tuple(f.name for f in fields(StoredRecord))
_COLUMNS = ", ".join("CAST(raw AS BLOB)" if f == "raw" else f for f in _FIELDS)
_DELETE_TRIGGER = """CREATE TRIGGER IF NOT EXISTS records_ad AFTER DELETE ON records BEGIN
    INSERT INTO records_fts (records_fts, rowid, message, logger, attrs)
    VALUES ('delete', old.id, old.message, old.logger, old.attrs);
END;"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, levelno INTEGER NOT NULL, level TEXT NOT NULL,
    category TEXT NOT NULL, logger TEXT NOT NULL, module TEXT NOT NULL, message TEXT NOT NULL,
    stream TEXT NOT NULL, seq INTEGER NOT NULL, event_type TEXT, security_severity INTEGER,
    attrs TEXT NOT NULL, -- context/metadata values, for the search index
    raw TEXT NOT NULL, -- the original JSON line
    UNIQUE (stream, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS records_ts ON records (ts, id);
CREATE INDEX IF NOT EXISTS records_level_ts ON records (levelno, ts);
CREATE INDEX IF NOT EXISTS records_category_ts ON records (category, ts);
CREATE INDEX IF NOT EXISTS records_logger ON records (logger);
CREATE VIRTUAL TABLE IF NOT EXISTS records_fts USING fts5 (
    message, logger, attrs, content='records', content_rowid='id', tokenize='unicode61'
);
{_DELETE_TRIGGER}
CREATE TABLE IF NOT EXISTS positions (key TEXT PRIMARY KEY, "offset" INTEGER NOT NULL) STRICT;
INSERT INTO schema_version (version)
    SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM schema_version);
"""
_GROUPS = (
    ("levels", "level", ""),
    ("categories", "category", ""),
    ("loggers", "logger", " LIMIT 20"),
)
_INSERT = (
    "INSERT OR IGNORE INTO records (ts, levelno, level, category, logger, module, message, "
    "stream, seq, event_type, security_severity, attrs, raw) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INDEX_NEW = (
    "INSERT INTO records_fts (rowid, message, logger, attrs) "
    "SELECT id, message, logger, attrs FROM records WHERE id > ?"
)
_UPSERT_POSITION = (
    'INSERT INTO positions (key, "offset") VALUES (?, ?) '
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
        path.parent.mkdir(parents=True, exist_ok=True)
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
            with self._lock:
                self._conns.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: the write lock is taken up front, so waits use busy_timeout."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
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
            if self._version(conn) != SCHEMA_VERSION:
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
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
        rows = [_row(r) for r in records]
        with self._transaction() as conn:
            last = conn.execute("SELECT coalesce(max(id), 0) FROM records").fetchone()[0]
            inserted = conn.executemany(_INSERT, rows).rowcount if rows else 0
            if inserted > 0:  # one statement per batch: 2.5x faster than a per-row trigger
                conn.execute(_INDEX_NEW, (last,))
            for key, offset in (positions or {}).items():
                if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                    raise ValueError(
                        f"position {key!r}: offset {offset!r} is not a byte offset (int >= 0)"
                    )
                conn.execute(_UPSERT_POSITION, (key, offset))
        return max(inserted, 0)

    def positions(self) -> dict[str, int]:
        """The saved indexer positions (file key to byte offset)."""
        return dict(self._conn().execute('SELECT key, "offset" FROM positions').fetchall())

    def clear(self) -> None:
        """Delete every record, the search index and every position (before a reindex)."""
        with self._transaction() as conn:
            conn.execute("DROP TRIGGER IF EXISTS records_ad")  # one 'delete-all', not N deletes
            conn.execute("DELETE FROM records")
            conn.execute("INSERT INTO records_fts (records_fts) VALUES ('delete-all')")
            conn.execute("DELETE FROM positions")
            conn.execute(_DELETE_TRIGGER)

    def query(self, query: LogQuery) -> Page:
        """One page of records matching ``query``, in its order (newest first by default).

        Pages are keyset pages on ``(ts, id)``: records inserted between two calls never make
        a stored record appear twice or be skipped.

        Returns:
            The records (parsed original lines) and the cursor of the next page, None on the
            last page.

        Raises:
            QuerySyntaxError: the search has no words, or a value cannot be searched.
        """
        after = decode_cursor(query.cursor, query.order) if query.cursor else None
        drive = "id" if self._few_matches(query) else "+id"
        sql, params = _select(query, "id, ts, raw", after, query.limit + 1, drive)
        rows = self._conn().execute(sql, params).fetchall()
        page, more = rows[: query.limit], len(rows) > query.limit
        cursor = encode_cursor(page[-1][1], page[-1][0], query.order) if more else None
        return Page(entries=[_parse(raw) for _, _, raw in page], next_cursor=cursor)

    def _few_matches(self, query: LogQuery) -> bool:
        """Whether the search alone matches few records, so it should drive the query
        (look those rows up and sort them) rather than filter a walk down the time index."""
        expr, rest_tree = _match(query)
        if expr is None or rest_tree is not None:
            return False
        sql = "SELECT count(*) FROM (SELECT 1 FROM records_fts WHERE records_fts MATCH ? LIMIT ?)"
        return bool(self._conn().execute(sql, (expr, _FEW)).fetchone()[0] < _FEW)

    def iter_records(self, query: LogQuery) -> Iterator[StoredRecord]:
        """Every record matching ``query`` in its order, streamed in batches.

        ``limit`` is ignored; ``cursor``, when given, is honoured (streaming starts after
        it). The iteration reads one consistent snapshot on its own connection, so records
        appended meanwhile are not included and other calls are never blocked by it.

        Raises:
            QuerySyntaxError: as for :meth:`query`.
        """
        after = decode_cursor(query.cursor, query.order) if query.cursor else None
        # built now so errors raise here, not at the first next(); "+id": walk the time
        # index instead of sorting every search match (constant memory)
        sql, params = _select(query, _COLUMNS, after, None, "+id")
        if self._closed:
            raise PlexiLoggingError(f"log store {self.url!r} is closed; open it again")
        return self._stream(sql, params)

    def _stream(self, sql: str, params: list[object]) -> Iterator[StoredRecord]:
        conn = self._connect()
        try:
            cursor = conn.execute(sql, params)
            while batch := cursor.fetchmany(_BATCH):
                for row in batch:
                    yield StoredRecord(**dict(zip(_FIELDS, row, strict=True)))
        finally:
            conn.close()

    def count(self, query: LogQuery) -> int:
        """How many records match ``query`` (limit and cursor ignored)."""
        where, params = _where(query)
        row = self._conn().execute(f"SELECT count(*) FROM records WHERE {where}", params)
        return int(row.fetchone()[0])

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
        out["first"], out["last"] = (None, None) if first is None else (_iso(first), _iso(last))
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


def _iso(ts: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse(raw: str) -> dict[str, Any]:
    value = orjson.loads(raw)
    return value if isinstance(value, dict) else {"message": str(value)}


def _row(rec: StoredRecord) -> tuple[object, ...]:
    try:
        raw = rec.raw.decode()
    except UnicodeDecodeError:
        raw = rec.raw.decode(errors="replace")
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        event = None
    words: list[str] = []
    if isinstance(event, dict):
        _values(event.get("context"), words, 0)
        _values(event.get("metadata"), words, 0)
    return (
        rec.ts, rec.levelno, rec.level, rec.category, rec.logger, rec.module, rec.message,
        rec.stream, rec.seq, rec.event_type, rec.security_severity, " ".join(words), raw,
    )  # fmt: skip


def _values(value: object, out: list[str], depth: int) -> None:
    """Collect the string and number values of a JSON value (what search sees of it)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.append(str(value))
    elif depth < _ATTR_DEPTH and isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            _values(item, out, depth + 1)


def _text(value: str, what: str) -> str:
    """A string SQLite can bind (no lone surrogates)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        raise QuerySyntaxError(f"{what} {value!r} is not valid Unicode text") from None
    return value


def _select(
    query: LogQuery, columns: str, after: tuple[int, int] | None, limit: int | None, drive: str
) -> tuple[str, list[object]]:
    where, params = _where(query, drive)
    direction, op = ("DESC", "<") if query.order == "desc" else ("ASC", ">")
    if after is not None:
        where += f" AND (ts, id) {op} (?, ?)"
        params += list(after)
    sql = f"SELECT {columns} FROM records WHERE {where} ORDER BY ts {direction}, id {direction}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _where(query: LogQuery, drive: str = "id") -> tuple[str, list[object]]:
    """The WHERE clause of ``query``: SQL made only of fixed text, every value bound.

    ``drive`` is ``id`` to let the search drive the plan, ``+id`` to keep it a filter.
    """
    clauses: list[str] = ["1"]
    params: list[object] = []

    def one_of(column: str, values: Sequence[str]) -> None:
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(_text(v, column) for v in values)

    if query.min_level is not None:
        clauses.append("levelno >= ?")
        params.append(query.min_level)
    one_of("level", query.levels)
    one_of("category", query.categories)
    one_of("module", query.modules)
    one_of("event_type", query.event_types)
    if query.loggers:
        alternatives = []
        for name in query.loggers:
            if name.endswith(".*"):  # the logger and its children: a range on the index
                base = _text(name[:-2], "logger")
                alternatives.append("logger = ? OR (logger >= ? AND logger < ?)")
                params.extend((base, base + ".", base + "/"))
            else:
                alternatives.append("logger = ?")
                params.append(_text(name, "logger"))
        clauses.append(" OR ".join(f"({a})" for a in alternatives))
    if query.start_us is not None:
        clauses.append("ts >= ?")
        params.append(query.start_us)
    if query.end_us is not None:
        clauses.append("ts <= ?")
        params.append(query.end_us)
    if query.min_severity_rank is not None:
        clauses.append("security_severity >= ?")
        params.append(query.min_severity_rank)
    for key, value in query.where:
        head, _, rest = key.partition(".")
        paths = {_json_path([head, rest]), _json_path([head, *rest.split(".")])}
        # text compared as text, anything else as its JSON text: "123" matches 123
        value_sql = "(CASE json_type(raw, ?) WHEN 'text' THEN raw ->> ? ELSE raw -> ? END) = ?"
        clauses.append(" OR ".join(value_sql for _ in paths))
        for path in sorted(paths):
            params.extend((path, path, path, _text(str(value), f"value of {key}")))
    expr, rest_tree = _match(query)
    if expr is not None:
        clauses.append(f"{drive} IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)")
        params.append(expr)
    if rest_tree is not None:
        sql, search_params = _search_sql(rest_tree, drive)
        clauses.append(sql)
        params.extend(search_params)
    return " AND ".join(f"({c})" for c in clauses), params


def _match(query: LogQuery) -> tuple[str | None, Node | None]:
    """One FTS5 expression every match satisfies, and the search left for SQL, if any.

    The expression holds the search (when FTS5 can say it) and, as a pre-filter, the word
    values of ``where`` on context/metadata: they are in the ``attrs`` column.
    """
    parts: list[str] = []
    rest_tree = None
    if query.search_tree is not None:
        rest_tree = _prune(query.search_tree)
        if rest_tree is None:
            raise QuerySyntaxError(
                f"search {query.search!r} has no words to match: give letters or digits"
            )
        if (expr := _fts(rest_tree)) is not None:
            parts.append(expr)
            rest_tree = None
    for key, value in query.where:
        head, _, rest = key.partition(".")
        if head != "performance_data" and rest.count(".") < _ATTR_DEPTH and _is_words(value):
            parts.append("attrs : " + _quote(value))
    return (" AND ".join(f"({p})" for p in parts) if parts else None), rest_tree


def _is_words(value: str) -> bool:
    """Whether ``value`` is indexed as text in ``attrs`` (not a number, bool or null)."""
    try:
        float(value)
    except ValueError:
        return _has_word(value) and value not in ("true", "false", "null")
    return False


def _json_path(keys: list[str]) -> str:
    for key in keys:
        if not key or '"' in key:
            raise QuerySyntaxError(
                f"invalid field name {key!r} in {'.'.join(keys)!r}: names must not be empty "
                'or contain "'
            )
    return "$" + "".join(f'."{_text(k, "field")}"' for k in keys)


def _has_word(text: str) -> bool:
    """Whether the unicode61 tokenizer finds a token in ``text`` (letters, digits, Co)."""
    return any(
        unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Co" for ch in text
    )


def _prune(node: Node) -> Node | None:
    """Drop the words that have no token (``*``, ``--``): the tokenizer ignores them too."""
    if isinstance(node, Term | Phrase):
        return node if _has_word(node.text) else None
    if isinstance(node, Not):
        part = _prune(node.part)
        return None if part is None else Not(part)
    parts = tuple(p for p in map(_prune, node.parts) if p is not None)
    if len(parts) <= 1:
        return parts[0] if parts else None
    return And(parts) if isinstance(node, And) else Or(parts)


def _quote(text: str) -> str:
    """An FTS5 string: the user's text is only ever a quoted phrase, never an operator."""
    return '"' + _text(text, "search word").replace("\x00", " ").replace('"', '""') + '"'


def _fts(node: Node) -> str | None:
    """One FTS5 expression for ``node``, or None when FTS5 cannot say it (a NOT alone)."""
    if isinstance(node, Term | Phrase):
        return _quote(node.text)
    if isinstance(node, Or):
        parts = [_fts(p) for p in node.parts]
        return "(" + " OR ".join(p for p in parts if p) + ")" if all(parts) else None
    if isinstance(node, And):
        pos = [_fts(p) for p in node.parts if not isinstance(p, Not)]
        neg = [_fts(p.part) for p in node.parts if isinstance(p, Not)]
        if not pos or not all(pos) or not all(neg):
            return None
        expr = "(" + " AND ".join(p for p in pos if p) + ")"
        for part in neg:  # FTS5's NOT is binary: positives NOT negative
            expr = f"({expr} NOT {part})"
        return expr
    return None


def _search_sql(node: Node, drive: str) -> tuple[str, list[object]]:
    """SQL for a search tree: FTS5 MATCH where it can, SQL NOT/AND/OR around it otherwise."""
    expr = _fts(node)
    if expr is not None:
        return f"{drive} IN (SELECT rowid FROM records_fts WHERE records_fts MATCH ?)", [expr]
    if isinstance(node, Not):
        inner, params = _search_sql(node.part, drive)
        return f"NOT ({inner})", params
    assert isinstance(node, And | Or)  # a word or phrase always has an FTS5 expression
    clauses, params = [], []
    for part in node.parts:
        sql, part_params = _search_sql(part, drive)
        clauses.append(f"({sql})")
        params.extend(part_params)
    return (" AND " if isinstance(node, And) else " OR ").join(clauses), params
