"""Applies the metrics settings of a configuration; owns the history flusher.

``configure_logging`` calls :func:`follow_metrics` and ``shutdown_logging`` calls
:func:`stop_metrics`.
"""

from __future__ import annotations

import threading

from .._config.model import LoggingConfig
from .._core.errors import error_reporter
from .history import HistoryFlusher
from .registry import get_registry
from .timing import timing_options

__all__ = ["current_flusher", "follow_metrics", "stop_metrics"]

_lock = threading.Lock()
_flusher: HistoryFlusher | None = None
_previous: HistoryFlusher | None = None  # what was already written, for the next flusher


def current_flusher() -> HistoryFlusher | None:
    """The running history flusher (None when ``performance_enabled`` is off)."""
    return _flusher


def follow_metrics(cfg: LoggingConfig) -> None:
    """Apply ``cfg``: series cap, timing records, and the history flusher when
    ``performance_enabled``. Failures are reported, never raised."""
    global _flusher, _previous
    try:
        get_registry().max_series = cfg.metrics_max_series
        timing_options.log_timings = cfg.metrics_log_timings
        timing_options.sample_rate = cfg.metrics_log_sample_rate
        with _lock:
            old = _flusher
            if old is not None and (
                not cfg.performance_enabled or old.interval != cfg.metrics_history_interval
            ):
                old.stop()
                _flusher, _previous, old = None, old, None
            if cfg.performance_enabled and old is None:
                _flusher = HistoryFlusher(
                    get_registry(), cfg.metrics_history_interval, baseline=_previous
                )
                _flusher.start()
    except Exception as exc:  # noqa: BLE001 - metrics never break configuration
        error_reporter.report("metrics.config", f"could not apply metrics settings: {exc!r}")


def stop_metrics(timeout: float | None = 5.0) -> None:
    """Stop the history flusher, writing the last interval first."""
    global _flusher, _previous
    with _lock:
        flusher, _flusher = _flusher, None
        if flusher is not None:
            flusher.stop(timeout)
            _previous = flusher
