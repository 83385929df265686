"""SQL for the PostgreSQL store: filters and the tsquery of a search, as bound parameters.

Every piece of SQL is a constant of this module; user values only ever travel as parameters.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from typing import Any

import orjson

from .base import SENSITIVE_CATEGORIES, SENSITIVE_LEVELS, LogQuery, bindable, decode_cursor
from .search import And, Node, Not, Or, QuerySyntaxError

_SEP = re.compile(r"[\W_]+")
_INDEX_LIKE = re.compile(r"\s*[+-]?\d")  # a path step ``#>`` may read as an array index

SENSITIVE = "(category = ANY(%s::text[]) OR level = ANY(%s::text[]) OR event_type IS NOT NULL)"
"""Whether a row is a security or audit record (the rows ``exclude_security`` leaves out);
binds :data:`SENSITIVE_PARAMS`."""
SENSITIVE_PARAMS = (list(SENSITIVE_CATEGORIES), list(SENSITIVE_LEVELS))
"""The values :data:`SENSITIVE` binds, in order."""

_WALK = """(SELECT f_id AS id, f_ts AS ts, r.levelno, r.level, r.category, r.logger, r.module,
    r.message, r.stream, r.seq, r.event_type, r.security_severity, r.raw, r.fields, r.tsv
    FROM (SELECT ts AS f_ts, id AS f_id FROM plexichat_fields WHERE {}) f CROSS JOIN LATERAL
    (SELECT * FROM plexichat_records WHERE ts = f_ts AND id = f_id OFFSET 0) r
    ) plexichat_records"""
"""The walk: each hash row, in the order asked, fetches its record (a lateral subquery kept
apart by ``OFFSET 0``: always a nested loop driven by the hashes). The pairs are checked
inside ``coalesce(.., false)``, which the planner guesses keeps half the rows (a bare ``=``
it guesses keeps 0.5%, then prefers to fetch every match and sort: 40 ms, not 0.4, for a
value with 6,000 records)."""
_WALK_HEAD = _WALK[:20]
_WHERE = """(CASE jsonb_typeof(fields #> %s::text[]) WHEN 'string' THEN fields #>> %s::text[]
    ELSE (fields #> %s::text[])::text END) = %s"""  # "123" matches 123 and "123"
_CONTAINS = "fields @> %s::jsonb"
"""The usual match of a walked pair, tried first: the value as a string at one of its paths
(one jsonb operation instead of three; it implies :data:`_WHERE`, which decides the rest)."""


def generic_plan(query: LogQuery, where: str) -> bool:
    """Whether the statement of ``query`` (a page or a count of ``where``, from
    :func:`filters`) may be planned once for all values: a walk through the field index (its
    plan is the walk whatever the values) without a search (a tsquery made of a parameter
    would be made again for each record walked, where a plan for the value makes it once)."""
    return where.startswith(_WALK_HEAD) and query.search_tree is None


def field_hash(path: str, text: str) -> int:
    """The ``plexichat_fields.h`` of a dotted field path and a value's text: a signed int64
    of CRC-32 and Adler-32 (fast; a collision only costs a row read, never a wrong match)."""
    data = f"{path}\x00{text}".encode()
    return (zlib.crc32(data) << 32 | zlib.adler32(data)) - (1 << 63)


def _walkable(key: str, value: str) -> bool:
    """Whether ``plexichat_fields`` holds every record a ``where`` pair matches: not when the
    value may be an object's or an array's text, nor when a step may be an array index."""
    return not value.startswith(("{", "[")) and not any(
        _INDEX_LIKE.match(step) for step in key.partition(".")[2].split(".")
    )


def fold(text: str) -> str:
    """Text as the search index sees it: accents removed, punctuation turned into spaces."""
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text)
        text = "".join(c for c in text if not unicodedata.combining(c))
    return _SEP.sub(" ", text)


def clean(text: str) -> str:
    return text.replace("\x00", "") if "\x00" in text else text


def _tsquery(node: Node, params: list[Any]) -> str | None:
    """A tsquery expression of bound parameters for a search tree (no user text in SQL).

    A word is matched like a phrase: folding turns ``user-123`` into two adjacent words.
    Words without a letter or digit (``*``, ``--``) are dropped, as FTS5 does; None when
    nothing is left.
    """
    if isinstance(node, And | Or):
        parts = [p for p in (_tsquery(part, params) for part in node.parts) if p is not None]
        glue = " && " if isinstance(node, And) else " || "
        return "(" + glue.join(parts) + ")" if parts else None
    if isinstance(node, Not):
        part = _tsquery(node.part, params)
        return None if part is None else f"(!! {part})"
    words = fold(node.text).strip()
    if not words:
        return None
    params.append(words)
    return "phraseto_tsquery('simple', %s)"


def _text(value: str, what: str) -> str:
    """A string PostgreSQL can bind: valid Unicode, NUL removed (as in stored columns)."""
    return clean(bindable(value, what))


def filters(query: LogQuery, *, page: bool) -> tuple[str, list[Any]]:
    """What follows ``FROM`` for ``query`` (the records, its WHERE clause, with its cursor
    and order when ``page``) and its parameters.

    Every piece of SQL is a constant of this module; user values are only bound parameters.
    With a ``where`` pair whose matches ``plexichat_fields`` all holds, the records are
    walked through that table's ``(h, ts, id)`` index in the query's order (see
    :data:`_WALK`; the pair is still checked on each record: a hash only narrows down).
    """
    conds: list[str] = []
    params: list[Any] = []
    source, walk = "plexichat_records", [_field_pair(key, value) for key, value in query.where]
    if (pair := next((h for h in walk if h is not None), None)) is not None:
        inner = ["h = %s"]
        params.append(pair)
        for cond, keys in _bounds(query, page):
            inner.append(cond)
            params.extend(keys)
        source = _WALK.format(" AND ".join(inner))

    def add(cond: str, *values: Any) -> None:
        conds.append(cond)
        params.extend(values)

    if query.min_level is not None:
        add("levelno >= %s", query.min_level)
    columns = ("level", "category", "module", "event_type")
    lists = (query.levels, query.categories, query.modules, query.event_types)
    for column, values in zip(columns, lists, strict=True):
        if values:
            add(f"{column} = ANY(%s::text[])", [_text(v, column) for v in values])
    if query.loggers:
        names = [_text(name, "logger") for name in query.loggers]
        parents = [name[:-2] for name in names if name.endswith(".*")]
        likes = [re.sub(r"([\\%_])", r"\\\1", name) + ".%" for name in parents]
        exact = [name.removesuffix(".*") for name in names]
        add("(logger = ANY(%s::text[]) OR logger LIKE ANY(%s::text[]))", exact, likes)
    if query.search_tree is not None:
        tsquery = _tsquery(query.search_tree, params)
        if tsquery is None:
            raise QuerySyntaxError(
                f"search {query.search!r} has no words to match: give letters or digits"
            )
        conds.append("tsv @@ " + tsquery)
    for key, value in query.where:  # "context.a.b": the key "a.b" or the nested a -> b
        head, _, rest = _text(key, "field").partition(".")
        paths = sorted({(head, rest), (head, *rest.split("."))})
        text = _text(value, key)
        if source == "plexichat_records":
            add("(" + " OR ".join([_WHERE] * len(paths)) + ")")
        else:  # walked: most rows match, so the cheaper check first
            add(
                "coalesce("
                + " OR ".join([_CONTAINS] * len(paths) + [_WHERE] * len(paths))
                + ", false)"
            )
            params.extend(_nested(path, text) for path in paths)
        params.extend(x for path in paths for x in (_text_array(path),) * 3 + (text,))
    if query.min_severity_rank is not None:
        add("security_severity >= %s", query.min_severity_rank)
    if query.exclude_security:
        add(
            "NOT (category = ANY(%s::text[]) OR level = ANY(%s::text[])) AND event_type IS NULL",
            list(SENSITIVE_CATEGORIES),
            list(SENSITIVE_LEVELS),
        )
    for cond, keys in _bounds(query, page):
        add(cond, *keys)
    order = " ORDER BY ts DESC, id DESC" if query.order == "desc" else " ORDER BY ts, id"
    where = " WHERE " + " AND ".join(conds) if conds else ""
    return source + where + (order if page else ""), params


def _bounds(query: LogQuery, page: bool) -> list[tuple[str, tuple[int, ...]]]:
    """The conditions on ``(ts, id)`` and their values: the time range and, for a page, the
    cursor (for the records, and for a walk's field rows, which carry the same keys)."""
    bounds: list[tuple[str, tuple[int, ...]]] = []
    if query.start_us is not None:
        bounds.append(("ts >= %s", (query.start_us,)))
    if query.end_us is not None:
        bounds.append(("ts <= %s", (query.end_us,)))
    if page and query.cursor is not None:
        after = decode_cursor(query.cursor, query.order)
        bounds.append((f"(ts, id) {'<' if query.order == 'desc' else '>'} (%s, %s)", after))
    return bounds


def _text_array(items: tuple[str, ...]) -> str:
    """A ``text[]`` literal of ``items``, bound as one string (cheaper to send than a list):
    each item quoted, its quotes and backslashes escaped."""
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{item}"' for item in quoted) + "}"


def _nested(path: tuple[str, ...], text: str) -> str:
    """The JSON of ``text`` at ``path`` (``{"context": {"user_id": "u7"}}``)."""
    doc: Any = text
    for step in reversed(path):
        doc = {step: doc}
    return orjson.dumps(doc).decode()


def _field_pair(key: str, value: str) -> int | None:
    """The hash of a ``where`` pair in ``plexichat_fields``, or None when it cannot be used."""
    key, value = _text(key, "field"), _text(value, key)
    walk = "." in key and not key.startswith("performance_data.") and _walkable(key, value)
    return field_hash(key, value) if walk else None


# -- statements of the store (postgres.py) ------------------------------------------------

STREAM_ROWS = "SELECT ts, id FROM plexichat_records WHERE stream = ANY(%s) LIMIT %s"
STATS = """SELECT GROUPING(level, category, logger), coalesce(level, category, logger),
    count(*), min(ts), max(ts) FROM plexichat_records
    GROUP BY GROUPING SETS ((level), (category), (logger), ()) ORDER BY 3 DESC, 2"""
UPSERT = """INSERT INTO plexichat_positions (key, "offset")
    SELECT * FROM unnest(%s::text[], %s::bigint[])
    ON CONFLICT (key) DO UPDATE SET "offset" = EXCLUDED."offset" """
RECORD = """SELECT ts, levelno, level, category, logger, module, message, stream, seq,
    convert_to(raw, 'UTF8'), event_type, security_severity FROM """
TAIL = "SELECT id, " + RECORD.removeprefix("SELECT ")
TAIL += "plexichat_records WHERE id > %s AND id < %s ORDER BY id LIMIT %s"
RAW_PAGE = f"SELECT id, ts, convert_to(raw, 'UTF8'), {SENSITIVE} FROM "


PLANS = """SELECT set_config('plan_cache_mode', %s, false), set_config('jit', %s, false)"""
"""How a connection plans: each statement for its values, or once (walks; see
:meth:`PostgresStore._connect`). JIT is off with generic plans: their cost, estimated
without the page's limit, would have each execution compile its expressions (10 ms)."""
CUSTOM = "SELECT set_config('plan_cache_mode', 'force_custom_plan', false), current_setting('jit')"
