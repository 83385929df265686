"""A filter evaluated in Python: does one record match a :class:`LogQuery`?

The live tail cannot ask the store about every new record for every client, so it compiles
each client's query into a :class:`Matcher` and runs it on the records the hub reads. The
matcher mirrors the SQLite store's SQL (``store/_sqlite_query.py``) field by field:

- levels, categories, loggers (``"app.*"``: the logger and its children), modules, event
  types, severity and time compare the stored columns (:func:`record_from_event`);
- ``context.NAME=value`` compares the value's text (a string) or its JSON text (``"123"``
  matches ``123``), under the key ``NAME`` or the nested path ``a.b`` for ``context.a.b``;
- the search matches words as FTS5's ``unicode61`` tokens (case and diacritics folded;
  punctuation splits words) in the message, the logger, and the context/metadata values.
  ASCII text is tokenized in Python; other text by SQLite's own tokenizer, so the two never
  disagree.

A client's filter dict (``{"level": "ERROR", "category": "security"}``, the names of the
REST routes) becomes a matcher with :func:`parse_filter`; :func:`fetch_rows` turns stored
rows into what the hub offers to the clients (:class:`Row`: the record, its entry message);
:func:`scan_rows` reads, matches and keeps only the entry texts of a resume's rows.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from .._core.levels import level_name
from ..store._sqlite_query import _ATTR_DEPTH, _is_words, _prune
from ..store._sqlite_rows import search_values
from ..store.base import (
    LogQuery,
    LogStore,
    StoredRecord,
    encode_cursor,
    is_sensitive,
    record_from_event,
    sensitive_columns,
)
from ..store.search import And, Node, Not, Phrase, QuerySyntaxError, Term
from .params import FilterError, filter_to_query

__all__ = [
    "Matcher",
    "RecordView",
    "Row",
    "Scan",
    "entry_text",
    "fetch_rows",
    "parse_filter",
    "row_ids",
    "tokenize",
]

_ASCII_TOKEN = re.compile(r"[a-z0-9]+")
_EPOCH = "1970-01-01T00:00:00Z"


class _Fts5Tokenizer:
    """SQLite's ``unicode61`` tokenizer, asked through an in-memory FTS5 table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def tokens(self, text: str) -> list[str]:
        with self._lock:
            conn = self._conn
            if conn is None:
                conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                conn.execute("CREATE VIRTUAL TABLE t USING fts5 (x, tokenize='unicode61')")
                conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab (t, 'instance')")
                self._conn = conn
            conn.execute("BEGIN")
            try:
                conn.execute("INSERT INTO t (rowid, x) VALUES (1, ?)", (text,))
                return [row[0] for row in conn.execute("SELECT term FROM v ORDER BY offset")]
            finally:
                conn.execute("ROLLBACK")


_fts5 = _Fts5Tokenizer()


def tokenize(text: str) -> list[str]:
    """The words of ``text`` as the store's full-text index sees them (FTS5 ``unicode61``).

    Example:
        >>> tokenize("DB timeout: user-123")
        ['db', 'timeout', 'user', '123']
    """
    if text.isascii():
        return _ASCII_TOKEN.findall(text.lower())
    return _fts5.tokens(text.replace("\x00", " "))


class RecordView:
    """One record as the matcher sees it: the stored columns, the dict, its words (lazily).

    Args:
        doc: the record (a parsed JSON line).
        stored: its stored form when known (the hub has it); else derived from ``doc``.
    """

    __slots__ = ("_columns", "_words", "doc", "stored", "ts_known")

    def __init__(self, doc: Mapping[str, Any], stored: StoredRecord | None = None) -> None:
        self.doc = doc
        self.ts_known = True
        if stored is None:
            try:
                stored = record_from_event(doc, raw=b"")
            except (ValueError, TypeError, OverflowError):  # never stored: no time to compare
                stored = record_from_event({**doc, "timestamp": _EPOCH}, raw=b"")
                self.ts_known = False
        self.stored = stored
        self._columns: tuple[list[str], list[str], list[str]] | None = None
        self._words: frozenset[str] | None = None

    @property
    def columns(self) -> tuple[list[str], list[str], list[str]]:
        """The tokens of the three searched columns: message, logger, context values."""
        if self._columns is None:
            attrs: list[str] = []
            search_values(self.doc.get("context"), attrs, 0)
            search_values(self.doc.get("metadata"), attrs, 0)
            stored = self.stored
            self._columns = (
                tokenize(stored.message),
                tokenize(stored.logger),
                tokenize(" ".join(attrs)),
            )
        return self._columns

    @property
    def words(self) -> frozenset[str]:
        """Every token of the searched columns."""
        if self._words is None:
            message, logger, attrs = self.columns
            self._words = frozenset(message).union(logger, attrs)
        return self._words

    def has_phrase(self, phrase: tuple[str, ...], only_attrs: bool = False) -> bool:
        """Whether the tokens ``phrase`` appear in a row in one column (FTS5's phrase)."""
        if not phrase:
            return False  # an empty FTS5 phrase matches nothing
        if not only_attrs and phrase[0] not in self.words:
            return False
        columns = self.columns[2:] if only_attrs else self.columns
        size = len(phrase)
        for column in columns:
            for index, token in enumerate(column):
                if token == phrase[0] and tuple(column[index : index + size]) == phrase:
                    return True
        return False


