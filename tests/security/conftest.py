"""Fixtures of the security tests: a fake clock, a clean process-wide detector, a stalled
writer."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from plexichat.core.logging.security_logger import get_threat_detector
from plexichat.core.logging.sinks.files import SegmentWriter


class FakeClock:
    """A clock the test moves by hand (seconds, like ``time.monotonic``)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting at t=1000 s."""
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_detector() -> Iterator[None]:
    """The process-wide detector starts each test with default rules, no state, no hooks."""
    detector = get_threat_detector()
    detector.configure()
    yield
    for hook in detector.alert_hooks:
        detector.remove_alert_hook(hook)
    detector.configure()


@pytest.fixture
def stalled_writer(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """The segment writer waits (at most 10 s) until the returned event is set, so the
    queue fills up; configure logging with a small ``queue_size`` after requesting it."""
    gate = threading.Event()
    real = SegmentWriter.write_batch

    def stalled(self: SegmentWriter, items: list[tuple[int, bytes]]) -> None:
        gate.wait(10)
        real(self, items)

    monkeypatch.setattr(SegmentWriter, "write_batch", stalled)
    return gate
