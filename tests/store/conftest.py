"""The ``store`` fixture: every contract test runs once per backend (SQLite, PostgreSQL).

PostgreSQL runs when ``PLEXICHAT_TEST_POSTGRES_URL`` names a server (``.ci/run`` sets it);
without it the PostgreSQL tests are skipped with the reason, except in CI (``CI=true``)
where a missing server is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plexichat.core.logging.store import LogStore, open_store

POSTGRES_ENV = "PLEXICHAT_TEST_POSTGRES_URL"


def _in_ci() -> bool:
    return os.environ.get("CI") == "true"


def _postgres_store() -> LogStore:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        reason = (
            f"PostgreSQL store tests need {POSTGRES_ENV}, e.g. "
            "postgresql://postgres@127.0.0.1:5432/test"
        )
        if _in_ci():
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    try:
        return open_store(url)
    except ImportError as exc:  # the backend or psycopg is not installed here
        if _in_ci():
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
