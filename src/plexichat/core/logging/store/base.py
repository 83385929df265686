"""What every store shares: the query, the page, the stored record, the ``LogStore`` protocol.

A backend implements :class:`LogStore`; :func:`open_store` picks one from a URL
(``sqlite:///path/to/store.db`` or ``postgresql://user@host/db``).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson

from .._config.model import redact_url
from .._core.errors import ConfigError
from .._core.levels import LogLevel, parse_level
from ._pages import (
    MAX_ROW_ID,
    MAX_TAIL,
    Page,
    RawPage,
    check_budget,
    check_tail,
    decode_cursor,
    encode_cursor,
    entry_page,
    object_line,
    raw_page,
)
from .search import Node, QuerySyntaxError, parse_search

if TYPE_CHECKING:
    from .retention import RetentionRules

__all__ = [
    "MAX_LIMIT",
    "MAX_TAIL",
    "SENSITIVE_CATEGORIES",
    "SENSITIVE_LEVELS",
    "LogQuery",
    "LogStore",
    "Page",
    "RawPage",
    "StoredRecord",
    "bindable",
    "check_budget",
    "check_tail",
    "decode_cursor",
    "encode_cursor",
    "entry_page",
    "is_sensitive",
    "micros_to_iso",
    "object_line",
    "open_store",
    "position_stream",
    "record_from_event",
    "raw_page",
    "record_from_line",
    "sensitive_columns",
    "to_micros",
]

MAX_LIMIT = 1000
"""The most rows one :meth:`LogStore.tail` call returns."""
SENSITIVE_CATEGORIES = ("security", "audit")
SENSITIVE_LEVELS = ("SECURITY", "AUDIT")
SECURITY_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL", "EMERGENCY")


def to_micros(value: str | datetime) -> int:
    """Microseconds since the epoch of an ISO-8601 time (``Z`` or an offset) or a datetime.

    Raises:
        QuerySyntaxError: the text is not an ISO-8601 time.
    """
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        if 1 < dt.year < 9999:  # in range once in UTC: plain arithmetic (the indexer's path)
            return (dt - _EPOCH) // _MICROSECOND
        try:
            return calendar.timegm(dt.utctimetuple()) * 1_000_000 + dt.microsecond
        except (OverflowError, ValueError):
            raise QuerySyntaxError(
                f"invalid time {value!r}: it is outside the years 1..9999 once in UTC"
            ) from None
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise QuerySyntaxError(
            f"invalid time {value!r}: use ISO-8601 such as 2024-01-31T23:59:59Z"
        ) from None
    return to_micros(dt)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros_to_iso(us: int) -> str:
    """Microseconds since the epoch as ISO-8601 UTC with ``Z`` (the inverse of to_micros)."""
    moment = _EPOCH + timedelta(microseconds=us)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def bindable(value: str, what: str) -> str:
    """``value`` when a database driver can bind it (no lone surrogates).

    Raises:
        QuerySyntaxError: naming ``what`` and the value.
    """
    try:
        value.encode()
    except UnicodeEncodeError:
        raise QuerySyntaxError(f"{what} {value!r} is not valid Unicode text") from None
    return value


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One record as the store keeps it: indexed columns plus the original line.

    ``raw`` is the exact line from the segment file (or the mapped line of an imported
    file); queries return it parsed, exports write it as it is.
    """

    ts: int  # microseconds since the epoch, UTC
    levelno: int
    level: str
    category: str
    logger: str
    module: str
    message: str
    stream: str
    seq: int
    raw: bytes
    event_type: str | None = None
    security_severity: int | None = None  # index into SECURITY_SEVERITIES
    doc: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """``raw`` already parsed, when it was (the indexer's path): backends use it instead of
    parsing the line a second time. Never stored."""

    @property
    def record(self) -> dict[str, Any]:
        """The record as a dict (parsed from ``raw``)."""
        if self.doc is not None:
            return self.doc
        value = orjson.loads(self.raw)
        return value if isinstance(value, dict) else {"message": str(value)}

    def parsed(self) -> Any:
        """``raw`` parsed (None when it is not JSON): :attr:`doc` when it is there."""
        if self.doc is not None:
            return self.doc
        try:
            return orjson.loads(self.raw)
        except orjson.JSONDecodeError:
            return None


