"""Metrics tests share the process-wide registry, alert engine and timing options: reset them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from plexichat.core.logging.metrics.alerts import get_alert_engine
from plexichat.core.logging.metrics.registry import DEFAULT_MAX_SERIES, get_registry
from plexichat.core.logging.metrics.timing import timing_options


class FakeClock:
    """A settable clock (epoch seconds) for registries and flushers."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@pytest.fixture(autouse=True)
def _fresh_metrics() -> Iterator[None]:
    """Every test starts and ends with an empty registry, no alerts and default options."""
    registry = get_registry()
    registry.clear()
    yield
    registry.clear()
    registry.max_series = DEFAULT_MAX_SERIES
    get_alert_engine().clear()
    timing_options.log_timings = False
    timing_options.sample_rate = 1.0


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at a fixed epoch time."""
    return FakeClock()
