"""The filter flags shared by ``query`` and ``export``, and the LogQuery they describe."""

from __future__ import annotations

import argparse
import time
from typing import Literal

from .._config.units import parse_duration
from .._core.clock import iso_utc
from ..store.base import LogQuery, to_micros
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


_FIRST_US = -62135596800 * 1_000_000
"""0001-01-01T00:00:00Z in microseconds since the epoch: the earliest time a store holds."""


def check_reach(flag: str, text: str, seconds: float) -> None:
    """Raise QuerySyntaxError when ``seconds`` back from now is before the year 1."""
    if (time.time() - seconds) * 1_000_000 < _FIRST_US:
        raise QuerySyntaxError(
            f"{flag} {text!r} reaches back before the year 1: give a shorter duration, e.g. 30 days"
        )


def query_from_args(
    args: argparse.Namespace,
    *,
    order: Literal["desc", "asc"],
    limit: int = 100,
    cursor: str | None = None,
) -> LogQuery:
    """The LogQuery the filter flags describe; a bad --start, --end or --since is named as
    typed.

    Raises:
        QuerySyntaxError: naming the bad flag, the text given and what it takes.
    """
    for flag in ("start", "end"):
        text = getattr(args, flag)
        if text is None:
            continue
        try:
            to_micros(text)
        except QuerySyntaxError:
            raise QuerySyntaxError(
                f"--{flag} {text!r} is not a time: use ISO-8601 such as 2024-01-31T23:59:59Z "
                "(the years 1..9999 once in UTC)"
            ) from None
    start = args.start
    if args.since:
        try:
            seconds = parse_duration(args.since)
        except ValueError as exc:
            raise QuerySyntaxError(f"--since {args.since!r}: {exc}") from None
        if seconds is None:
            raise QuerySyntaxError(f"--since {args.since!r}: give a duration such as 1h")
        check_reach("--since", args.since, seconds)
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
