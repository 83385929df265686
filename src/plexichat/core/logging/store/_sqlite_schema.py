"""The SQLite store's schema, and the upgrade of a store written by schema version 1.

The record table is clustered by its time-ordered key ``tid`` (the rowid, see
:mod:`._sqlite_tid`): a page newest first is a walk down the table itself, and a search
match (whose rowid is a ``tid``) is one rowid lookup. ``id`` is the order of insertion,
which the live tail follows. ``sensitive`` says, once at insert, whether a record is a
security or audit record, so pages and the viewer's filter read one integer instead of
comparing three text columns per row.

The search index (``records_text``) and the indexer positions (``file_positions``) have
other names than in version 1, so a process of the previous version still running after
the upgrade fails loudly: its search finds no table (rather than misreading the new
rowids), and its write transaction, which saves positions with the records, rolls back
(rather than saving positions past records its ``INSERT OR IGNORE`` skipped).
"""

from __future__ import annotations

import sqlite3
from typing import Final

from ._sqlite_tid import base
from .base import sensitive_columns

__all__ = ["DELETE_TRIGGER", "FTS", "SCHEMA", "SCHEMA_VERSION", "upgrade_from_v1"]

SCHEMA_VERSION: Final = 2

_RECORDS = """CREATE TABLE IF NOT EXISTS records (
    tid INTEGER PRIMARY KEY, -- time-ordered key: page order, search index rowid (_sqlite_tid)
    id INTEGER NOT NULL UNIQUE, -- insertion order: the live tail
    ts INTEGER NOT NULL, levelno INTEGER NOT NULL, level TEXT NOT NULL,
    category TEXT NOT NULL, logger TEXT NOT NULL, module TEXT NOT NULL, message TEXT NOT NULL,
    stream TEXT NOT NULL, seq INTEGER NOT NULL, event_type TEXT, security_severity INTEGER,
    sensitive INTEGER NOT NULL, -- 1: a security or audit record (base.is_sensitive)
    attrs TEXT NOT NULL, -- context/metadata values, for the search index
    raw TEXT NOT NULL, -- the original JSON line
    UNIQUE (stream, seq)
) STRICT"""
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS records_ts ON records (ts, id)",
    "CREATE INDEX IF NOT EXISTS records_level_ts ON records (levelno, ts)",
    "CREATE INDEX IF NOT EXISTS records_category_ts ON records (category, ts)",
    "CREATE INDEX IF NOT EXISTS records_logger ON records (logger)",
)
FTS: Final = """CREATE VIRTUAL TABLE IF NOT EXISTS records_text USING fts5 (
    message, logger, attrs, content='records', content_rowid='tid', tokenize='unicode61',
    columnsize=0 -- no per-row sizes: they only serve ranking, which pages do not use
)"""
DELETE_TRIGGER: Final = """CREATE TRIGGER IF NOT EXISTS records_ad AFTER DELETE ON records BEGIN
    INSERT INTO records_text (records_text, rowid, message, logger, attrs)
    VALUES ('delete', old.tid, old.message, old.logger, old.attrs);
END;"""
_COUNTERS = """CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY, value INTEGER NOT NULL -- last_id: the highest id ever given
) STRICT"""
_INDEXES_SQL = ";\n".join(_INDEXES)
SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL) STRICT;
{_RECORDS};
{_INDEXES_SQL};
{FTS};
{DELETE_TRIGGER}
CREATE TABLE IF NOT EXISTS file_positions (
    key TEXT PRIMARY KEY, "offset" INTEGER NOT NULL
) STRICT;
{_COUNTERS};
INSERT INTO schema_version (version)
    SELECT {SCHEMA_VERSION} WHERE NOT EXISTS (SELECT 1 FROM schema_version);
"""
_V1_COLUMNS = (
    "id, ts, levelno, level, category, logger, module, message, stream, seq, event_type, "
    "security_severity, attrs, raw"
)
_COPY = (
    "INSERT INTO records (tid, id, ts, levelno, level, category, logger, module, message, "
    "stream, seq, event_type, security_severity, attrs, raw, sensitive) VALUES "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_CHUNK = 50_000


def upgrade_from_v1(conn: sqlite3.Connection) -> None:
    """Rebuild a version-1 store in the version-2 layout, in the caller's write transaction:
    the records are copied in time order and keyed in turn (dense, ordered keys), then the
    indexes and the search index are built anew. Row ids and positions are kept."""
    conn.execute("DROP TRIGGER IF EXISTS records_ad")
    conn.execute("DROP TABLE IF EXISTS records_fts")  # version 1's search index
    conn.execute("ALTER TABLE records RENAME TO records_v1")
    conn.execute("ALTER TABLE positions RENAME TO file_positions")
    conn.execute(_RECORDS.replace("IF NOT EXISTS ", ""))
    previous, after = -1, (-(2**63), -1)
    read = (
        f"SELECT {_V1_COLUMNS} FROM records_v1 WHERE (ts, id) > (?, ?) "
        f"ORDER BY ts, id LIMIT {_CHUNK}"
    )
    while rows := conn.execute(read, after).fetchall():
        copies = []
        for row in rows:
            previous = max(base(row[1]), previous + 1)
            copies.append((previous, *row, int(sensitive_columns(row[4], row[3], row[10]))))
        conn.executemany(_COPY, copies)
        after = (rows[-1][1], rows[-1][0])
    conn.execute("DROP TABLE records_v1")  # and its indexes, whose names are free again
    for statement in _INDEXES:
        conn.execute(statement)
    conn.execute(FTS)
    conn.execute("INSERT INTO records_text (records_text) VALUES ('rebuild')")
    conn.execute(DELETE_TRIGGER)
    conn.execute(_COUNTERS)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
