"""SQL for the SQLite store: filters, the FTS5 MATCH expression and the search plan.

Every user value is a bound parameter; words and phrases reach FTS5 only as quoted strings.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

from ._sqlite_tid import lower_bound, upper_bound
from .base import LogQuery, bindable
from .search import And, Node, Not, Or, Phrase, QuerySyntaxError, Term

_ATTR_DEPTH = 6
"""How deep context/metadata values are indexed for search and field filters."""


def _select(
    query: LogQuery, columns: str, after: tuple[int, int] | None, limit: int | None, drive: str
) -> tuple[str, list[object]]:
    """SELECT ``columns`` of the records matching ``query``, in its order (by ``tid``, see
    :mod:`._sqlite_tid`), after the cursor position ``after`` = ``(ts, tid)``."""
    where, params = _where(query, drive)
    direction, op = ("DESC", "<") if query.order == "desc" else ("ASC", ">")
    if after is not None:
        where += f" AND tid {op} ?"
        params.append(after[1])
    sql = f"SELECT {columns} FROM records WHERE {where} ORDER BY tid {direction}"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def _select_by_search(
    query: LogQuery, columns: str, after: tuple[int, int] | None, limit: int
) -> tuple[str, list[object]] | None:
    """The same page, driven by the search index: its matches are read newest (or oldest)
    first, each looked up and filtered, until the page is full. None when the search is not
    one FTS5 expression (then only :func:`_select` can say it).

    Fast when the filters keep many of the matches; when they keep few, the walk can be
    long, so the caller bounds it and falls back to :func:`_select`.
    """
    expr, rest_tree = _match(query)
    if expr is None or rest_tree is not None:
        return None
    where, params = _where(query, search=False)
    direction, op = ("DESC", "<") if query.order == "desc" else ("ASC", ">")
    hits = "SELECT rowid AS hit FROM records_text WHERE records_text MATCH ?"
    hit_params: list[object] = [expr]
    if after is not None:
        hits += f" AND rowid {op} ?"
        hit_params.append(after[1])
    for bound, tid_key in _key_bounds(query):
        hits += f" AND rowid {bound} ?"
        hit_params.append(tid_key)
    sql = (
        f"SELECT {columns} FROM ({hits}) AS f JOIN records ON tid = f.hit WHERE {where} "
        f"ORDER BY f.hit {direction} LIMIT ?"  # f.hit: the order FTS5 reads in, no sort
    )
    return sql, [*hit_params, *params, limit]


def _key_bounds(query: LogQuery) -> list[tuple[str, int]]:
    """The ``tid`` range a time range implies (an index range instead of a filter)."""
    bounds: list[tuple[str, int]] = []
    if query.start_us is not None:
        bounds.append((">=", lower_bound(query.start_us)))
    if query.end_us is not None:
        bounds.append(("<=", upper_bound(query.end_us)))
    return bounds


def _where(query: LogQuery, drive: str = "tid", *, search: bool = True) -> tuple[str, list[object]]:
    """The WHERE clause of ``query``: SQL made only of fixed text, every value bound.

    ``drive`` is ``tid`` to let the search drive the plan, ``+tid`` to keep it a filter;
    ``search=False`` leaves the search out (:func:`_select_by_search` joins it).
    """
    clauses: list[str] = ["1"]
    params: list[object] = []

    def one_of(column: str, values: Sequence[str]) -> None:
        if values:
            clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(bindable(v, column) for v in values)

    if query.min_level is not None:
        clauses.append("levelno >= ?")
        params.append(query.min_level)
    one_of("level", query.levels)
    one_of("category", query.categories)
    one_of("module", query.modules)
    one_of("event_type", query.event_types)
    if query.loggers:
        alternatives = []
        for name in query.loggers:
            if name.endswith(".*"):  # the logger and its children: a range on the index
                base = bindable(name[:-2], "logger")
                alternatives.append("logger = ? OR (logger >= ? AND logger < ?)")
                params.extend((base, base + ".", base + "/"))
            else:
                alternatives.append("logger = ?")
                params.append(bindable(name, "logger"))
        clauses.append(" OR ".join(f"({a})" for a in alternatives))
    if query.start_us is not None:
        clauses.append("ts >= ?")
        params.append(query.start_us)
    if query.end_us is not None:
        clauses.append("ts <= ?")
        params.append(query.end_us)
    for bound, tid_key in _key_bounds(query):
        clauses.append(f"tid {bound} ?")
        params.append(tid_key)
    if query.min_severity_rank is not None:
        clauses.append("security_severity >= ?")
        params.append(query.min_severity_rank)
    if query.exclude_security:  # the column says it (see _sqlite_schema)
        clauses.append("sensitive = 0")
    for key, value in query.where:
        head, _, rest = key.partition(".")
        paths = {_json_path([head, rest]), _json_path([head, *rest.split(".")])}
        # text compared as text, anything else as its JSON text: "123" matches 123
        value_sql = "(CASE json_type(raw, ?) WHEN 'text' THEN raw ->> ? ELSE raw -> ? END) = ?"
        clauses.append(" OR ".join(value_sql for _ in paths))
        for path in sorted(paths):
            params.extend((path, path, path, bindable(str(value), f"value of {key}")))
    expr, rest_tree = _match(query) if search else (None, None)
    if expr is not None:
        clauses.append(f"{drive} IN (SELECT rowid FROM records_text WHERE records_text MATCH ?)")
        params.append(expr)
    if rest_tree is not None:
        sql, search_params = _search_sql(rest_tree, drive)
        clauses.append(sql)
        params.extend(search_params)
    return " AND ".join(f"({c})" for c in clauses), params


def _match(query: LogQuery) -> tuple[str | None, Node | None]:
    """One FTS5 expression every match satisfies, and the search left for SQL, if any.

    The expression holds the search (when FTS5 can say it) and, as a pre-filter, the word
    values of ``where`` on context/metadata: they are in the ``attrs`` column.
    """
    parts: list[str] = []
    rest_tree = None
    if query.search_tree is not None:
        rest_tree = _prune(query.search_tree)
        if rest_tree is None:
            raise QuerySyntaxError(
                f"search {query.search!r} has no words to match: give letters or digits"
            )
        if (expr := _fts(rest_tree)) is not None:
            parts.append(expr)
            rest_tree = None
    for key, value in query.where:
        head, _, rest = key.partition(".")
        if head != "performance_data" and rest.count(".") < _ATTR_DEPTH and _is_words(value):
            parts.append("attrs : " + _quote(value))
    return (" AND ".join(f"({p})" for p in parts) if parts else None), rest_tree


def _is_words(value: str) -> bool:
    """Whether ``value`` is indexed as text in ``attrs`` (not a number, bool or null)."""
    try:
        float(value)
    except ValueError:
        return _has_word(value) and value not in ("true", "false", "null")
    return False


def _json_path(keys: list[str]) -> str:
    for key in keys:
        if not key or '"' in key or "\x00" in key:
            raise QuerySyntaxError(
                f"invalid field name {key!r} in {'.'.join(keys)!r}: names must not be empty "
                'or contain " or NUL'
            )
    return "$" + "".join(f'."{bindable(k, "field")}"' for k in keys)


def _has_word(text: str) -> bool:
    """Whether the unicode61 tokenizer finds a token in ``text`` (letters, digits, Co)."""
    return any(
        unicodedata.category(ch)[0] in "LN" or unicodedata.category(ch) == "Co" for ch in text
    )


def _prune(node: Node) -> Node | None:
    """Drop the words that have no token (``*``, ``--``): the tokenizer ignores them too."""
    if isinstance(node, Term | Phrase):
        return node if _has_word(node.text) else None
    if isinstance(node, Not):
        part = _prune(node.part)
        return None if part is None else Not(part)
    parts = tuple(p for p in map(_prune, node.parts) if p is not None)
    if len(parts) <= 1:
        return parts[0] if parts else None
    return And(parts) if isinstance(node, And) else Or(parts)


def _quote(text: str) -> str:
    """An FTS5 string: the user's text is only ever a quoted phrase, never an operator."""
    return '"' + bindable(text, "search word").replace("\x00", " ").replace('"', '""') + '"'


