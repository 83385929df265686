"""SQL for the PostgreSQL store: filters and the tsquery of a search, as bound parameters.

Every piece of SQL is a constant of this module; user values only ever travel as parameters.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from .base import SENSITIVE_CATEGORIES, SENSITIVE_LEVELS, LogQuery, bindable, decode_cursor
from .search import And, Node, Not, Or, QuerySyntaxError

_SEP = re.compile(r"[\W_]+")

SENSITIVE = "(category = ANY(%s::text[]) OR level = ANY(%s::text[]) OR event_type IS NOT NULL)"
"""Whether a row is a security or audit record (the rows ``exclude_security`` leaves out);
binds :data:`SENSITIVE_PARAMS`."""
SENSITIVE_PARAMS = (list(SENSITIVE_CATEGORIES), list(SENSITIVE_LEVELS))
"""The values :data:`SENSITIVE` binds, in order."""

_WHERE = """(CASE jsonb_typeof(fields #> %s::text[]) WHEN 'string' THEN fields #>> %s::text[]
    ELSE (fields #> %s::text[])::text END) = %s"""  # "123" matches 123 and "123"


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
    """The WHERE clause of ``query`` (with its cursor when ``page``) and its parameters.

    Every piece of SQL is a constant of this module; user values are only bound parameters.
    """
    conds: list[str] = []
    params: list[Any] = []

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
    if query.start_us is not None:
        add("ts >= %s", query.start_us)
    if query.end_us is not None:
        add("ts <= %s", query.end_us)
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
        add("(" + " OR ".join([_WHERE] * len(paths)) + ")")
        params.extend(x for path in paths for x in (list(path),) * 3 + (_text(value, key),))
    if query.min_severity_rank is not None:
        add("security_severity >= %s", query.min_severity_rank)
    if query.exclude_security:
        add(
            "NOT (category = ANY(%s::text[]) OR level = ANY(%s::text[])) AND event_type IS NULL",
            list(SENSITIVE_CATEGORIES),
            list(SENSITIVE_LEVELS),
        )
    if page and query.cursor is not None:
        ts, row_id = decode_cursor(query.cursor, query.order)
        add(f"(ts, id) {'<' if query.order == 'desc' else '>'} (%s, %s)", ts, row_id)
    order = " ORDER BY ts DESC, id DESC" if query.order == "desc" else " ORDER BY ts, id"
    return (" WHERE " + " AND ".join(conds) if conds else "") + (order if page else ""), params
