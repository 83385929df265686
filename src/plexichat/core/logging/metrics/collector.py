"""``SystemCollector``: samples CPU, memory, disk, network and process figures with psutil.

Every ``interval`` seconds a daemon thread sets these gauges in the metrics registry:

========================================  =================  ==============================
gauge                                     unit               what
========================================  =================  ==============================
``cpu_usage``                             percent            whole machine, all cores
``memory_usage``                          percent            machine memory in use
``memory_used_bytes``                     bytes              machine memory in use
``process_rss_bytes``                     bytes              this process's resident memory
``process_cpu_percent``                   percent            this process (100 = one core)
``disk_usage``                            percent            the log directory's filesystem
``disk_read_bytes_per_second``            bytes_per_second   all disks
``disk_write_bytes_per_second``           bytes_per_second   all disks
``network_sent_bytes_per_second``         bytes_per_second   all interfaces
``network_received_bytes_per_second``     bytes_per_second   all interfaces
``open_fds``                              count              this process's descriptors
``threads``                               count              this process's threads
========================================  =================  ==============================

CPU percentages and rates are differences between two samples: the first sample (taken at
:meth:`SystemCollector.start`) only primes them. The collector keeps its own previous
counters, so other users of ``psutil.cpu_percent`` are not disturbed. A figure the platform
does not offer (disk counters in some containers) is skipped.

After ``fork()`` a collector in the child is stopped (its thread stayed in the parent); the
next ``configure_logging`` in the child starts it again, measuring the child process.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from .._core.errors import error_reporter
from .alerts import get_alert_engine
from .model import PerformanceMetric
from .registry import MetricsRegistry, get_registry

__all__ = ["SystemCollector", "follow_config", "get_collector", "stop_collector"]

PERCENT, BYTES, RATE, COUNT = "percent", "bytes", "bytes_per_second", "count"


class SystemCollector:
    """Samples system and process figures into gauges on a background thread.

    Args:
        registry: where the gauges live (default: the process-wide registry).
        interval: seconds between samples (> 0).
        directory: the filesystem ``disk_usage`` reports on (default: the working directory).
        clock: monotonic seconds, used for rates (inject a fake one in tests).

    Raises:
        ValueError: ``interval`` is not a positive number.

    Example:
        >>> collector = SystemCollector(interval=30)
        >>> collector.start()
        >>> collector.stop()
    """

    def __init__(
        self,
        registry: MetricsRegistry | None = None,
        interval: float = 30.0,
        *,
        directory: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
            raise ValueError(
                f"invalid interval {interval!r}: expected seconds > 0, e.g. interval=30"
            )
        self.registry = registry if registry is not None else get_registry()
        self.interval = float(interval)
        self.directory = Path(directory) if directory is not None else Path.cwd()
        self._clock = clock
        self._pid = os.getpid()
        self._process = psutil.Process(self._pid)
        self._previous: dict[str, float] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.samples = 0
        self.errors = 0
        _collectors.add(self)

    def _after_fork_in_child(self) -> None:
        """Stopped in a forked child: the thread is the parent's, the lock may be held."""
        self._thread = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Take the first sample and start sampling every ``interval`` seconds (idempotent)."""
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self.collect()
            self._thread = threading.Thread(
                target=self._run, name="plexichat-system-metrics", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop sampling and wait for the thread to end (idempotent)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.collect()

    def collect(self) -> dict[str, float]:
        """Take one sample, set the gauges and return the values set. Never raises."""
        try:
            values = self._sample()
        except Exception as exc:  # noqa: BLE001 - monitoring never breaks the application
            self.errors += 1
            error_reporter.report("system-metrics", f"system metrics sample failed: {exc!r}")
            return {}
        units = _UNITS
        for name, value in values.items():
            self.registry.gauge(name, unit=units[name]).set(value)
        self.samples += 1
        engine = get_alert_engine()
        if engine.active:  # gauges do not pass through record_metric: feed the alert rules
            now = time.time()
            for name, value in values.items():
                engine.observe(PerformanceMetric(name, value, units[name], now, {}, {}))
        return values

    def _sample(self) -> dict[str, float]:
        now = self._clock()
        pid = os.getpid()
        if pid != self._pid:  # forked: measure this process, not the parent
            self._pid, self._process, self._previous = pid, psutil.Process(pid), None
        proc = self._process
        counters = _counters(proc)
        counters["t"] = now
        out: dict[str, float] = {}
        memory = psutil.virtual_memory()
        out["memory_usage"] = float(memory.percent)
        out["memory_used_bytes"] = float(memory.total - memory.available)
        with proc.oneshot():
            out["process_rss_bytes"] = float(proc.memory_info().rss)
            out["threads"] = float(proc.num_threads())
            fds = _open_fds(proc)
        if fds is not None:
            out["open_fds"] = fds
        try:
            out["disk_usage"] = float(psutil.disk_usage(str(self.directory)).percent)
        except OSError:  # the directory went away: skip the figure
            pass
        previous, self._previous = self._previous, counters
        if previous is not None:
            out.update(_differences(previous, counters))
        return out


def _counters(proc: psutil.Process) -> dict[str, float]:
    """The cumulative counters rates and CPU percentages are computed from."""
    cpu = psutil.cpu_times()
    total = float(sum(cpu))
    idle = float(cpu.idle + getattr(cpu, "iowait", 0.0))
    times = proc.cpu_times()
    out = {"cpu_total": total, "cpu_busy": total - idle, "proc_cpu": times.user + times.system}
    try:
        disk = psutil.disk_io_counters()
    except (OSError, RuntimeError):  # pragma: no cover - no disk statistics here
        disk = None
    if disk is not None:
        out["disk_read"] = float(disk.read_bytes)
        out["disk_write"] = float(disk.write_bytes)
    net = psutil.net_io_counters()
    out["net_sent"] = float(net.bytes_sent)
    out["net_received"] = float(net.bytes_recv)
    return out


_RATES = {
    "disk_read": "disk_read_bytes_per_second",
    "disk_write": "disk_write_bytes_per_second",
    "net_sent": "network_sent_bytes_per_second",
    "net_received": "network_received_bytes_per_second",
}


def _differences(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU percentages and per-second rates between two samples (counter resets skipped)."""
    out: dict[str, float] = {}
    elapsed = after["t"] - before["t"]
    if elapsed <= 0:
        return out
    total = after["cpu_total"] - before["cpu_total"]
    busy = after["cpu_busy"] - before["cpu_busy"]
    if total > 0:
        out["cpu_usage"] = round(min(100.0, max(0.0, busy / total * 100)), 2)
    proc = after["proc_cpu"] - before["proc_cpu"]
    if proc >= 0:
        out["process_cpu_percent"] = round(proc / elapsed * 100, 2)
    for key, name in _RATES.items():
        if key in before and key in after and after[key] >= before[key]:
            out[name] = (after[key] - before[key]) / elapsed
    return out


