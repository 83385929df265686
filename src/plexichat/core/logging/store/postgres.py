"""The PostgreSQL store: indexers on many hosts push into one database (psycopg 3).

Schema version 2 is created on open under an advisory lock, so concurrent openers are safe
(a version-1 store is upgraded; see ``_postgres_schema``).
``plexichat_records`` is partitioned by RANGE on ``ts`` (microseconds) into monthly partitions
``plexichat_records_pYYYYMM``, created on demand before inserting, plus a default partition for
times before 2000 or over a year ahead; retention drops whole partitions. ``raw`` is ``text``,
the exact line (``jsonb`` would reorder keys, rewrite numbers and reject ``\\u0000``, so exports
and hashes would no longer match the files); ``fields`` (``jsonb``) keeps only ``context``,
``metadata`` and ``performance_data`` for ``where`` filters. ``tsv`` ('simple', GIN) covers
message, logger and context/metadata values, folded like FTS5's unicode61 (punctuation splits
words, accents dropped). ``UNIQUE (stream, seq, ts)`` dedups: a record always has one ts.
``plexichat_fields`` (partitioned alike) indexes the scalar leaves of ``fields`` by a hash
of path and value, so a ``where`` filter walks ``(h, ts, id)`` newest first.

Thread-safe: a small pool of autocommit connections, each used by one thread at a time;
:meth:`PostgresStore.iter_records` streams through a server-side cursor on its own connection.
When a pooled connection turns out closed (a server restart, a terminated backend), every
idle one is discarded and a read is tried once more on a new connection; psycopg's errors
never reach callers (:class:`~plexichat.core.logging._core.errors.PlexiLoggingError`, with
the URL redacted). Partitions are created and dropped in ``_postgres_partitions``.

Search covers the first 100,000 characters of a record's text (message, logger and
context/metadata values; ``SEARCH_CHARS`` in ``_postgres_rows``): a word only past them is
not found (the SQLite store has no such limit).
"""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.pq import TransactionStatus

from .._config.model import redact_url
from .._core.errors import PlexiLoggingError
from . import _postgres_partitions as partitions
from . import _postgres_query as query_sql
from . import _postgres_schema as schema
from . import _postgres_write as write
from ._postgres_query import SENSITIVE_PARAMS, filters, generic_plan
from ._postgres_rows import stage_row
from ._postgres_schema import SCHEMA_VERSION, Connection
from .base import (
    LogQuery,
    Page,
    RawPage,
    StoredRecord,
    check_budget,
    check_tail,
    entry_page,
    micros_to_iso,
    position_stream,
    raw_page,
    to_micros,
)

if TYPE_CHECKING:
    from .retention import RetentionRules

__all__ = ["SCHEMA_VERSION", "PostgresStore", "redact_url"]

_T = TypeVar("_T")
_LOCK_KEY = 0x706C_6578_6C6F_6773  # "plexlogs": the advisory lock of schema creation
_PW_PARAM = re.compile(r"(password\s*=\s*)('[^']*'|[^\s&]*)", re.IGNORECASE)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_US = 946_684_800_000_000  # 2000-01-01: earlier times go to the default partition
_DAY_US = 86_400_000_000
_DEADLOCK_TRIES = 3  # a staged insert the server aborted to end a deadlock is tried again
_CHUNK = 5000


def _one(conn: Connection, query: str, *params: Any) -> Any:
    """The first column of the first row of ``query`` (None without a row)."""
    row = conn.execute(query, params or None).fetchone()
    return None if row is None else row[0]


