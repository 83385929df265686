"""Helpers for testing code that logs with PlexiChat Logging.

Example:
    >>> from plexichat.core.logging import get_logger
    >>> from plexichat.core.logging.testing import capture_logs
    >>> with capture_logs() as events:
    ...     get_logger("svc").info("hello", user_id="u1")
    >>> events[0]["message"], events[0]["context"]
    ('hello', {'user_id': 'u1'})
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._core.levels import TRACE
from ._core.manager import get_logging_manager
from .sinks.reader import read_directory

__all__ = ["MemorySink", "capture_logs", "read_log_records"]


class MemorySink:
    """A sink that keeps events in a list (thread-safe)."""

    needs_bytes = True

    def __init__(self, level: int = TRACE) -> None:
        self.level = level
        self.events: list[dict[str, Any]] = []
        self.lines: list[bytes] = []
        self._lock = threading.Lock()

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        """Keep the event and its serialized bytes."""
        with self._lock:
            self.events.append(dict(event))
            self.lines.append(data)

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing to flush."""
        return True

    def close(self, timeout: float | None = None) -> None:
        """Nothing to close."""

    def stats(self) -> dict[str, Any]:
        """How many events were captured."""
        return {"captured": len(self.events)}


@contextmanager
def capture_logs(level: int = TRACE) -> Iterator[list[dict[str, Any]]]:
    """Capture the events logged inside the block (exactly what the sinks receive).

    The configured sinks keep receiving everything too. Records still go through the
    logger thresholds: lower them (``configure_logging(level="TRACE")``) to see more.
    """
    manager = get_logging_manager()
    manager.ensure_configured()
    sink = MemorySink(level)
    handler = manager.handler
    handler.set_sinks((*handler.sinks, sink))
    previous = handler.level
    handler.setLevel(min(previous, level) if previous else level)
    try:
        yield sink.events
    finally:
        handler.set_sinks(tuple(s for s in handler.sinks if s is not sink))
        handler.setLevel(previous)


def read_log_records(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Return every JSON record in a log directory, all streams merged by time."""
    return [line.record for line in read_directory(Path(directory)) if line.record is not None]