def _open_fds(proc: psutil.Process) -> float | None:
    try:
        count = getattr(proc, "num_fds", None) or getattr(proc, "num_handles", None)
        return float(count()) if count is not None else None
    except (psutil.Error, OSError):  # pragma: no cover - not permitted here
        return None


_UNITS: dict[str, str] = {
    "cpu_usage": PERCENT,
    "memory_usage": PERCENT,
    "memory_used_bytes": BYTES,
    "process_rss_bytes": BYTES,
    "process_cpu_percent": PERCENT,
    "disk_usage": PERCENT,
    "disk_read_bytes_per_second": RATE,
    "disk_write_bytes_per_second": RATE,
    "network_sent_bytes_per_second": RATE,
    "network_received_bytes_per_second": RATE,
    "open_fds": COUNT,
    "threads": COUNT,
}
"""Every gauge the collector sets, and its unit."""

_collector: SystemCollector | None = None
_wanted: tuple[float, Path] | None = None
_collector_lock = threading.Lock()
_collectors: weakref.WeakSet[SystemCollector] = weakref.WeakSet()
"""Every live collector, reset in a forked child."""


def _reset_after_fork() -> None:
    global _collector_lock
    _collector_lock = threading.Lock()
    for collector in list(_collectors):
        collector._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def get_collector() -> SystemCollector | None:
    """The collector ``configure_logging`` started (None when performance monitoring is off)."""
    return _collector


def follow_config(config: Any) -> None:
    """Start, restart or stop the collector as ``performance_enabled`` and
    ``performance_interval`` say (called by ``configure_logging``)."""
    global _collector, _wanted
    with _collector_lock:
        current = _collector
        directory = Path(config.directory).absolute()
        wanted = (config.performance_interval, directory) if config.performance_enabled else None
        if current is not None and wanted == _wanted and current.running:
            return
        _collector, _wanted = None, None
        if current is not None:
            current.stop()
        if wanted is not None:
            _collector = SystemCollector(interval=wanted[0], directory=_existing(directory))
            _collector.start()
            _wanted = wanted


def _existing(directory: Path) -> Path:
    """The log directory, or its nearest existing parent (it may not be created yet)."""
    for path in (directory, *directory.parents):
        if path.exists():
            return path
    return directory  # pragma: no cover - even / is missing


def stop_collector(timeout: float | None = 5.0) -> None:
    """Stop the collector (``shutdown_logging`` calls this)."""
    global _collector, _wanted
    with _collector_lock:
        current, _collector, _wanted = _collector, None, None
    if current is not None:
        current.stop(timeout)
