"""Full-text search syntax: words, "phrases", AND / OR / NOT and parentheses.

``database AND timeout``, ``"connection refused" OR timeout``, ``error NOT debug``,
``(db OR cache) AND slow``. Adjacent terms mean AND. Each backend turns the tree into its
own parameterized query (FTS5 MATCH, PostgreSQL tsquery); user text never becomes SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .._core.errors import PlexiLoggingError

__all__ = ["And", "Node", "Not", "Or", "Phrase", "QuerySyntaxError", "Term", "parse_search"]


class QuerySyntaxError(PlexiLoggingError, ValueError):
    """A search string or filter that cannot be parsed; the message says where and why."""


@dataclass(frozen=True, slots=True)
class Term:
    """One word (matched as a token, case-insensitively)."""

    text: str


@dataclass(frozen=True, slots=True)
class Phrase:
    """Words that must appear together, in order."""

    text: str


@dataclass(frozen=True, slots=True)
class And:
    """Every part must match."""

    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one part must match."""

    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The part must not match."""

    part: Node


Node = Term | Phrase | And | Or | Not

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([^\s()"]+))')
_MAX_LENGTH = 1000
_MAX_TERMS = 64
_MAX_DEPTH = 32


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise QuerySyntaxError(
                f'search {text!r}: unbalanced quote at position {pos}; close the phrase with "'
            )
        pos = m.end()
        if m.group(1):
            out.append(("(", "("))
        elif m.group(2):
            out.append((")", ")"))
        elif m.group(3) is not None:
            phrase = re.sub(r"\\(.)", r"\1", m.group(3)).strip()
            if phrase:
                out.append(("phrase", phrase))
        else:
            word = m.group(4)
            out.append(("op", word) if word in ("AND", "OR", "NOT") else ("word", word))
    return out


def parse_search(text: str) -> Node:
    """Parse a search string into a tree.

    Raises:
        QuerySyntaxError: naming what is wrong (an operator without operand, an unclosed
            parenthesis or quote, an empty or over-long search) and how to write it.
    """
    if not isinstance(text, str) or not text.strip():
        raise QuerySyntaxError('empty search: give words, "phrases", AND, OR, NOT')
    if len(text) > _MAX_LENGTH:
        raise QuerySyntaxError(f"search is {len(text)} characters long; the limit is {_MAX_LENGTH}")
    tokens = _tokens(text)
    if sum(1 for kind, _ in tokens if kind in ("word", "phrase")) > _MAX_TERMS:
        raise QuerySyntaxError(f"search has more than {_MAX_TERMS} terms; narrow it down")
    parser = _Parser(tokens, text)
    node = parser.expr()
    if parser.pos != len(tokens):
        raise QuerySyntaxError(
            f"search {text!r}: unexpected {tokens[parser.pos][1]!r}; "
            "check parentheses (every ')' needs a '(')"
        )
    if _only_negative(node):
        raise QuerySyntaxError(
            f"search {text!r}: NOT needs something to match first, e.g. 'error NOT debug'"
        )
    return node


def _only_negative(node: Node) -> bool:
    if isinstance(node, Not):
        return True
    if isinstance(node, And):
        return all(_only_negative(p) for p in node.parts)
    if isinstance(node, Or):
        return any(_only_negative(p) for p in node.parts)
    return False


class _Parser:
    """expr := and ('OR' and)* ; and := unary (['AND'] unary)* ; unary := 'NOT' unary | atom."""

    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.pos = 0
        self.depth = 0

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def expr(self) -> Node:
        parts = [self.conj()]
        while self._peek() == ("op", "OR"):
            self.pos += 1
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conj(self) -> Node:
        parts = [self.unary()]
        while True:
            tok = self._peek()
            if tok is None or tok[0] == ")" or tok == ("op", "OR"):
                break
            if tok == ("op", "AND"):
                self.pos += 1
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def unary(self) -> Node:
        negations = 0
        while self._peek() == ("op", "NOT"):
            self.pos += 1
            negations += 1
        node = self.atom()
        return Not(node) if negations % 2 else node

    def atom(self) -> Node:
        tok = self._peek()
        if tok is None:
            raise QuerySyntaxError(
                f"search {self.text!r}: ends where a word or phrase is expected "
                "(an operator at the end?)"
            )
        kind, value = tok
        self.pos += 1
        if kind == "word":
            return Term(value)
        if kind == "phrase":
            return Phrase(value)
        if kind == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise QuerySyntaxError(
                    f"search nests parentheses deeper than {_MAX_DEPTH}; simplify it"
                )
            node = self.expr()
            self.depth -= 1
            if self._peek() != (")", ")"):
                raise QuerySyntaxError(f"search {self.text!r}: '(' is never closed")
            self.pos += 1
            return node
        raise QuerySyntaxError(
            f"search {self.text!r}: {value!r} where a word or phrase is expected; "
            'quote it ("AND") to search for the word itself'
        )
