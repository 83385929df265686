"""Fixtures of the integration tests: logging to a temporary directory, a clean registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plexichat.core.logging import configure_logging
from plexichat.core.logging.metrics.registry import MetricsRegistry, get_registry


@pytest.fixture(autouse=True)
def _quiet_logging(log_dir: Path) -> None:
    """Records go to ``log_dir`` only (no console), at every level from DEBUG."""
    configure_logging(directory=log_dir, console_enabled=False, level="DEBUG")


@pytest.fixture
def registry() -> Iterator[MetricsRegistry]:
    """The process-wide metrics registry, emptied before and after the test."""
    reg = get_registry()
    reg.clear()
    yield reg
    reg.clear()