Check = Callable[[RecordView], bool]


def _json_text(doc: Mapping[str, Any], path: tuple[str, ...]) -> str | None:
    """SQLite's ``CASE json_type(raw, p) WHEN 'text' THEN raw ->> p ELSE raw -> p END``."""
    value: Any = doc
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return None


def _where_check(key: str, value: str) -> Check:
    head, _, rest = key.partition(".")
    paths = sorted({(head, rest), (head, *rest.split("."))})
    words = tuple(tokenize(value)) if head != "performance_data" else ()
    prefilter = bool(words) and rest.count(".") < _ATTR_DEPTH and _is_words(value)

    def check(view: RecordView) -> bool:
        if prefilter and not view.has_phrase(words, only_attrs=True):
            return False
        return any(_json_text(view.doc, path) == value for path in paths)

    return check


def _search_check(node: Node) -> Check:
    if isinstance(node, Term | Phrase):
        phrase = tuple(tokenize(node.text))
        return lambda view: view.has_phrase(phrase)
    if isinstance(node, Not):
        inner = _search_check(node.part)
        return lambda view: not inner(view)
    parts = [_search_check(p) for p in node.parts]
    if isinstance(node, And):
        return lambda view: all(part(view) for part in parts)
    return lambda view: any(part(view) for part in parts)


class Matcher:
    """A :class:`LogQuery` compiled to Python checks (``limit``, ``cursor``, ``order``
    ignored).

    Args:
        query: the filter.

    Raises:
        QuerySyntaxError: the search has no words (as the store would).

    Example:
        >>> m = Matcher(LogQuery(min_level="ERROR", search="database"))
        >>> m({"timestamp": "2026-01-01T00:00:00Z", "level": "ERROR",
        ...    "message": "Database timeout"})
        True
    """

    def __init__(self, query: LogQuery) -> None:
        self.query = query
        checks: list[Check] = []
        add = checks.append
        if query.min_level is not None:
            threshold = int(query.min_level)
            add(lambda v: v.stored.levelno >= threshold)
        for attr, values in (
            ("level", query.levels),
            ("category", query.categories),
            ("module", query.modules),
            ("event_type", query.event_types),
        ):
            if values:
                add(_one_of(attr, frozenset(values)))
        if query.loggers:
            add(_loggers(query.loggers))
        if query.start_us is not None:
            start = query.start_us
            add(lambda v: v.ts_known and v.stored.ts >= start)
        if query.end_us is not None:
            end = query.end_us
            add(lambda v: v.ts_known and v.stored.ts <= end)
        if query.min_severity_rank is not None:
            rank = query.min_severity_rank
            add(lambda v: v.stored.security_severity is not None
                and v.stored.security_severity >= rank)  # fmt: skip
        if query.exclude_security:
            add(_not_sensitive)
        for key, value in query.where:
            add(_where_check(key, str(value)))
        if query.search_tree is not None:
            tree = _prune(query.search_tree)
            if tree is None:
                raise QuerySyntaxError(
                    f"search {query.search!r} has no words to match: give letters or digits"
                )
            add(_search_check(tree))
        self._checks = tuple(checks)

    def __call__(self, record: Mapping[str, Any] | RecordView) -> bool:
        """Whether ``record`` (a dict or a :class:`RecordView`) matches."""
        view = record if isinstance(record, RecordView) else RecordView(record)
        return all(check(view) for check in self._checks)


def _one_of(attr: str, values: frozenset[str]) -> Check:
    return lambda view: getattr(view.stored, attr) in values


def _loggers(names: tuple[str, ...]) -> Check:
    exact = frozenset(n for n in names if not n.endswith(".*"))
    parents = tuple(n[:-1] for n in names if n.endswith(".*"))  # "app.*" -> "app."
    exact |= {p[:-1] for p in parents}

    def check(view: RecordView) -> bool:
        logger = view.stored.logger
        return logger in exact or (bool(parents) and logger.startswith(parents))

    return check


def _not_sensitive(view: RecordView) -> bool:
    s = view.stored
    return not sensitive_columns(s.category, s.level, s.event_type)


