"""The filter flags shared by ``query`` and ``export``, and the LogQuery they describe."""

from __future__ import annotations

import argparse
import time
from typing import Literal

from .._config.units import parse_duration
from .._core.clock import iso_utc
from ..store.base import LogQuery
from ..store.search import QuerySyntaxError


def add_filter_args(p: argparse.ArgumentParser) -> None:
    """Add --level, --category, --logger, --search, --since, --start, --end, --where,
    --event-type and --min-severity."""
    p.add_argument("--level", help="minimum level (e.g. ERROR)")
    p.add_argument("--category", action="append", default=[], help="category (repeatable)")
    p.add_argument("--logger", action="append", default=[], help="logger, 'app.*' for a tree")
    p.add_argument("--search", help='full text: words, "phrases", AND, OR, NOT')
    p.add_argument("--since", help="only the last DURATION (e.g. 1h, 30 min, 2 days)")
    p.add_argument("--start", help="ISO-8601 start time")
    p.add_argument("--end", help="ISO-8601 end time")
    p.add_argument("--where", action="append", default=[], help="context.NAME=VALUE (repeatable)")
    p.add_argument(
        "--event-type",
        action="append",
        default=[],
        help="security event type, e.g. login_failure (repeatable)",
    )
    p.add_argument(
        "--min-severity", help="minimum security severity: LOW, MEDIUM, HIGH, CRITICAL, EMERGENCY"
    )


def where_pairs(items: list[str]) -> tuple[tuple[str, str], ...]:
    """``["context.user_id=u1"]`` -> ``(("context.user_id", "u1"),)``.

    Raises:
        QuerySyntaxError: an item without ``=``.
    """
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise QuerySyntaxError(f"--where {item!r}: use FIELD=VALUE, e.g. context.user_id=u1")
        pairs.append((key.strip(), value))
    return tuple(pairs)


def query_from_args(
    args: argparse.Namespace,
    *,
    order: Literal["desc", "asc"],
    limit: int = 100,
    cursor: str | None = None,
) -> LogQuery:
    """The LogQuery the filter flags describe.

    Raises:
        QuerySyntaxError: naming the bad flag and what it takes.
    """
    start = args.start
    if args.since:
        try:
            seconds = parse_duration(args.since)
        except ValueError as exc:
            raise QuerySyntaxError(f"--since {args.since!r}: {exc}") from None
        if seconds is None:
            raise QuerySyntaxError(f"--since {args.since!r}: give a duration such as 1h")
        start = iso_utc(time.time() - seconds)
    return LogQuery(
        min_level=args.level,
        categories=tuple(args.category),
        loggers=tuple(args.logger),
        search=args.search,
        start=start,
        end=args.end,
        where=where_pairs(args.where),
        event_types=tuple(getattr(args, "event_type", ()) or ()),
        min_severity=getattr(args, "min_severity", None),
        limit=limit,
        cursor=cursor,
        order=order,
    )
