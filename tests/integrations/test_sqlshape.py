"""Statement shapes and kinds: what the slow-query log may show of a SQL statement."""

from __future__ import annotations

import pytest

from plexichat.core.logging.integrations import statement_kind, statement_shape


@pytest.mark.parametrize(
    ("statement", "shape"),
    [
        ("SELECT * FROM t WHERE a = 'x' AND b = 42", "SELECT * FROM t WHERE a = ? AND b = ?"),
        ("SELECT 'it''s', -1.5e3, .5 FROM t", "SELECT ?, ?, ? FROM t"),
        ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)"),
        ("INSERT INTO t (a, b) VALUES (?, ?), (?, ?)", "INSERT INTO t (a, b) VALUES (?), ..."),
        (
            "UPDATE t SET a = %(a)s, b = %s WHERE c = :c AND d = $1",
            "UPDATE t SET a = ?, b = ? WHERE c = ? AND d = ?",
        ),
        ("SELECT $$pw$$, $tag$pw$tag$ FROM t", "SELECT ?, ? FROM t"),
        ("SELECT x::int FROM \"Table1\" t1", "SELECT x::int FROM \"Table1\" t1"),
        ("SELECT 1 -- pw\n FROM t /* token */ LIMIT 5", "SELECT ? FROM t LIMIT ?"),
        ("SELECT\n\t a  ,\n b FROM t", "SELECT a , b FROM t"),
        ("SELECT * FROM t WHERE a = 'unterminated pw", "SELECT * FROM t WHERE a = ?"),
        ("SELECT E'a\\'b', X'ff' FROM t", "SELECT ?, ? FROM t"),
    ],
)  # fmt: skip
def test_shape_replaces_literals_and_parameters(statement: str, shape: str) -> None:
    """Literals, parameters and comments become ``?``; identifiers and casts stay."""
    assert statement_shape(statement) == shape


def test_shape_is_truncated() -> None:
    """A long statement is cut to the limit, ending with an ellipsis."""
    shape = statement_shape("SELECT " + "col, " * 500 + "x FROM t", 40)
    assert len(shape) <= 40
    assert shape.endswith("...")


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("select 1", "SELECT"),
        ("  (SELECT 1) UNION (SELECT 2)", "SELECT"),
        ("insert into t values (1)", "INSERT"),
        ("UPDATE t SET a = 1", "UPDATE"),
        ("DELETE FROM t", "DELETE"),
        ("WITH x AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM x)", "DELETE"),
        ("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x", "SELECT"),
        ("WITH RECURSIVE", "OTHER"),
        ("/* hint */ SELECT 1", "SELECT"),
        ("CREATE TABLE t (a INT)", "OTHER"),
        ("PRAGMA journal_mode", "OTHER"),
        ("", "OTHER"),
    ],
)
def test_statement_kind(statement: str, kind: str) -> None:
    """The kind is the main statement's keyword, WITH queries included."""
    assert statement_kind(statement) == kind
