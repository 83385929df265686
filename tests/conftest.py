"""Shared fixtures: every test starts with fresh global logging state in its own directory."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from plexichat.core.logging import clear_context, shutdown_logging
from plexichat.core.logging._core.errors import error_reporter


@pytest.fixture(autouse=True)
def _fresh_logging(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test runs in its own cwd, without PLEXICHAT_LOG_* variables, and is reset after."""
    for key in list(os.environ):
        if key.startswith("PLEXICHAT_LOG_") or key in ("NO_COLOR", "FORCE_COLOR"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield
    shutdown_logging()
    clear_context()
    error_reporter.reset()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    """A fresh log directory path (not created)."""
    return tmp_path / "logs"
