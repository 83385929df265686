"""Project exceptions and the single error hook that keeps logging from crashing callers."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

__all__ = [
    "ConfigError",
    "ErrorReporter",
    "PlexiLoggingError",
    "SegmentBusyError",
    "error_reporter",
]


class PlexiLoggingError(Exception):
    """Base class of every exception raised by PlexiChat Logging's public API."""


class ConfigError(PlexiLoggingError, ValueError):
    """A configuration value is invalid.

    The message names the field, the bad value, where it came from and what is allowed.
    """


class SegmentBusyError(PlexiLoggingError):
    """A segment is still being written by some process, so it is not compressed or deleted."""


class ErrorReporter:
    """Counts internal failures and reports each kind once on stderr.

    The logging call path never raises into the application; everything that goes wrong
    inside a sink or while building an event ends up here instead.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # re-entrant: a signal handler may log while held
        self._seen: set[str] = set()
        self.counts: dict[str, int] = {}

    def report(self, kind: str, message: str, *, stream: TextIO | None = None) -> None:
        """Count one failure of ``kind``; print ``message`` the first time that kind occurs."""
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            first = kind not in self._seen
            self._seen.add(kind)
        if first:
            self._print(message, stream)

    def resolved(self, kind: str, message: str) -> None:
        """Mark ``kind`` as recovered so a later failure of the same kind is reported again."""
        with self._lock:
            was = kind in self._seen
            self._seen.discard(kind)
        if was:
            self._print(message, None)

    def after_fork(self) -> None:
        """In a forked child: a new lock (another thread may have held the parent's)."""
        self._lock = threading.RLock()  # re-entrant: a signal handler may log while held

    def reset(self) -> None:
        """Forget every count and every reported kind (used on reconfiguration and in tests)."""
        with self._lock:
            self._seen.clear()
            self.counts.clear()

    @staticmethod
    def _print(message: str, stream: TextIO | None) -> None:
        out = stream if stream is not None else sys.__stderr__
        if out is None:  # pragma: no cover - interpreter without stderr (pythonw)
            return
        try:
            out.write(f"plexichat.logging: {message}\n")
            out.flush()
        except Exception:  # noqa: BLE001  # pragma: no cover - stderr itself is broken
            pass


error_reporter = ErrorReporter()
"""The process-wide error hook."""
