"""Metric history read back from the store (the records the history flusher wrote).

Works on every :class:`LogStore` backend: it selects PERFORMANCE records of the logger
``plexichat.metrics.history`` with a :class:`LogQuery` and aggregates them in Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from .._core.levels import LogCategory
from ..metrics.history import HISTORY_LOGGER
from ..metrics.trends import trend
from .base import LogQuery, LogStore

__all__ = ["metric_history"]

Point = dict[str, Any]


def _when(value: float | str | datetime | None) -> str | datetime | None:
    if isinstance(value, str | datetime) or value is None:
        return value
    return datetime.fromtimestamp(float(value), tz=UTC)


def _merge(into: Point, rec: Mapping[str, Any]) -> None:
    """Add one history record into a point: counts and sums add, min/max widen, p50 is the
    count-weighted mean and p95/p99 the maximum of the merged records (an upper bound)."""
    count = int(rec.get("count") or 0)
    total = into["count"] + count
    if total == 0:
        return
    w_old, w_new = into["count"] / total, count / total
    into["p50"] = into["p50"] * w_old + float(rec["p50"]) * w_new if into["count"] else rec["p50"]
    into["p95"] = max(into["p95"], float(rec["p95"]))
    into["p99"] = max(into["p99"], float(rec["p99"]))
    into["min"] = min(into["min"], float(rec["min"]))
    into["max"] = max(into["max"], float(rec["max"]))
    into["sum"] += float(rec.get("sum") or 0.0)
    into["count"] = total
    into["mean"] = into["sum"] / total
    into["last"] = rec.get("last", into["last"])


def _new_point(ts: float) -> Point:
    return {
        "timestamp": ts,
        "count": 0,
        "sum": 0.0,
        "min": math.inf,
        "max": -math.inf,
        "mean": math.nan,
        "p50": 0.0,
        "p95": -math.inf,
        "p99": -math.inf,
        "last": None,
    }


def metric_history(
    store: LogStore,
    names: Iterable[str] | None = None,
    start: float | str | datetime | None = None,
    end: float | str | datetime | None = None,
    interval: float = 60.0,
    tags: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The recorded history of metrics, downsampled to ``interval`` seconds.

    Args:
        store: any log store holding the indexed log files.
        names: the metrics wanted (default: every metric found).
        start: epoch seconds, ISO-8601 text or datetime; the first interval end to include.
        end: the last interval end to include.
        interval: seconds per point (records whose interval ended in the same
            ``interval``-long bucket are merged, all tag sets together).
        tags: only series whose tags include all of these.

    Returns:
        ``{name: {"unit", "kind", "points": [{"timestamp", "count", "sum", "min", "max",
        "mean", "p50", "p95", "p99", "last"}], "summary": {"count", "sum", "min", "max",
        "mean", "p50", "p95", "p99"}, "trend": {"slope", "direction", "points",
        "anomalies"}}}``; ``timestamp`` is the start of the point's bucket (epoch seconds).

    Raises:
        ValueError: ``interval`` is not positive.
    """
    if not interval > 0:
        raise ValueError(f"invalid interval {interval!r}: pass seconds above 0 (e.g. 60)")
    wanted = set(names) if names is not None else None
    want_tags = dict(tags or {})
    query = LogQuery(
        categories=(LogCategory.PERFORMANCE.value,),
        loggers=(HISTORY_LOGGER,),
        start=_when(start),
        end=_when(end),
        order="asc",
    )
    found: dict[str, dict[str, Any]] = {}
    buckets: dict[str, dict[float, Point]] = {}
    for stored in store.iter_records(query):
        data = stored.record.get("performance_data")
        if not isinstance(data, dict) or not isinstance(data.get("metric"), str):
            continue
        name = data["metric"]
        if wanted is not None and name not in wanted:
            continue
        raw_tags = data.get("tags")
        rec_tags: dict[str, Any] = raw_tags if isinstance(raw_tags, dict) else {}
        if any(rec_tags.get(k) != v for k, v in want_tags.items()):
            continue
        try:
            at = float(data.get("end", stored.ts / 1e6))
            bucket = math.floor(at / interval) * interval
            entry = found.setdefault(name, {"unit": data.get("unit", ""), "kind": data.get("kind")})
            _merge(buckets.setdefault(name, {}).setdefault(bucket, _new_point(bucket)), data)
        except (TypeError, ValueError, KeyError):  # a malformed record: skip it
            continue
        entry["unit"] = data.get("unit", entry["unit"])
    out: dict[str, dict[str, Any]] = {}
    for name, entry in found.items():
        points = [p for _, p in sorted(buckets[name].items()) if p["count"]]
        summary = _new_point(0.0)
        for p in points:
            _merge(summary, p)
        del summary["timestamp"], summary["last"]
        value = "sum" if entry.get("kind") == "counter" else "mean"
        out[name] = {
            **entry,
            "points": points,
            "summary": summary,
            "trend": trend([(p["timestamp"], float(p[value])) for p in points]),
        }
    return out