def parse_filter(raw: dict[str, object], sees_sensitive: bool) -> tuple[Matcher, dict[str, Any]]:
    """A client's filter compiled, and normalized (as echoed in ``subscribed`` and
    ``filter_updated``).

    Raises:
        FilterError: naming the field and what it allows.
    """
    query = filter_to_query(raw, exclude_security=not sees_sensitive)
    try:
        matcher = Matcher(query)
    except QuerySyntaxError as exc:  # a search without words
        raise FilterError("search_query", str(exc)) from None
    out: dict[str, Any] = {}
    if query.min_level is not None:
        out["level"] = level_name(int(query.min_level))
    lists = (query.levels, query.categories, query.loggers, query.modules, query.event_types)
    for key, values in zip(_LIST_KEYS, lists, strict=True):
        if values:
            out[key] = list(values)
    texts = (query.search, query.start, query.end, query.min_severity)
    out.update((k, str(v)) for k, v in zip(_TEXT_KEYS, texts, strict=True) if v is not None)
    out.update(query.where)
    return matcher, out


_LIST_KEYS = ("levels", "category", "logger", "module", "event_type")
_TEXT_KEYS = ("search_query", "start_time", "end_time", "severity")
MAX_ENTRY_BYTES = 1 << 20
"""A longer record is sent as its top-level fields, cut, with ``"truncated": true``."""


@dataclass(frozen=True, slots=True)
class Row:
    """One stored row ready to send: its id, the record for matching, the entry text."""

    id: int
    view: RecordView
    sensitive: bool
    text: str


def entry_text(row_id: int, stored: StoredRecord, doc: dict[str, Any]) -> str:
    """The ``entry`` message of a row: the record's fields plus ``type`` and ``cursor``.

    The stored line is reused as it is (no re-serialization) when it can be extended.
    """
    cursor = encode_cursor(stored.ts, row_id, "asc", "tail")
    raw = stored.raw.rstrip()
    if len(raw) > MAX_ENTRY_BYTES:
        cut = {
            k: v[:4096] if isinstance(v, str) else v
            for k, v in doc.items()
            if v is None or isinstance(v, str | int | float | bool)
        }
        return orjson.dumps({**cut, "type": "entry", "cursor": cursor, "truncated": True}).decode()
    if doc and raw[:1] == b"{" and raw[-1:] == b"}" and "type" not in doc and "cursor" not in doc:
        tail = b',"type":"entry","cursor":"' + cursor.encode() + b'"}'
        return (raw[:-1] + tail).decode("utf-8", "replace")
    return orjson.dumps({**doc, "type": "entry", "cursor": cursor}).decode()


def row_ids(store: LogStore, after_id: int, limit: int, before_id: int | None) -> list[int]:
    """The ids ``store.tail`` returns (nothing parsed)."""
    return [row_id for row_id, _ in store.tail(after_id, limit, before_id)]


def fetch_rows(
    store: LogStore, after_id: int, limit: int, before_id: int | None = None
) -> list[Row]:
    """``store.tail`` as rows ready to match and send (run in a worker thread)."""
    out: list[Row] = []
    for row_id, stored in store.tail(after_id, limit, before_id):
        parsed = stored.parsed()
        doc = parsed if isinstance(parsed, dict) else {"message": stored.message}
        view = RecordView(doc, stored)
        out.append(Row(row_id, view, is_sensitive(doc), entry_text(row_id, stored, doc)))
    return out


@dataclass(slots=True)
class Scan:
    """One batch of a resume (:func:`scan_rows`)."""

    texts: list[str]
    """The entry texts of the first matching rows (at most ``want``)."""
    matched: int
    """Rows that matched (``texts`` and the ones past ``want``)."""
    scanned: int
    """Rows read (and looked at)."""
    last: int
    """The id of the last row looked at (the next batch starts after it)."""
    done: bool
    """Whether no row is left before ``before_id``."""


def scan_rows(
    store: LogStore,
    after_id: int,
    limit: int,
    before_id: int,
    include: Callable[[int], bool],
    keep: Callable[[RecordView, bool], bool],
    want: int,
    max_chars: int,
) -> Scan:
    """Read up to ``limit`` rows after ``after_id`` and match them (in a worker thread).

    Args:
        include: whether a row id is looked at (not parsed otherwise).
        keep: whether a record (its view, whether it is sensitive) matches.
        want: entry texts to return at most; the rows that match past them are counted.
        max_chars: past this many characters of entry texts the batch stops early (the
            rest is read by the next one, after ``last``).
    """
    rows = store.tail(after_id, limit, before_id)
    texts: list[str] = []
    matched = scanned = size = 0
    last = after_id
    for row_id, stored in rows:
        if size >= max_chars:
            return Scan(texts, matched, scanned, last, False)
        scanned += 1
        last = row_id
        if not include(row_id):
            continue
        parsed = stored.parsed()
        doc = parsed if isinstance(parsed, dict) else {"message": stored.message}
        if not keep(RecordView(doc, stored), is_sensitive(doc)):
            continue
        matched += 1
        if len(texts) < want:
            texts.append(entry_text(row_id, stored, doc))
            size += len(texts[-1])
    return Scan(texts, matched, scanned, last, len(rows) < limit)