def _text(value: object, default: str = "") -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else str(value)


_MAX_LEVEL = 2**31 - 1
_LEVELNOS: dict[str, int] = {name: int(level) for name, level in LogLevel.__members__.items()}
"""The built-in level names' numbers (the common case, without parse_level's lookups)."""
_MAX_SEQ = MAX_ROW_ID


def _seq(value: object, default: int) -> int:
    """A record's seq when it fits a database integer (0 <= seq < 2**63), else ``default``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SEQ:
        return value
    return default


def record_from_event(
    event: Mapping[str, Any],
    *,
    raw: bytes | None = None,
    stream: str = "",
    seq: int = 0,
    doc: dict[str, Any] | None = None,
) -> StoredRecord:
    """Build the stored form of a record dict in the PlexiChat schema.

    ``stream``/``seq`` default to the record's own; ``raw`` to the record serialized.

    Raises:
        ValueError: the record has no usable timestamp.
    """
    ts_text = event.get("timestamp")
    if not isinstance(ts_text, str):
        raise ValueError(f"record without a timestamp: {str(dict(event))[:200]!r}")
    ts = to_micros(ts_text)
    level = _text(event.get("level"), "INFO").upper()
    levelno = _LEVELNOS.get(level)
    if levelno is None:
        try:
            levelno = min(parse_level(level), _MAX_LEVEL)
        except ValueError:
            levelno = 20  # an unknown level name is kept as text, ranked like INFO
    ctx = event.get("context") if isinstance(event.get("context"), Mapping) else {}
    meta = event.get("metadata") if isinstance(event.get("metadata"), Mapping) else {}
    event_type = meta.get("event_type", ctx.get("event_type"))  # type: ignore[union-attr]
    severity = meta.get("severity", ctx.get("severity"))  # type: ignore[union-attr]
    rank = None
    if isinstance(severity, str) and severity.upper() in SECURITY_SEVERITIES:
        rank = SECURITY_SEVERITIES.index(severity.upper())
    return StoredRecord(
        ts=ts,
        levelno=levelno,
        level=level,
        category=_text(event.get("category"), "system"),
        logger=_text(event.get("logger")),
        module=_text(event.get("module")),
        message=_text(event.get("message")),
        stream=_text(event.get("stream"), stream) or stream,
        seq=_seq(event.get("seq"), seq),
        raw=raw if raw is not None else orjson.dumps(event),
        event_type=_text(event_type) if event_type is not None else None,
        security_severity=rank,
        doc=doc,
    )


def position_stream(key: str) -> str | None:
    """The stream of an indexer position key (``prefix.stream.000001``, maybe with a
    ``!done`` mark), None for another kind of key.

    Example:
        >>> position_stream("plexichat.host-12-ab3f.000002!done")
        'host-12-ab3f'
    """
    parts = key.partition("!")[0].rsplit(".", 2)
    return parts[1] if len(parts) == 3 and parts[2].isdigit() else None


def record_from_line(raw: bytes, *, stream: str = "", seq: int = 0) -> StoredRecord | None:
    """Parse one segment line; None for a line that is not a record (counted by callers)."""
    line = raw.rstrip(b"\n")
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    try:
        return record_from_event(event, raw=line, stream=stream, seq=seq, doc=event)
    except (ValueError, TypeError, OverflowError):
        return None


def sensitive_columns(category: str, level: str, event_type: str | None) -> bool:
    """:func:`is_sensitive` of a stored record, from its columns (``level`` upper case,
    ``event_type`` taken from metadata or context, as :func:`record_from_event` stores them)."""
    return category in SENSITIVE_CATEGORIES or level in SENSITIVE_LEVELS or event_type is not None


def is_sensitive(record: Mapping[str, Any]) -> bool:
    """Whether a record is a security or audit record (see ``LogQuery.exclude_security``)."""
    if record.get("category") in SENSITIVE_CATEGORIES:
        return True
    if str(record.get("level", "")).upper() in SENSITIVE_LEVELS:
        return True
    for part in ("metadata", "context"):
        value = record.get(part)
        if isinstance(value, Mapping) and value.get("event_type") is not None:
            return True
    return False


@dataclass(frozen=True)
class LogQuery:
    """A filter over stored records, shared by the API, the CLI and export.

    Args:
        min_level: keep records at or above this level (name or number).
        levels: keep only these level names.
        categories: keep only these categories.
        loggers: keep these logger names; ``"app.*"`` matches a logger and its children.
        modules: keep only these modules.
        start: keep records at or after this time (ISO-8601 or datetime).
        end: keep records at or before this time.
        search: full-text search (see :func:`parse_search`).
        where: ``("context.user_id", "user123")`` equality filters on context/metadata.
        event_types: security event types.
        min_severity: minimum security severity (LOW ... EMERGENCY).
        limit: page size, 1..1000.
        cursor: the ``next_cursor`` of the previous page.
        order: ``"desc"`` (newest first, the default) or ``"asc"``.
        exclude_security: leave out security and audit records (category ``security`` or
            ``audit``, level SECURITY or AUDIT, or any security event type): what the
            API's ``viewer`` role may see.

    Raises:
        QuerySyntaxError: on any invalid part, naming it and what is allowed.
    """

    min_level: int | str | None = None
    levels: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    loggers: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    start: str | datetime | None = None
    end: str | datetime | None = None
    search: str | None = None
    where: tuple[tuple[str, str], ...] = ()
    event_types: tuple[str, ...] = ()
    min_severity: str | None = None
    limit: int = 100
    cursor: str | None = None
    order: Literal["desc", "asc"] = "desc"
    exclude_security: bool = False
    search_tree: Node | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        if self.min_level is not None:
            try:
                object.__setattr__(self, "min_level", parse_level(self.min_level))
            except ValueError as exc:
                raise QuerySyntaxError(str(exc)) from None
            if not 0 <= self.min_level <= _MAX_LEVEL:  # type: ignore[operator]
                raise QuerySyntaxError(
                    f"invalid level {self.min_level!r}: a level name or a number 0..{_MAX_LEVEL}"
                )
        object.__setattr__(self, "levels", tuple(str(x).upper() for x in self.levels))
        if not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_LIMIT:
            raise QuerySyntaxError(f"invalid limit {self.limit!r}: allowed are 1..{MAX_LIMIT}")
        if self.order not in ("desc", "asc"):
            raise QuerySyntaxError(f"invalid order {self.order!r}: allowed are desc, asc")
        for key, _ in self.where:
            head, _, rest = key.partition(".")
            if head not in ("context", "metadata", "performance_data") or not rest:
                raise QuerySyntaxError(
                    f"invalid field {key!r}: use context.NAME, metadata.NAME or "
                    "performance_data.NAME (e.g. context.user_id=user123)"
                )
        if self.min_severity is not None and self.min_severity.upper() not in SECURITY_SEVERITIES:
            raise QuerySyntaxError(
                f"invalid severity {self.min_severity!r}: allowed are "
                f"{', '.join(SECURITY_SEVERITIES)}"
            )
        if self.search is not None:
            object.__setattr__(self, "search_tree", parse_search(self.search))
        if self.start_us is not None and self.end_us is not None and self.start_us > self.end_us:
            raise QuerySyntaxError(f"start {self.start!r} is after end {self.end!r}")
        if self.cursor is not None:
            decode_cursor(self.cursor, self.order)

    @property
    def start_us(self) -> int | None:
        """``start`` in microseconds since the epoch."""
        return None if self.start is None else to_micros(self.start)

    @property
    def end_us(self) -> int | None:
        """``end`` in microseconds since the epoch."""
        return None if self.end is None else to_micros(self.end)

    @property
    def min_severity_rank(self) -> int | None:
        """``min_severity`` as an index into the severity scale."""
        return (
            None
            if self.min_severity is None
            else SECURITY_SEVERITIES.index(self.min_severity.upper())
        )


class LogStore(Protocol):
    """An index of log records. Backends: SQLite (embedded) and PostgreSQL (many hosts)."""

    url: str
    """The store's URL, password redacted."""

    def append(
        self, records: Sequence[StoredRecord], positions: Mapping[str, int] | None = None
    ) -> int:
        """Insert records (a record already stored, by stream and seq, is skipped) and, in
        the same transaction, save the indexer's file positions. Returns rows inserted."""

    def positions(self) -> dict[str, int]:
        """The saved indexer positions (file key to byte offset)."""

    def query(self, query: LogQuery) -> Page:
        """One page of records matching ``query``, in its order."""

    def query_raw(self, query: LogQuery) -> RawPage:
        """The page :meth:`query` returns, as the stored lines (unparsed) and whether each
        record is sensitive: what the API sends without parsing a record."""

    def try_query_raw(self, query: LogQuery, budget: float) -> RawPage | None:
        """:meth:`query_raw` for a caller that must not block (an event loop): the page
        when the store reads it within about ``budget`` seconds without waiting for a lock,
        else None, and the caller runs :meth:`query_raw` in a worker thread. A store that
        cannot bound its answer time (PostgreSQL: a network round trip) returns None at
        once.

        Raises:
            ValueError: ``budget`` is not a number of seconds > 0.
        """

    def iter_records(self, query: LogQuery) -> Iterator[StoredRecord]:
        """Every matching record in the query's order, streamed (constant memory).

        ``limit`` is ignored; ``cursor`` is honoured (the stream starts after it).
        """

    def count(self, query: LogQuery) -> int:
        """How many records match ``query`` (limit and cursor ignored)."""

    def stats(self) -> dict[str, Any]:
        """Counts per level, category and logger, time range and storage size."""

    def clear(self) -> None:
        """Delete every record and position."""

    def delete_streams(self, streams: Sequence[str]) -> int:
        """Delete the records of ``streams`` and the saved positions of their segments (a
        reindex of one log directory: other streams, of other hosts or imported, stay).
        Returns records deleted."""

    def apply_retention(
        self, rules: RetentionRules, now: float | None = None, dry_run: bool = False
    ) -> dict[str, int]:
        """Delete the records ``rules`` no longer keep (``dry_run``: only count them).

        Returns records deleted per rule key (see :mod:`~plexichat.core.logging.store.retention`).
        """

    def tail(
        self, after_id: int, limit: int, before_id: int | None = None
    ) -> list[tuple[int, StoredRecord]]:
        """Up to ``limit`` rows with ``after_id < id < before_id`` (no upper bound when
        ``before_id`` is None), as ``(id, record)`` in id (insertion) order: the live tail.

        Raises:
            ValueError: ``limit`` is not 1..:data:`MAX_TAIL`.
        """

    def last_id(self) -> int:
        """The highest row id stored (0 when the store is empty)."""

    def close(self) -> None:
        """Release connections."""


def open_store(url: str) -> LogStore:
    """Open the store a URL names: ``sqlite:///path`` or ``postgresql://...``.

    Raises:
        ConfigError: the URL's scheme is neither.
    """
    if url.startswith("sqlite:///") or url == "sqlite://":
        from .sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url)
    raise ConfigError(
        f"unknown store URL {redact_url(url[:80])!r}: use sqlite:///path/to/store.db or "
        "postgresql://user@host:5432/dbname"
    )
