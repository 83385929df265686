"""The shape of a SQL statement: literals and parameters as ``?``, safe to log.

``SELECT * FROM users WHERE email = 'a@b.c' AND id IN (1, 2, 3)`` has the shape
``SELECT * FROM users WHERE email = ? AND id IN (?)``: string, numeric and dollar-quoted
literals, bind parameters of every DB-API style and comments (which may hold data) are
removed, lists of placeholders collapse to one, whitespace collapses, and long statements are
cut. Identifiers, including double-quoted ones, are kept.
"""

from __future__ import annotations

import functools
import re

__all__ = ["MAX_SHAPE_LENGTH", "STATEMENT_KINDS", "statement_kind", "statement_shape"]

MAX_SHAPE_LENGTH = 1000
"""Statement shapes longer than this are cut (ending with ``...``)."""
STATEMENT_KINDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "OTHER")
"""The values of the ``kind`` tag of ``db_query_duration_seconds``."""

_TOKEN_PATTERN = r"""
      (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?\$(?P=tag)?\$)   # PostgreSQL $$...$$ / $x$...$x$
    | (?P<estring>(?<!\w)[Ee]'(?:[^'\\]|\\.|'')*'?)           # E'...': backslash escapes
    | (?P<string>STRING)                                       # '...' (an unclosed one too)
    | (?P<ident>"(?:[^"]|"")*"?|`[^`]*`?|\[[^\W\d][^\]\s'"$]*\])  # quoted identifiers: kept
    | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))                    # comments: dropped
    | (?P<param>%\(\w+\)s|%s|\$\d+|(?<![:\w]):[A-Za-z_]\w*|\?)  # every DB-API paramstyle
    | (?P<number>(?<![\w.])[-+]?(?:0[xX][0-9a-fA-F]+|\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<cast>::)                                              # keep x::int intact
"""
# Standard SQL strings (PostgreSQL's default, SQLite): a backslash is an ordinary character,
# so 'C:\' ends at its second quote. MySQL (by default) reads backslash escapes in every
# string. A statement with a backslash is read both ways and whatever either reading takes
# for a literal is removed, so no dialect's literal shows.
_TOKENS = re.compile(
    _TOKEN_PATTERN.replace("STRING", r"[NnBbXx]?'(?:[^']|'')*'?"), re.VERBOSE | re.DOTALL
)
_TOKENS_BACKSLASH = re.compile(
    _TOKEN_PATTERN.replace("STRING", r"[NnBbXx]?'(?:[^'\\]|\\.|'')*'?"), re.VERBOSE | re.DOTALL
)
_KEPT = frozenset({"ident", "cast"})
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_VALUES = re.compile(r"(\(\?\))(?:\s*,\s*\(\?\))+")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[()]|[A-Za-z_]+")
_KINDS = frozenset(STATEMENT_KINDS[:4])


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind in _KEPT:
        kept: str = match.group(0)
        return kept
    if kind == "comment":
        return " "
    return "?"


def _redact(statement: str) -> str:
    """The statement with literals and parameters as ``?`` and comments as spaces."""
    text = _TOKENS.sub(_replace, statement)
    if "\\" not in statement:
        return text
    if _TOKENS_BACKSLASH.sub(_replace, statement) == text:
        return text
    # The readings disagree: remove the union of what either takes for a literal.
    spans = sorted(
        (match.start(), match.end(), match.lastgroup == "comment")
        for pattern in (_TOKENS, _TOKENS_BACKSLASH)
        for match in pattern.finditer(statement)
        if match.lastgroup not in _KEPT
    )
    parts: list[str] = []
    position = 0
    index = 0
    while index < len(spans):
        start, end, comment = spans[index]
        index += 1
        while index < len(spans) and spans[index][0] < end:
            end = max(end, spans[index][1])
            comment = comment and spans[index][2]
            index += 1
        parts.append(statement[position:start])
        parts.append(" " if comment else "?")
        position = end
    parts.append(statement[position:])
    return "".join(parts)


@functools.lru_cache(maxsize=2048)
def statement_shape(statement: str, max_length: int = MAX_SHAPE_LENGTH) -> str:
    """The statement with every literal and parameter as ``?``, one line, at most ``max_length``.

    Example:
        >>> statement_shape("SELECT * FROM t WHERE a = 'x' AND b IN (1, 2)")
        'SELECT * FROM t WHERE a = ? AND b IN (?)'
    """
    text = _redact(statement)
    text = _LIST.sub("(?)", text)
    text = _VALUES.sub(r"\1, ...", text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > max_length:
        text = text[: max(max_length - 3, 0)].rstrip() + "..."
    return text


@functools.lru_cache(maxsize=2048)
def statement_kind(statement: str) -> str:
    """``SELECT``, ``INSERT``, ``UPDATE``, ``DELETE`` or ``OTHER``.

    A ``WITH`` query is the kind of its main statement (the first of those keywords outside
    the parentheses of its common table expressions).

    Example:
        >>> statement_kind("WITH x AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM x)")
        'DELETE'
    """
    shape = statement_shape(statement)
    depth = 0
    first = True
    in_with = False
    tokens: list[str] = _WORD.findall(shape)
    for token in tokens:
        if token == "(":
            depth += 1
            continue
        if token == ")":
            depth = max(depth - 1, 0)
            continue
        word = token.upper()
        if first:
            first = False
            if word == "WITH":
                in_with = True
                continue
            return word if word in _KINDS else "OTHER"
        if in_with and depth == 0 and word in _KINDS:
            return word
    return "OTHER"
