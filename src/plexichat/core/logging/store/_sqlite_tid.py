"""Time-ordered keys for the SQLite store: ``tid``, the order of pages and of the search index.

A record's ``tid`` is ``clamp(ts) * SLOTS + k``: unique, and in the order of the records'
times (``k`` orders the records of one microsecond; past ``SLOTS`` records in one
microsecond a key moves on into the next microsecond's slots, so the order holds to within
microseconds). Pages are ordered by ``tid`` and the cursors point at one.

The full-text index uses ``tid`` as its rowid. FTS5 reads a word's matches in rowid order,
so a search walks its matches newest first and stops after one page: the newest 100 of
200,000 matches cost about a millisecond, where collecting every match and walking the time
index cost 40 ms. The row id (``id``) stays the order of insertion, which the live tail
follows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

__all__ = ["SLACK", "SLOTS", "allocate", "base", "lower_bound", "upper_bound"]

SLOTS: Final = 1024
"""Keys per microsecond."""
SLACK: Final = 1_000_000
"""How far (microseconds) a key may run ahead of its record's time: a burst would need a
billion records in one second to move a key further."""
_MAX_TS: Final = (2**63 - 1) // SLOTS - 2 * SLACK
"""The latest time with keys of its own (June 2255); later times share its keys (in the
order they were stored). Earlier than 1970, times share the keys of 1970 likewise."""
_NO_BOUND: Final = 2**63 - 1


def base(ts: int) -> int:
    """The first key of the microsecond ``ts`` (times before 1970 share the keys of 1970)."""
    return min(max(ts, 0), _MAX_TS) * SLOTS


def lower_bound(start_us: int) -> int:
    """The smallest key a record at or after ``start_us`` can have."""
    return base(start_us)


def upper_bound(end_us: int) -> int:
    """The largest key a record at or before ``end_us`` can have (no bound near the end
    of the keys' range, where later times share keys)."""
    if end_us >= _MAX_TS - SLACK:
        return _NO_BOUND
    return base(max(end_us, 0) + SLACK) + SLOTS - 1


def allocate(conn: sqlite3.Connection, timestamps: Sequence[int]) -> list[int]:
    """Free keys for records at these times, in the caller's write transaction.

    Each record gets the first key at or after its microsecond's first key that is neither
    stored nor given to an earlier record of the batch.
    """
    if not timestamps:
        return []
    bases = [base(ts) for ts in timestamps]
    low, high = min(bases), max(bases) + SLOTS
    taken = _stored(conn, low, high)
    keys: list[int] = []
    resume: dict[int, int] = {}  # a microsecond's first key not yet tried: linear bursts
    for first in bases:
        key = resume.get(first, first)
        while True:
            if key >= high:  # past the keys read so far: read the next stretch
                taken |= _stored(conn, high, key + SLOTS)
                high = key + SLOTS
            if key not in taken:
                break
            key += 1
        taken.add(key)
        keys.append(key)
        resume[first] = key + 1
    return keys


def _stored(conn: sqlite3.Connection, low: int, high: int) -> set[int]:
    sql = "SELECT tid FROM records WHERE tid >= ? AND tid < ?"
    return {row[0] for row in conn.execute(sql, (low, high))}
