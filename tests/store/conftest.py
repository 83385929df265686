"""The ``store`` fixture: every contract test runs once per backend (SQLite, PostgreSQL).

PostgreSQL runs when ``PLEXICHAT_TEST_POSTGRES_URL`` names a server (``.ci/run`` sets it);
without it the PostgreSQL tests are skipped with the reason, except in CI (``CI=true``)
where a missing server is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from plexichat.core.logging.store import LogStore, open_store
from tests.pg import POSTGRES_ENV, own_schema, server_url

if TYPE_CHECKING:
    from plexichat.core.logging.store.postgres import PostgresStore

__all__ = ["POSTGRES_ENV"]


def _postgres_store() -> LogStore:
    url = server_url()
    try:
        return open_store(url)
    except ImportError as exc:  # the backend or psycopg is not installed here
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL store backend unavailable: {exc}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogStore]:
    """An empty store of each backend, cleared (PostgreSQL) and closed after the test."""
    if request.param == "sqlite":
        sqlite_store = open_store(f"sqlite:///{tmp_path / 'store' / 'store.db'}")
        yield sqlite_store
        sqlite_store.close()
        return
    pg_store = _postgres_store()
    pg_store.clear()
    try:
        yield pg_store
    finally:
        pg_store.clear()
        pg_store.close()


@pytest.fixture(scope="module")
def server() -> str:
    """The PostgreSQL server's base URL (skips, or fails in CI, without one)."""
    return server_url()


@pytest.fixture
def fresh_url(server: str) -> Iterator[str]:
    """A URL on an empty schema of this test's own (no store tables yet), dropped after."""
    with own_schema(server) as schema_url:
        yield schema_url


@pytest.fixture
def fresh_store(fresh_url: str) -> Iterator[PostgresStore]:
    """A PostgreSQL store on a schema of this test's own (nothing left by other tests)."""
    from plexichat.core.logging.store.postgres import PostgresStore

    with PostgresStore(fresh_url) as pg_store:
        yield pg_store