class PostgresStore:
    """A :class:`~plexichat.core.logging.store.base.LogStore` in a PostgreSQL database.

    Args:
        url: ``postgresql://user[:password]@host[:port]/dbname[?options]``. The password
            never appears in messages, in ``repr`` or in :attr:`url` (which is redacted).
        pool_size: most connections open at once; more threads wait for a free one.

    Search (``LogQuery.search``) covers the first 100,000 characters of a record's text
    (message, logger and context/metadata values): a word found only past them is not matched,
    where the SQLite store finds it.

    Raises:
        PlexiLoggingError: the server cannot be reached, or its schema is newer than ours;
            any database error of a later call (never one of psycopg's own).

    Example:
        >>> store = PostgresStore("postgresql://postgres@127.0.0.1:5432/test")  # doctest: +SKIP
        >>> store.count(LogQuery(min_level="ERROR"))  # doctest: +SKIP
        0
    """

    def __init__(self, url: str, *, pool_size: int = 4) -> None:
        self.url = redact_url(url)
        self._dsn = url
        self._secrets = schema.secrets(url)
        self._slots: queue.LifoQueue[Connection | None] = queue.LifoQueue()
        for _ in range(max(1, pool_size)):
            self._slots.put(None)  # a connection is opened on first use of its slot
        self._closed = False
        self._sequence: str | None = None  # the records' id sequence, looked up once
        self._stage_next = False  # the last batch met stored records: stage the next one
        self._busy_until = 0.0  # partitions could not be created: inserts use the default
        try:
            with self._connection() as conn:
                self._create_schema(conn)
                now = datetime.now(UTC)
                months = {(now.year, now.month), partitions.next_month(now.year, now.month)}
                self._ensure_partitions(conn, months)
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> Connection:
        """A new connection, planning every statement for its values: a generic plan of a
        prepared statement guesses a ``where`` value has few records, and sorts them all.

        Pages and counts walked through the field index (see
        :func:`~._postgres_query.generic_plan`) are the exception (:meth:`_connection`
        switches): their plan is the walk whatever the values (ordered index scans, a lookup
        per match), so planning it for each page (0.15 of 0.6 ms) buys nothing.
        """
        try:
            conn = Connection.connect(self._dsn, autocommit=True, application_name="plexichat-logs")
            found = conn.execute(query_sql.CUSTOM).fetchone()
            conn.jit = str(found[1]) if found else conn.jit
            return conn
        except psycopg.Error as exc:
            message = self._scrub(exc)
        raise PlexiLoggingError(  # outside the except block: no chained psycopg error
            f"cannot connect to the PostgreSQL store {self.url}: {message} (check that the "
            "server is up and the URL's host, port, user, password and database)"
        )

    def _scrub(self, exc: BaseException) -> str:
        """The message of ``exc`` without the URL's password."""
        message = str(exc).strip()
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return _PW_PARAM.sub(r"\1***", message)

    @contextmanager
    def _connection(
        self, *, generic_plans: bool | None = False, deadlock: bool = False
    ) -> Iterator[Connection]:
        """A pooled connection for the block (waits while ``pool_size`` are in use),
        planning statements once when ``generic_plans``, for their values when False, as it
        does when None (statements whose plan does not depend on their values).

        A psycopg error leaving the block becomes a :class:`PlexiLoggingError` (a
        ``ConnectionLostError`` when the connection is closed: every idle pooled one is
        then discarded, as the server restarted or ended them too), except a
        ``DeadlockDetected`` when ``deadlock`` (the caller tries again).
        """
        if self._closed:
            raise PlexiLoggingError(f"the store {self.url} is closed")
        conn = self._slots.get()
        if conn is not None and not conn.closed and schema.ended(conn):
            conn.close()  # the server ended it: so most likely the other idle ones too
            self._discard_idle()
        reused = conn is not None and not conn.closed
        try:
            if conn is None or conn.closed:
                conn = self._connect()
            if generic_plans is not None:
                conn.plan(generic_plans)
            yield conn
        except psycopg.Error as exc:
            if deadlock and isinstance(exc, errors.DeadlockDetected):
                raise
            if conn is not None and (conn.closed or conn.broken):
                self._discard_idle()
                raise schema.ConnectionLostError(
                    f"lost the connection to the PostgreSQL store {self.url} (server restarted "
                    f"or connection terminated): {self._scrub(exc)}",
                    reused,
                ) from None
            raise PlexiLoggingError(
                f"the PostgreSQL store {self.url} failed: {type(exc).__name__}: {self._scrub(exc)}"
            ) from None
        finally:
            idle = conn is not None and conn.info.transaction_status == TransactionStatus.IDLE
            if conn is not None and (self._closed or conn.broken or not idle):
                conn.close()
            self._slots.put(None if conn is None or conn.closed else conn)

    def _read(self, work: Callable[[Connection], _T], *, generic_plans: bool | None = False) -> _T:
        """``work`` (an idempotent read) on a pooled connection, tried once more on a new
        connection when the pooled one turns out closed, and once more after a deadlock."""
        try:
            with self._connection(generic_plans=generic_plans, deadlock=True) as conn:
                return work(conn)
        except schema.ConnectionLostError as exc:
            if not exc.reused:
                raise
        except errors.DeadlockDetected:
            pass  # the server ended it to break a lock cycle: the next try goes through
        with self._connection(generic_plans=generic_plans) as conn:
            return work(conn)

    def _discard_idle(self) -> None:
        """Close every idle pooled connection (their slots open a new one when next used)."""
        idle = []
        with suppress(queue.Empty):
            while True:
                idle.append(self._slots.get_nowait())
        for conn in idle:
            if conn is not None:
                with suppress(psycopg.Error):
                    conn.close()
            self._slots.put(None)

    def close(self) -> None:
        """Close the idle connections (busy ones when released); the store is then unusable."""
        self._closed = True
        self._discard_idle()

    def _create_schema(self, conn: Connection) -> None:
        with conn.transaction():  # the advisory lock makes concurrent openers take turns
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            version = None
            if _one(conn, "SELECT to_regclass('plexichat_schema_version')") is not None:
                version = _one(conn, "SELECT max(version) FROM plexichat_schema_version")
            if version is None:
                conn.execute(schema.SCHEMA)
                return
            if _one(conn, "SELECT to_regclass('plexichat_records_id')") is None:
                conn.execute(schema.ID_INDEX)  # a store made before tail() existed
            if version == 1:
                schema.upgrade_from_1(conn, partitions.partition_months(conn))
            elif version > SCHEMA_VERSION:
                raise PlexiLoggingError(
                    f"the store {self.url} has schema version {version}, newer than this "
                    f"plexichat-logging's {SCHEMA_VERSION}: upgrade plexichat-logging"
                )

    def _ensure_partitions(self, conn: Connection, months: Iterable[tuple[int, int]]) -> None:
        """Create missing monthly partitions, moving their rows out of the default partition
        (see ``_postgres_partitions``).

        Runs in its own short transaction before an insert, never inside one (no lock cycle).
        When the table stays locked for 3 s (a long export), inserts go to the default
        partition for 30 s; a later creation moves them into place.
        """
        if time.monotonic() < self._busy_until:
            return
        if not partitions.create_partitions(conn, months):
            self._busy_until = time.monotonic() + 30

    def drop_partitions_before(self, ts_micros: int) -> int:
        """Retention: drop every monthly partition that ends at or before ``ts_micros``, and
        delete the default partition's rows older than it. Returns partitions dropped.

        Each try waits for the tables 100 ms at most (other queries wait behind it), a few
        tries; when a long query (an export) holds them throughout, the expired partitions
        are emptied row by row instead (0 dropped; a later retention drops them, empty). A
        deadlock is tried again once.
        """
        with suppress(errors.DeadlockDetected), self._connection(deadlock=True) as conn:
            return partitions.drop_before(conn, ts_micros)
        with self._connection() as conn:
            return partitions.drop_before(conn, ts_micros)

    def apply_retention(
        self, rules: RetentionRules, now: float | None = None, dry_run: bool = False
    ) -> dict[str, int]:
        """Retention (see :mod:`.retention`): drop the monthly partitions older than the
        longest rule's cut-off, delete the rest in batches. Returns deletions per rule."""
        from .retention import postgres_ops, run_retention

        ops = postgres_ops(self._connection, self.drop_partitions_before, self._delete)
        return run_retention(ops, rules, now=now, dry_run=dry_run)

    def _delete(self, keys: Sequence[tuple[int, int]]) -> int:
        """Row-by-row retention: records and their field rows, in one transaction."""
        with self._connection() as conn:
            return write.delete_rows(conn, keys)

    def append(
        self, records: Sequence[StoredRecord], positions: Mapping[str, int] | None = None
    ) -> int:
        """Insert records (one already stored, by stream and seq, is skipped) and save the
        indexer's positions, in one transaction. Returns rows inserted.

        A batch is COPied straight into the tables (of records repeated in the batch, the
        first is kept). When a record is stored already, that is undone and the batch takes the
        staged way (``ON CONFLICT DO NOTHING``), as do the batches after it until one
        inserts every row (see ``_postgres_write``).

        Raises:
            ValueError: a position is not a byte offset (an int >= 0); nothing is saved.
        """
        keys = sorted((positions or {}).items())
        for key, offset in keys:
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise ValueError(f"position {key!r}: offset {offset!r} is not a byte offset (>= 0)")
        batch = write.unique_in_order(records)
        low, high = _FIRST_US, to_micros(datetime.now(UTC) + timedelta(days=366))
        days = {rec.ts // _DAY_US for rec in batch if low <= rec.ts < high}
        months = {(d.year, d.month) for d in (_EPOCH + timedelta(days=day) for day in days)}
        for _ in range(_DEADLOCK_TRIES - 1):
            with suppress(errors.DeadlockDetected):  # the staged insert of two writers
                return self._append_once(batch, keys, months, deadlock=True)
        return self._append_once(batch, keys, months, deadlock=False)

    def _append_once(
        self,
        batch: list[StoredRecord],
        keys: list[tuple[str, int]],
        months: set[tuple[int, int]],
        *,
        deadlock: bool,
    ) -> int:
        inserted = 0
        with self._connection(generic_plans=None, deadlock=deadlock) as conn:  # no switch
            self._ensure_partitions(conn, months)
            with conn.transaction(), conn.cursor() as cur:
                rows = None
                if batch and not self._stage_next:
                    if self._sequence is None:
                        self._sequence = str(_one(conn, schema.ID_SEQUENCE))
                    copied, rows = write.copy_batch(conn, cur, batch, self._sequence)
                    inserted = copied or 0
                    self._stage_next = copied is None
                if batch and self._stage_next:
                    rows = rows or sorted(map(stage_row, batch), key=write.write_order)
                    inserted = write.insert_staged(conn, cur, rows)
                    self._stage_next = inserted < len(rows)
                if keys:
                    cur.execute(query_sql.UPSERT, [[k for k, _ in keys], [v for _, v in keys]])
        return inserted

    def positions(self) -> dict[str, int]:
        """The saved indexer positions (file key to byte offset)."""
        stmt = 'SELECT key, "offset" FROM plexichat_positions'
        return dict(self._read(lambda conn: conn.execute(stmt).fetchall()))

    def query(self, query: LogQuery) -> Page:
        """One page of records matching ``query``, in its order (keyset on ``(ts, id)``)."""
        where, params = filters(query, page=True)
        stmt, values = f"SELECT id, ts, raw FROM {where} LIMIT %s", [*params, query.limit + 1]
        found = self._read(
            lambda conn: conn.execute(stmt, values).fetchall(),
            generic_plans=generic_plan(query, where),
        )
        return entry_page(found, query)

    def query_raw(self, query: LogQuery) -> RawPage:
        """The page :meth:`query` returns, as the stored lines (never parsed), with whether
        each record is a security or audit record, read from its columns (see
        :class:`~plexichat.core.logging.store.base.RawPage`)."""
        where, params = filters(query, page=True)
        stmt = f"{query_sql.RAW_PAGE}{where} LIMIT %s"
        values = [*SENSITIVE_PARAMS, *params, query.limit + 1]
        found = self._read(
            lambda conn: conn.execute(stmt, values).fetchall(),
            generic_plans=generic_plan(query, where),
        )
        return raw_page(found, query)

    def try_query_raw(self, query: LogQuery, budget: float) -> RawPage | None:
        """Always None: a query is a network round trip, whose time cannot be bounded, so an
        event loop must run :meth:`query_raw` in a worker thread.

        Raises:
            ValueError: ``budget`` is not a number of seconds > 0 (as for SQLite).
        """
        check_budget(budget)
        return None

    def iter_records(self, query: LogQuery) -> Iterator[StoredRecord]:
        """Every matching record in the query's order (limit ignored, cursor honoured),
        streamed through a server-side cursor on a connection of its own: constant memory.

        Raises:
            QuerySyntaxError: as for :meth:`query` (at the call, not at the first record).
        """
        where, params = filters(query, page=True)
        if self._closed:
            raise PlexiLoggingError(f"the store {self.url} is closed")
        return self._stream(query_sql.RECORD + where, params)

    def _stream(self, stmt: str, params: list[Any]) -> Iterator[StoredRecord]:
        conn = self._connect()
        try:
            with conn.transaction(), conn.cursor(name="plexichat_iter") as cur:
                cur.itersize = 2000
                for row in cur.execute(stmt, params):
                    yield StoredRecord(*row)
        except psycopg.Error as exc:
            message = f"{type(exc).__name__}: {self._scrub(exc)}"
            raise PlexiLoggingError(
                f"reading the PostgreSQL store {self.url} failed: {message}"
            ) from None
        finally:
            conn.close()

    def tail(
        self, after_id: int, limit: int, before_id: int | None = None
    ) -> list[tuple[int, StoredRecord]]:
        """Up to ``limit`` rows with ``after_id < id < before_id``, in id order.

        Identity ids are taken at insert time, so a concurrent transaction can commit an
        id lower than one already visible: a reader tracks the ids it has seen (the hub
        of the live tail does).

        Raises:
            ValueError: ``limit`` is not 1..10000, or an id is not an int >= 0.
        """
        after_id, limit, before_id = check_tail(after_id, limit, before_id)
        values = [after_id, before_id, limit]
        rows = self._read(lambda conn: conn.execute(query_sql.TAIL, values).fetchall())
        return [(row[0], StoredRecord(*row[1:])) for row in rows]

    def last_id(self) -> int:
        """The highest row id committed (0 when the store is empty)."""
        stmt = "SELECT coalesce(max(id), 0) FROM plexichat_records"
        return int(self._read(lambda conn: _one(conn, stmt)))

    def count(self, query: LogQuery) -> int:
        """How many records match ``query`` (limit and cursor ignored)."""
        where, params = filters(query, page=False)
        stmt = "SELECT count(*) FROM " + where
        found = self._read(
            lambda conn: _one(conn, stmt, *params), generic_plans=generic_plan(query, where)
        )
        return int(found)

    def stats(self) -> dict[str, Any]:
        """Counts per level and category, the 20 busiest loggers, time range, storage size.

        Returns:
            ``{"records", "levels", "categories", "loggers", "first", "last",
            "storage_bytes"}``; ``first``/``last`` are ISO-8601 UTC times or None.
        """
        rows, size = self._read(
            lambda conn: (conn.execute(query_sql.STATS).fetchall(), _one(conn, schema.SIZE))
        )
        out: dict[str, Any] = {"records": 0, "first": None, "last": None}
        groups = {3: "levels", 5: "categories", 6: "loggers"}  # GROUPING() bit masks
        out.update({name: {} for name in groups.values()})
        for grouping, name, n, first, last in rows:
            if grouping == 7 and n:
                out.update(records=n, first=micros_to_iso(first), last=micros_to_iso(last))
            elif grouping != 7 and (grouping != 6 or len(out["loggers"]) < 20):
                out[groups[grouping]][name] = n
        out["storage_bytes"] = int(size)
        return out

    def delete_streams(self, streams: Sequence[str]) -> int:
        """Delete the records of ``streams`` (their field rows too) and their segments'
        positions, positions first; records in chunks of their own transactions. Returns
        records deleted."""
        wanted = sorted(set(streams))
        if not wanted:
            return 0
        deleted = 0
        with self._connection() as conn:
            with conn.transaction():
                keys = conn.execute("SELECT key FROM plexichat_positions").fetchall()
                doomed = [k for (k,) in keys if position_stream(k) in set(wanted)]
                conn.execute("DELETE FROM plexichat_positions WHERE key = ANY(%s)", [doomed])
            while rows := conn.execute(query_sql.STREAM_ROWS, [wanted, _CHUNK]).fetchall():
                deleted += write.delete_rows(conn, rows)
        return deleted

    def clear(self) -> None:
        """Delete every record and position (before a reindex)."""
        with self._connection() as conn:
            conn.execute("TRUNCATE plexichat_records, plexichat_fields, plexichat_positions")
