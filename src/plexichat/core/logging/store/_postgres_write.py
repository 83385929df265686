"""Writing to the PostgreSQL store: a batch of records by COPY, the staged way when some are
stored already, and row-by-row deletes (retention) with their field rows.

**COPY, streaming.** A batch (in key order, each key once) goes straight into
``plexichat_records`` by one binary COPY, with ids reserved from the table's identity
sequence, and its field hashes into ``plexichat_fields`` by a second one. Each record's row
is made (:func:`~._postgres_rows.stage_row`, its tsvector included) while the COPY runs, so
the server inserts the rows already sent while the next ones are made. The few search
texts whose tsvector only the server can make are held back and sent after the others,
with the vectors it made for them.

**Order.** Rows go in the order of :func:`write_order`: records whose tsvector is made here
first, then the others, each group by ``(stream, seq, ts)`` (``stream`` by code point). The
staged insert uses the same order. A COPY into several partitions still takes its keys'
locks partition by partition, so two writers of overlapping batches can deadlock: a COPY
the server picks as the victim rolls back to its savepoint like a unique violation (below),
and a staged insert picked as the victim is tried again (``PostgresStore.append``).

**Records stored already.** COPY has no ``ON CONFLICT``: a key stored already (another
indexer, a reindex over stored records) fails the COPY with a unique violation, which rolls
back to a savepoint (ids taken are skipped, as ``ON CONFLICT`` skips them too), and the batch
takes the staged way: a temporary table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors
from psycopg.rows import TupleRow
from psycopg.types.string import BytesBinaryDumper

from . import _postgres_schema as schema
from ._postgres_query import clean
from ._postgres_rows import clamp, stage_row, stored_hashes
from .base import StoredRecord

Connection = psycopg.Connection[TupleRow]
Cursor = psycopg.Cursor[TupleRow]

_FIELD_ROW = struct.Struct(">hiqiqiq").pack  # a binary COPY tuple: three 8-byte integers
_BINARY_HEAD = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no extension
_BINARY_TAIL = b"\xff\xff"
_DELETE = """DELETE FROM plexichat_records WHERE (ts, id) IN
    (SELECT * FROM unnest(%s::bigint[], %s::bigint[])) RETURNING ts, id, fields"""
_DELETE_FIELDS = """DELETE FROM plexichat_fields f
    USING unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS k(h, ts, id)
    WHERE f.h = k.h AND f.ts = k.ts AND f.id = k.id"""  # a nested loop on (h, ts, id)


def record_key(rec: StoredRecord) -> tuple[str, int, int]:
    """A record's ``(stream, seq, ts)`` as stored (NUL removed, seq clamped to a bigint)."""
    return clean(rec.stream), clamp(rec.seq, 64), rec.ts


def unique_in_order(records: Sequence[StoredRecord]) -> list[StoredRecord]:
    """The records by :func:`record_key`, the first of each key only."""
    keyed = sorted(((record_key(rec), n, rec) for n, rec in enumerate(records)))
    return [rec for i, (key, _, rec) in enumerate(keyed) if i == 0 or keyed[i - 1][0] != key]


def write_order(row: tuple[Any, ...]) -> tuple[bool, str, int, int]:
    """Where a staged row goes in a batch: rows whose tsvector the server makes last."""
    return row[13] is None, row[7], row[8], row[0]


def copy_batch(
    conn: Connection, cur: Cursor, records: list[StoredRecord], sequence: str
) -> tuple[int | None, list[tuple[Any, ...]]]:
    """COPY records (from :func:`unique_in_order`) into the records and their field rows
    under a savepoint. Returns the rows inserted (None when one was stored already: nothing
    of the batch is left) and the staged rows, in :func:`write_order`.
    """
    rows: list[tuple[Any, ...]] = []  # sent, in order
    held: list[tuple[Any, ...]] = []  # their tsvector to be made by the server
    try:
        with conn.transaction():
            reserve = conn.execute(schema.RESERVE, [sequence, len(records)]).fetchone()
            ids: list[int] = sorted(reserve[0]) if reserve else []
            cur.adapters.register_dumper(bytes, BytesBinaryDumper)  # not dbapi20's Binary
            with cur.copy(schema.COPY_DIRECT) as copy:
                copy.set_types(schema.DIRECT_TYPES)
                for rec in records:
                    row = stage_row(rec)
                    if row[13] is None:
                        held.append(row)
                    else:
                        copy.write_row((ids[len(rows)], *row[:14]))
                        rows.append(row)
            if held:  # the server makes their vectors, then they are sent
                made = conn.execute(schema.VECTORS, [[row[14] for row in held]]).fetchone()
                vectors = made[0] if made else []
                with cur.copy(schema.COPY_DIRECT) as copy:
                    copy.set_types(schema.DIRECT_TYPES)
                    for row_id, row, vector in zip(ids[len(rows) :], held, vectors, strict=True):
                        copy.write_row((row_id, *row[:13], vector))
            hashes = [
                _FIELD_ROW(3, 8, h, 8, row[0], 8, row_id)
                for row_id, row in zip(ids, rows + held, strict=True)
                for h in row[15] or ()
            ]
            if hashes:
                hashes.sort()  # by hash (as bytes): a value's rows of the batch share pages
                with cur.copy(schema.COPY_FIELDS_BINARY) as copy:
                    copy.write(b"".join([_BINARY_HEAD, *hashes, _BINARY_TAIL]))
    except (errors.UniqueViolation, errors.DeadlockDetected):
        rest = [stage_row(rec) for rec in records[len(rows) + len(held) :]]
        return None, sorted(rows + held + rest, key=write_order)
    return len(records), rows + held


def insert_staged(conn: Connection, cur: Cursor, rows: list[tuple[Any, ...]]) -> int:
    """Staged rows through a temporary table: ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING`` in :func:`write_order`, with the field rows of the records inserted. Returns
    the rows inserted."""
    cur.execute(schema.APPEND_SETTINGS)
    cur.execute(schema.STAGE)
    cur.adapters.register_dumper(bytes, BytesBinaryDumper)
    with cur.copy(schema.COPY_STAGE) as copy:
        copy.set_types(schema.STAGE_TYPES)
        for row in rows:
            copy.write_row((*row[:14], None if row[13] is not None else row[14], row[15]))
    found = conn.execute(schema.INSERT).fetchone()
    return int(found[0]) if found else 0


def delete_rows(conn: Connection, keys: Sequence[tuple[int, int]]) -> int:
    """Delete records by ``(ts, id)`` and their ``plexichat_fields`` rows, in one
    transaction. Returns records deleted.

    A record's field rows are found by their hashes, made again from its stored ``fields``
    (as the upgrade from version 1 makes them): the index ``(h, ts, id)`` is all that table
    has.
    """
    columns = [[ts for ts, _ in keys], [row_id for _, row_id in keys]]
    with conn.transaction():
        rows = conn.execute(_DELETE, columns).fetchall()
        found = [(h, ts, row_id) for ts, row_id, fields in rows for h in stored_hashes(fields)]
        if found:
            conn.execute(_DELETE_FIELDS, [list(column) for column in zip(*found, strict=True)])
    return len(rows)
