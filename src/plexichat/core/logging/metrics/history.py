"""Metric history: every interval, one PERFORMANCE record per active series.

The flusher compares each series with what it had at the previous flush and writes the
difference (count, sum, min, max, mean, p50/p95/p99, last value, unit, tags) through the normal
logger ``plexichat.metrics.history``. So the history lands in the segment files, the store
indexes it and it survives restarts; :func:`plexichat.core.logging.store.metrics.metric_history`
reads it back. Records are written at INFO: the history needs the file sink to accept INFO.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .._core.errors import error_reporter
from .registry import MetricsRegistry, Series, summarize
from .sketch import Sketch

__all__ = ["HISTORY_LOGGER", "HistoryFlusher"]

HISTORY_LOGGER = "plexichat.metrics.history"
"""The logger name of history records (the store reader selects on it)."""


class HistoryFlusher:
    """Writes one summary record per active series every ``interval`` seconds.

    Args:
        registry: the registry to summarize.
        interval: seconds between flushes.
        clock: epoch seconds (default: the registry's clock).
        baseline: a stopped flusher this one continues from: values it already wrote are not
            written again (reconfiguration within one process).

    Example:
        >>> from plexichat.core.logging.metrics.registry import MetricsRegistry
        >>> flusher = HistoryFlusher(MetricsRegistry(), 60.0)
        >>> flusher.flush()  # nothing recorded yet: no records
        0
    """

    def __init__(
        self,
        registry: MetricsRegistry,
        interval: float,
        *,
        clock: Callable[[], float] | None = None,
        baseline: HistoryFlusher | None = None,
    ) -> None:
        self.registry = registry
        self.interval = interval
        self._clock = clock or registry.clock
        self._seen: dict[int, tuple[Series, Sketch]] = baseline._seen if baseline else {}
        self._last: float = baseline._last if baseline else self._clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="plexichat-metrics-history", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop the thread and write what was recorded since the last flush."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        self.flush()

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> int:
        """Write one record per series that changed since the last flush.

        Returns:
            How many records were written. Failures are reported, never raised.
        """
        with self._lock:
            try:
                return self._flush()
            except Exception as exc:  # noqa: BLE001 - history never breaks the application
                error_reporter.report("metrics.history", f"could not write metric history: {exc!r}")
                return 0

    def _flush(self) -> int:
        from .. import LogCategory, get_logger

        now = self._clock()
        start, self._last = self._last, now
        logger = get_logger(HISTORY_LOGGER)
        written = 0
        seen, self._seen = self._seen, {}
        for series in self.registry.series():
            total = series.sketch()
            key = id(series)
            before = seen.get(key)
            self._seen[key] = (series, total)
            delta = total if before is None or before[0] is not series else total.minus(before[1])
            if delta.count == 0:
                continue
            logger.info(
                "metric %s: %d values",
                series.name,
                delta.count,
                extra={
                    "category": LogCategory.PERFORMANCE,
                    "performance_data": record_data(series, delta, start, now),
                },
            )
            written += 1
        return written


def record_data(series: Series, delta: Sketch, start: float, end: float) -> dict[str, Any]:
    """The ``performance_data`` of one history record."""
    return {
        "metric": series.name,
        "kind": series.kind,
        "unit": series.unit,
        "tags": dict(series.tags),
        "start": start,
        "end": end,
        "last": series.last,
        **summarize(delta),
    }
