"""PostgreSQL test helpers: the server's URL (skip, or fail in CI, without one), schemas of
a test's own, and small queries. The store fixtures built on them (``server``,
``fresh_url``, ``fresh_store``) are in ``tests/store/conftest.py``."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from plexichat.core.logging.store.postgres import redact_url

POSTGRES_ENV = "PLEXICHAT_TEST_POSTGRES_URL"


def server_url() -> str:
    """The server's URL, or skip (fail in CI) with the reason."""
    url = os.environ.get(POSTGRES_ENV)
    in_ci = os.environ.get("CI") == "true"
    if not url:
        reason = f"PostgreSQL tests need {POSTGRES_ENV}, e.g. postgresql://postgres@127.0.0.1/test"
        if in_ci:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as exc:
        pytest.fail(f"{POSTGRES_ENV}={redact_url(url)} is unreachable: {exc}")
    return url


def with_schema(url: str, schema: str) -> str:
    """``url`` whose connections use ``schema`` (created if missing)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')  # a name made by the tests
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    """Drop ``schema`` and everything in it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def own_schema(server: str) -> Iterator[str]:
    """A URL on a new, empty schema (no store tables yet), dropped afterwards."""
    schema = f"plexichat_test_{uuid.uuid4().hex[:12]}"
    yield with_schema(server, schema)
    drop_schema(server, schema)


def sql(url: str, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    """The rows of one statement run on ``url``."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(statement, params or None)
        return cur.fetchall() if cur.description else []


def partitions(url: str) -> list[str]:
    """The names of the record table's partitions."""
    rows = sql(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'plexichat_records'::regclass ORDER BY 1",
    )
    return [name for (name,) in rows]


def duplicates(url: str) -> list[tuple[Any, ...]]:
    """(stream, seq) pairs stored more than once."""
    return sql(
        url,
        "SELECT stream, seq, count(*) FROM plexichat_records GROUP BY 1, 2 HAVING count(*) > 1",
    )
