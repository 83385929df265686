"""The rows the SQLite store writes: one per record, with the text search sees of its fields."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

import orjson

from ._sqlite_query import _ATTR_DEPTH
from .base import StoredRecord, sensitive_columns

__all__ = ["row_of", "search_values", "sensitive", "unstored"]


def unstored(conn: sqlite3.Connection, records: Sequence[StoredRecord]) -> list[StoredRecord]:
    """The records whose ``(stream, seq)`` is neither stored nor earlier in ``records``."""
    seqs: dict[str, list[int]] = {}
    for rec in records:
        seqs.setdefault(rec.stream, []).append(rec.seq)
    seen: set[tuple[str, int]] = set()
    sql = "SELECT seq FROM records WHERE stream = ? AND seq BETWEEN ? AND ?"
    for stream, numbers in seqs.items():
        rows = conn.execute(sql, (stream, min(numbers), max(numbers)))
        seen.update((stream, seq) for (seq,) in rows)
    fresh: list[StoredRecord] = []
    for rec in records:
        if (rec.stream, rec.seq) not in seen:
            seen.add((rec.stream, rec.seq))
            fresh.append(rec)
    return fresh


def row_of(rec: StoredRecord) -> tuple[object, ...]:
    """A record's columns, in the order of the store's insert (its key and id follow):
    ``ts, levelno, level, category, logger, module, message, stream, seq, event_type,
    security_severity, sensitive, attrs`` (the search text of context and metadata), ``raw``."""
    try:
        raw = rec.raw.decode()
    except UnicodeDecodeError:
        raw = rec.raw.decode(errors="replace")
    event = rec.doc
    if event is None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            event = None
    words: list[str] = []
    if isinstance(event, dict):
        search_values(event.get("context"), words, 0)
        search_values(event.get("metadata"), words, 0)
    return (
        rec.ts, rec.levelno, rec.level, rec.category, rec.logger, rec.module, rec.message,
        rec.stream, rec.seq, rec.event_type, rec.security_severity, sensitive(rec),
        " ".join(words), raw,
    )  # fmt: skip


def sensitive(rec: StoredRecord) -> int:
    """1 for a security or audit record (as :func:`.base.is_sensitive` says of its line)."""
    return int(sensitive_columns(rec.category, rec.level, rec.event_type))


def search_values(value: object, out: list[str], depth: int) -> None:
    """Collect the string and number values of a JSON value (what search sees of it)."""
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.append(str(value))
    elif depth < _ATTR_DEPTH and isinstance(value, dict | list):
        for item in value.values() if isinstance(value, dict) else value:
            search_values(item, out, depth + 1)