def _fts(node: Node) -> str | None:
    """One FTS5 expression for ``node``, or None when FTS5 cannot say it (a NOT alone)."""
    if isinstance(node, Term | Phrase):
        return _quote(node.text)
    if isinstance(node, Or):
        parts = [_fts(p) for p in node.parts]
        return "(" + " OR ".join(p for p in parts if p) + ")" if all(parts) else None
    if isinstance(node, And):
        pos = [_fts(p) for p in node.parts if not isinstance(p, Not)]
        neg = [_fts(p.part) for p in node.parts if isinstance(p, Not)]
        if not pos or not all(pos) or not all(neg):
            return None
        expr = "(" + " AND ".join(p for p in pos if p) + ")"
        for part in neg:  # FTS5's NOT is binary: positives NOT negative
            expr = f"({expr} NOT {part})"
        return expr
    return None


def _search_sql(node: Node, drive: str) -> tuple[str, list[object]]:
    """SQL for a search tree: FTS5 MATCH where it can, SQL NOT/AND/OR around it otherwise."""
    expr = _fts(node)
    if expr is not None:
        return f"{drive} IN (SELECT rowid FROM records_text WHERE records_text MATCH ?)", [expr]
    if isinstance(node, Not):
        inner, params = _search_sql(node.part, drive)
        return f"NOT ({inner})", params
    assert isinstance(node, And | Or)  # a word or phrase always has an FTS5 expression
    clauses, params = [], []
    for part in node.parts:
        sql, part_params = _search_sql(part, drive)
        clauses.append(f"({sql})")
        params.extend(part_params)
    return (" AND " if isinstance(node, And) else " OR ").join(clauses), params
