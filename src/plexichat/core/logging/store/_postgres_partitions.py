"""The monthly partitions of the PostgreSQL store: created on demand, dropped by retention.

**Lock order.** A ``where`` filter walks ``plexichat_fields`` and then fetches from
``plexichat_records`` (see ``_postgres_query``), so it locks the field table (and its
partitions) before the record table. Every DDL here first takes
``LOCK TABLE plexichat_fields, plexichat_records IN ACCESS EXCLUSIVE MODE`` (:data:`LOCK`):
the same order, so a reader and a creation or a drop can wait for each other but never
deadlock. (``LOCK TABLE`` on a partitioned table locks its partitions too.)

**Waiting.** A lock request waiting in the queue makes every later request on the table wait
behind it, so every ordinary query and append of the store. A creation waits at most 3 s (then
the store inserts into the default partition for a while); a drop waits at most
:data:`DROP_WAIT` per try, a few tries with a growing pause in between (when other work
goes on). When a long reader (an export) still holds the table, the expired partitions are
emptied row by row instead (row locks do not conflict with readers) and dropped by a later
retention.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import product
from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import TupleRow

from .base import to_micros

__all__ = ["LOCK", "PARTITIONS", "create_partitions", "drop_before", "month_bounds", "next_month"]

PART = re.compile(r"plexichat_records_p(\d{4})(\d{2})")
"""The name of a monthly partition of the records (year, month)."""
PARTITIONS = """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'plexichat_records'::regclass"""
"""The names of the records' partitions (the default one included)."""
LOCK = "LOCK TABLE plexichat_fields, plexichat_records IN ACCESS EXCLUSIVE MODE"
"""Before any DDL: the tables in the order a ``where`` walk locks them (no lock cycle)."""
TABLES = ("plexichat_records", "plexichat_fields")  # partitioned alike, by month
DROP_WAIT = "100ms"
"""How long a drop waits for the tables per try (all other queries queue behind it)."""
DROP_TRIES = 4
_DROP_PAUSE_S = 0.05  # before the second try, doubled before each next one
_CREATE_WAIT = "3s"
_CHUNK = 5000  # rows deleted per statement when a partition is emptied row by row
_MOVE = """WITH m AS (DELETE FROM {} WHERE ts >= %s AND ts < %s
    RETURNING *) INSERT INTO {} SELECT * FROM m"""
_ATTACH = "ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})"
_EMPTY = "DELETE FROM {0} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {0} LIMIT %s))"

Connection = psycopg.Connection[TupleRow]


def _one(conn: Connection, query: str, *params: Any) -> Any:
    row = conn.execute(query, params or None).fetchone()
    return None if row is None else row[0]


def next_month(year: int, month: int) -> tuple[int, int]:
    """The month after ``(year, month)``."""
    return (year + 1, 1) if month == 12 else (year, month + 1)


def month_bounds(year: int, month: int) -> tuple[str, int, int]:
    """A monthly partition's name and its ``[low, high)`` bounds in microseconds."""
    low, high = (datetime(y, m, 1, tzinfo=UTC) for y, m in ((year, month), next_month(year, month)))
    return f"plexichat_records_p{year:04d}{month:02d}", to_micros(low), to_micros(high)


def partition_months(conn: Connection) -> list[tuple[str, int, int]]:
    """The bounds of every monthly partition of the records, by name."""
    names = sorted(name for (name,) in conn.execute(PARTITIONS).fetchall())
    matches = (PART.fullmatch(name) for name in names)
    return [month_bounds(*map(int, m.groups())) for m in matches if m is not None]


def create_partitions(conn: Connection, months: Iterable[tuple[int, int]]) -> bool:
    """Create the missing monthly partitions of ``months``, moving their rows out of the
    default partition. Returns False when the tables stayed locked for 3 s (a long export).

    Runs in its own short transaction before an insert, never inside one.
    """
    bounds = {b[0]: b for b in (month_bounds(*month) for month in months)}
    if not bounds:
        return True
    existing = conn.execute(PARTITIONS + " AND c.relname = ANY(%s::text[])", [list(bounds)])
    missing = sorted(set(bounds) - {name for (name,) in existing.fetchall()})
    if not missing:
        return True
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{_CREATE_WAIT}'")
            conn.execute(LOCK)
            for (name, low, high), parent in product([bounds[m] for m in missing], TABLES):
                name = name.replace(TABLES[0], parent, 1)
                if _one(conn, "SELECT to_regclass(%s)", name) is not None:
                    continue  # created meanwhile by another process
                table, top = sql.Identifier(name), sql.Identifier(parent)
                conn.execute(sql.SQL("CREATE TABLE {} (LIKE {})").format(table, top))
                default = sql.Identifier(f"{parent}_default")
                conn.execute(sql.SQL(_MOVE).format(default, table), [low, high])
                attach = sql.SQL(_ATTACH)
                conn.execute(attach.format(top, table, sql.Literal(low), sql.Literal(high)))
    except errors.LockNotAvailable:
        return False
    return True


def drop_before(conn: Connection, ts_micros: int) -> int:
    """Drop every monthly partition that ends at or before ``ts_micros`` and delete the
    default partition's rows older than it. Returns partitions dropped.

    When a long query keeps the tables locked through every try, the expired partitions
    are emptied row by row instead (they stay, empty, for a later retention to drop), so
    their records are deleted all the same.
    """
    expired = [name for name, _, high in partition_months(conn) if high <= ts_micros]
    if expired and not _drop(conn, expired):
        for name in expired:
            _empty(conn, name)
        expired = []
    conn.execute("DELETE FROM plexichat_records_default WHERE ts < %s", [ts_micros])
    conn.execute("DELETE FROM plexichat_fields_default WHERE ts < %s", [ts_micros])
    return len(expired)


def _drop(conn: Connection, names: list[str]) -> bool:
    """Drop the partitions ``names`` (records and fields) in one transaction, a few tries
    of :data:`DROP_WAIT` each. Returns False when the tables stayed locked."""
    tables = [sql.Identifier(n.replace(TABLES[0], t, 1)) for n in names for t in TABLES]
    drop = sql.SQL("DROP TABLE IF EXISTS {}").format(sql.SQL(", ").join(tables))
    pause = _DROP_PAUSE_S
    for attempt in range(DROP_TRIES):
        if attempt:
            time.sleep(pause)  # let the queries that queued behind the lock request run
            pause *= 2
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{DROP_WAIT}'")
                conn.execute(LOCK)
                conn.execute(drop)
        except errors.LockNotAvailable:
            continue
        return True
    return False


def _empty(conn: Connection, name: str) -> None:
    """Delete every row of a records partition and of its fields partition, in chunks of
    their own transactions (row locks: readers are not blocked, nor block this)."""
    for parent in TABLES:
        table = name.replace(TABLES[0], parent, 1)
        if _one(conn, "SELECT to_regclass(%s)", table) is None:
            continue
        stmt = sql.SQL(_EMPTY).format(sql.Identifier(table))
        while conn.execute(stmt, [_CHUNK]).rowcount >= _CHUNK:
            pass
