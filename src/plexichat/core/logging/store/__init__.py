"""The log store: an index over the segment files (SQLite embedded, PostgreSQL for many hosts).

Files are the truth; the store can always be rebuilt from them (``plexichat-logs reindex``).
"""

from __future__ import annotations

from .base import LogQuery, LogStore, Page, StoredRecord, open_store
from .search import QuerySyntaxError, parse_search

__all__ = [
    "LogQuery",
    "LogStore",
    "Page",
    "QuerySyntaxError",
    "StoredRecord",
    "open_store",
    "parse_search",
]
