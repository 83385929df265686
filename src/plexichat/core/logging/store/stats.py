"""Statistics over a time window: buckets, error rate, top message patterns, ingestion lag.

Computed by streaming the window's records (``iter_records``), so it works the same on
every backend; the store's own ``stats()`` gives the all-time counts and storage size.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .._core.clock import iso_utc
from .._core.levels import SECURITY
from .base import LogQuery, LogStore

__all__ = ["WindowStats", "normalize_message", "window_stats"]

_BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}
_MASKS = (
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "<ip>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.I), "<hex>"),
    (re.compile(r"\b[A-Za-z]+[_-]?\d[\w-]*\b"), "<id>"),
    (re.compile(r"-?\b\d+(?:\.\d+)?"), "<n>"),
)
ERROR_LEVEL = 40
"""Errors are ERROR and CRITICAL (and custom levels between): SECURITY and AUDIT rank higher
but record events, not failures (the server's own reads are AUDIT records)."""


def normalize_message(message: str) -> str:
    """A message with numbers and ids masked, so records of one kind share one pattern.

    Example:
        >>> normalize_message("user u42 failed login 3 times from 10.0.0.7")
        'user <id> failed login <n> times from <ip>'
    """
    text = message[:500]
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


@dataclass
class WindowStats:
    """Statistics of the records in ``[start, end]``."""

    start: str
    end: str
    bucket: str
    records: int = 0
    errors: int = 0
    levels: dict[str, int] = field(default_factory=dict)
    categories: dict[str, int] = field(default_factory=dict)
    loggers: dict[str, int] = field(default_factory=dict)
    buckets: dict[str, int] = field(default_factory=dict)
    top_patterns: list[dict[str, Any]] = field(default_factory=list)
    newest: str | None = None
    ingestion_lag_seconds: float | None = None

    @property
    def error_rate(self) -> float:
        """Share of records at ERROR or CRITICAL (0 when there are none); SECURITY and AUDIT
        records are counted in the window but are not errors."""
        return self.errors / self.records if self.records else 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the API's ``/stats`` body builds on it)."""
        return {
            "start": self.start,
            "end": self.end,
            "bucket": self.bucket,
            "records": self.records,
            "errors": self.errors,
            "error_rate": round(self.error_rate, 6),
            "levels": self.levels,
            "categories": self.categories,
            "loggers": self.loggers,
            "buckets": self.buckets,
            "top_patterns": self.top_patterns,
            "newest": self.newest,
            "ingestion_lag_seconds": self.ingestion_lag_seconds,
        }


def window_stats(
    store: LogStore,
    *,
    window: float = 86400.0,
    bucket: str = "hour",
    top: int = 10,
    now: float | None = None,
    exclude_security: bool = False,
) -> WindowStats:
    """Statistics of the last ``window`` seconds, bucketed by ``bucket`` (minute/hour/day).

    ``ingestion_lag_seconds`` is how far the newest stored record is behind ``now``: a
    growing lag means the indexer is falling behind (or nothing is being logged).
    ``exclude_security`` leaves security and audit records out of every number (the
    API's viewer role).

    Raises:
        ValueError: an unknown bucket or a window that is not positive.
    """
    if bucket not in _BUCKETS:
        raise ValueError(f"invalid bucket {bucket!r}: allowed are {', '.join(_BUCKETS)}")
    if window <= 0:
        raise ValueError(f"invalid window {window!r}: give a number of seconds > 0")
    now = time.time() if now is None else now
    size = _BUCKETS[bucket]
    start, end = iso_utc(now - window), iso_utc(now)
    stats = WindowStats(start=start, end=end, bucket=bucket)
    levels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    loggers: Counter[str] = Counter()
    buckets: Counter[int] = Counter()
    patterns: Counter[tuple[str, str]] = Counter()
    newest = 0
    for rec in store.iter_records(
        LogQuery(start=start, end=end, order="asc", exclude_security=exclude_security)
    ):
        stats.records += 1
        if ERROR_LEVEL <= rec.levelno < SECURITY:
            stats.errors += 1
        levels[rec.level] += 1
        categories[rec.category] += 1
        loggers[rec.logger] += 1
        buckets[rec.ts // 1_000_000 // size * size] += 1
        patterns[(rec.level, normalize_message(rec.message))] += 1
        newest = max(newest, rec.ts)
    stats.levels = dict(levels.most_common())
    stats.categories = dict(categories.most_common())
    stats.loggers = dict(loggers.most_common(20))
    stats.buckets = {iso_utc(float(b)): n for b, n in sorted(buckets.items())}
    stats.top_patterns = [
        {"level": level, "pattern": pattern, "count": n}
        for (level, pattern), n in patterns.most_common(top)
    ]
    if newest:
        stats.newest = iso_utc(newest / 1_000_000)
        stats.ingestion_lag_seconds = round(max(0.0, now - newest / 1_000_000), 3)
    return stats
