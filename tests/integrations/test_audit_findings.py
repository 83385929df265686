"""Audit findings in the integrations: SQL shapes, Flask streams."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask, Response, stream_with_context
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging import get_logger
from plexichat.core.logging.integrations import statement_shape
from plexichat.core.logging.integrations.flask import init_app
from plexichat.core.logging.testing import capture_logs


def _access(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e.get("logger") == "plexichat.http"]


# --- 1. SQL statement shapes never show a string literal ------------------------------------


@pytest.mark.parametrize(
    ("statement", "shape"),
    [
        ("SELECT 'C:\\' AS p, 'LITSECRET2' AS pw", "SELECT ?"),  # MySQL reads it otherwise
        ("SELECT ARRAY['secret1','secret2']", "SELECT ARRAY[?,?]"),
        ("SELECT * FROM t WHERE k = 0xDEADBEEF", "SELECT * FROM t WHERE k = ?"),
        ("SELECT [col] FROM [dbo].[t]", "SELECT [col] FROM [dbo].[t]"),
        ("SELECT a[12345], ARRAY[$$pw$$]", "SELECT a[?], ARRAY[?]"),
        ("SELECT E'it\\'s', 'x' FROM t", "SELECT ?, ? FROM t"),
        ("SELECT e'\\\\', 'hunter2'", "SELECT ?, ?"),
        ("SELECT name'x' FROM t", "SELECT name? FROM t"),
    ],
)  # fmt: skip
def test_shape_of_audited_statements(statement: str, shape: str) -> None:
    """Standard strings end at their quote, ARRAY[...] holds literals, hex is a number."""
    assert statement_shape(statement) == shape


def test_backslash_escapes_of_mysql_are_not_shown() -> None:
    """Read with MySQL's backslash escapes, 'it\\'s' is one literal: nothing of either shows."""
    shape = statement_shape("SELECT 'it\\'s', 'MYSQLSECRET' FROM t")
    assert "MYSQLSECRET" not in shape
    assert "'" not in shape


_SECRET = st.text(
    alphabet=st.sampled_from("abcXYZ019 '\\\"[]-*/$:;?,\n"), min_size=1, max_size=20
).map(lambda text: f"Zq{text}qZ")


def _literal(form: str, secret: str) -> str:
    """``secret`` written as a SQL string literal of the given form."""
    if form == "standard":
        return "'" + secret.replace("'", "''") + "'"
    if form == "national":
        return "N'" + secret.replace("'", "''") + "'"
    if form == "escape":
        return "E'" + secret.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if form == "escape_doubled":
        return "e'" + secret.replace("\\", "\\\\").replace("'", "''") + "'"
    if form == "dollar":
        return "$$" + secret.replace("$", "") + "$$"
    if form == "tagged":
        return "$q$" + secret.replace("$", "") + "$q$"
    raise AssertionError(form)


_FORMS = st.sampled_from(["standard", "national", "escape", "escape_doubled", "dollar", "tagged"])
_TEMPLATES = [
    ("SELECT {0} AS a, {1} AS b FROM t", "SELECT ? AS a, ? AS b FROM t"),
    ("SELECT ARRAY[{0},{1}]", "SELECT ARRAY[?,?]"),
    ("SELECT * FROM t WHERE a = {0} AND b = {1}", "SELECT * FROM t WHERE a = ? AND b = ?"),
    ("INSERT INTO t VALUES ({0}, {1})", "INSERT INTO t VALUES (?)"),
    ("SELECT {0}::text, {1}", "SELECT ?::text, ?"),
]


@settings(max_examples=300, deadline=None)
@given(
    first=_SECRET,
    second=_SECRET,
    forms=st.tuples(_FORMS, _FORMS),
    template=st.sampled_from(_TEMPLATES),
)
def test_no_string_literal_content_ever_shows(
    first: str, second: str, forms: tuple[str, str], template: tuple[str, str]
) -> None:
    """Whatever the literals hold (quotes, backslashes, brackets), none of it shows.

    Without a backslash the shape is exact; with one, a statement that MySQL's backslash
    escapes would read differently may lose more (never less) than its literals.
    """
    statement = template[0].format(_literal(forms[0], first), _literal(forms[1], second))
    shape = statement_shape(statement)
    assert "Zq" not in shape
    assert "qZ" not in shape
    assert "'" not in shape
    if "\\" not in statement:
        assert shape == template[1]


# --- 3. Flask streams: the request id inside the body, the record after it -----------------


def _flask_app() -> Flask:
    app = Flask(__name__)
    log = get_logger("tests.stream")

    def chunks() -> Iterator[str]:
        for index in range(2):
            log.info("chunk", index=index)
            yield f"{index}\n"

    @app.get("/with-context")
    def with_context() -> Response:
        return Response(stream_with_context(chunks()), mimetype="text/plain")

    @app.get("/plain")
    def plain() -> Response:
        return Response(chunks(), mimetype="text/plain")

    @app.get("/broken")
    def broken() -> Response:
        def fails() -> Iterator[str]:
            yield "start\n"
            raise RuntimeError("stream broke")

        return Response(fails(), mimetype="text/plain")

    init_app(app)
    return app


@pytest.mark.parametrize("path", ["/with-context", "/plain"])
def test_streamed_body_records_carry_the_request_id(path: str) -> None:
    """Records logged by the body have the id; the access record comes after the body."""
    client = _flask_app().test_client()
    with capture_logs() as events:
        response = client.get(path, headers={"X-Request-ID": "stream-1"})
        assert response.get_data(as_text=True) == "0\n1\n"
        response.close()
    relevant = [e for e in events if e["logger"] in ("tests.stream", "plexichat.http")]
    assert [e["message"] for e in relevant][:2] == ["chunk", "chunk"]
    assert [e["context"].get("request_id") for e in relevant] == ["stream-1"] * 3
    (record,) = _access(events)
    assert record is relevant[-1]
    assert record["context"]["route"] == path
    assert record["context"]["status_code"] == 200


def test_stream_closed_early_is_recorded_once() -> None:
    """A body the client stops reading is recorded when the response is closed."""
    client = _flask_app().test_client()
    with capture_logs() as events:
        response = client.get("/plain", buffered=False)
        response.close()
        response.close()
    assert len(_access(events)) == 1


def test_stream_that_raises_is_an_error_record() -> None:
    """An exception in the body: the access record is an ERROR with that exception."""
    client = _flask_app().test_client()
    with capture_logs() as events, pytest.raises(RuntimeError, match="stream broke"):
        client.get("/broken").get_data()
    (record,) = _access(events)
    assert record["level"] == "ERROR"
    assert record["exception"]["type"] == "RuntimeError"
