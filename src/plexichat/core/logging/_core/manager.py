"""The logging manager: owns the active configuration, the handler, the sinks and counters."""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._config.model import LoggingConfig
from .._config.sources import Resolved, resolve
from ..integrity._sealer import IntegrityOptions
from ..metrics.runtime import follow_metrics, stop_metrics
from ..sinks.console import ConsoleSink, TextLines
from ..sinks.files import AsyncFileSink, SegmentWriter, SyncFileSink
from ..sinks.maintenance import Maintenance, RetentionPolicy
from .errors import ConfigError, error_reporter
from .fallback import configure_leniently
from .handler import PlexiHandler, Sink
from .levels import parse_level

__all__ = ["LoggingManager", "get_logging_manager"]


class LoggingManager:
    """The one object that owns the active configuration, the handler, the queue and counters.

    Use the module functions (``configure_logging``, ``flush_logging``, ...) rather than this
    class directly; :func:`get_logging_manager` returns the process-wide instance.
    """

    def __init__(self) -> None:
        self.handler = PlexiHandler()
        self.handler.on_reopen = self._reopen
        self._lock = threading.RLock()
        self._resolved: Resolved | None = None
        self._overrides: dict[str, Any] = {}
        self._file: str | None = None
        self._maintenance: Maintenance | None = None
        self._third_party: dict[str, tuple[int, int]] = {}
        self._app_owned: set[str] = set()
        self._root_level: int | None = None
        self.configured_at: float | None = None
        self._configuring = False

    # --- configuration -------------------------------------------------------------------

    @property
    def configured(self) -> bool:
        """Whether logging has been configured (explicitly or by the first ``get_logger``)."""
        return self._resolved is not None

    @property
    def config(self) -> LoggingConfig:
        """The active configuration (resolved from defaults and environment if not yet set)."""
        resolved = self._resolved
        if resolved is None:
            return self.preview().config
        return resolved.config

    @property
    def sources(self) -> dict[str, str]:
        """Where each active value came from: default, profile, file, env or code."""
        resolved = self._resolved or self.preview()
        return dict(resolved.sources)

    def preview(self, **overrides: Any) -> Resolved:
        """Resolve what the configuration would be, without applying it."""
        return resolve({**self._overrides, **overrides}, file=self._file)

    def ensure_configured(self) -> None:
        """Configure from defaults, profile, file and environment if nothing is configured yet.

        A bad environment or file value does not crash the application here: it is reported
        on stderr and only that setting falls back to its default; every other setting
        (redaction and encryption included) still applies.
        """
        if self._resolved is not None:
            return
        with self._lock:  # other threads wait; this thread, re-entering, sees the flag
            if self.configured or self._configuring:
                return
            self._configuring = True  # a record logged while configuring must not recurse
            try:
                self.configure()
            except Exception as exc:  # noqa: BLE001 - get_logger never crashes the application
                configure_leniently(self, exc)
            finally:
                self._configuring = False

    def configure(
        self,
        config: LoggingConfig | None = None,
        *,
        file: str | None = None,
        **overrides: Any,
    ) -> LoggingConfig:
        """Apply a new configuration; records in flight are written, none are lost.

        Args:
            config: a full or partial ``LoggingConfig``; the fields it was given count as
                arguments in code (the highest precedence).
            file: a YAML file to use as the file layer (else ``PLEXICHAT_LOG_CONFIG_FILE``).
            **overrides: single settings, also with code precedence. They accumulate over
                calls until :meth:`shutdown`.

        Raises:
            ConfigError: a value is invalid; the previous configuration stays active.
        """
        with self._lock:
            wanted = dict(self._overrides)
            if config is not None:
                wanted.update({k: getattr(config, k) for k in config.model_fields_set})
            wanted.update(overrides)
            resolved = resolve(wanted, file=file if file is not None else self._file)
            check_directory(resolved)
            self._overrides = wanted
            if file is not None:
                self._file = file
            self._apply(resolved)
            return resolved.config

    def _apply(self, resolved: Resolved) -> None:
        cfg = resolved.config
        from ..security.encryption_pipeline import build_processors

        processors = build_processors(cfg)  # a missing key fails before anything changes
        sinks, maintenance = _build_sinks(cfg)
        old_sinks = self.handler.sinks
        old_maintenance = self._maintenance
        levels = [s.level for s in sinks]
        floor = min(levels) if levels else cfg.levelno
        self.handler.setLevel(floor)
        self.handler.set_processors(processors)
        self.handler.set_sinks(tuple(sinks))
        root = logging.getLogger()
        if self.handler not in root.handlers:
            root.addHandler(self.handler)
        if self._root_level is None:
            self._root_level = root.level
        root.setLevel(floor)
        self._apply_third_party(cfg.third_party_levels)
        _flush_when_child_exits()
        self._resolved = resolved
        self._maintenance = maintenance
        self.configured_at = time.time()
        _close_and_forward(old_sinks, sinks)
        if old_maintenance is not None:
            old_maintenance.wait_idle(5.0)
        if maintenance is not None:
            maintenance.sweep()
        _follow_monitoring(cfg)
        follow_metrics(cfg)

    def _reopen(self) -> None:
        """The handler was closed from outside (``dictConfig``, ``logging.shutdown``) but
        still receives records: open the sinks of the active configuration again."""
        with self._lock:
            if self._resolved is not None and not self.handler.sinks:
                self._apply(self._resolved)

    def _apply_third_party(self, wanted: Mapping[str, str]) -> None:
        """Set third-party logger levels, remembering what they were (restored at shutdown).

        A level the application sets on such a logger after logging was configured wins: a
        later reconfiguration leaves that logger alone.
        """
        previous = self._third_party
        self._third_party = {}
        for name, (before, ours) in previous.items():
            lg = logging.getLogger(name)
            if lg.level == ours:
                lg.setLevel(before)
            else:
                self._app_owned.add(name)  # the application's choice, until shutdown
        for name, lvl in wanted.items():
            if name in self._app_owned:
                continue
            lg = logging.getLogger(name)
            level = parse_level(lvl)
            self._third_party[name] = (lg.level, level)
            lg.setLevel(level)

    # --- lifecycle -----------------------------------------------------------------------

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Write everything accepted so far; False if a sink could not finish in time."""
        ok = True
        for sink in self.handler.sinks:
            try:
                ok = bool(sink.flush(timeout)) and ok
            except Exception as exc:  # noqa: BLE001
                error_reporter.report("flush", f"could not flush logs: {exc!r}")
                ok = False
        return ok

    def shutdown(self, timeout: float | None = 5.0) -> None:
        """Flush and close every sink, remove the handler and forget code overrides.

        The next ``get_logger`` configures afresh from defaults, profile, file and environment.
        """
        stop_metrics(timeout)  # its last history records go to the open sinks
        _stop_monitoring(timeout)
        with self._lock:
            sinks = self.handler.sinks
            self.handler.set_sinks(())
            self.handler.set_processors(())
            for sink in sinks:
                try:
                    sink.close(timeout)
                except Exception as exc:  # noqa: BLE001
                    error_reporter.report("close", f"could not close a log sink: {exc!r}")
            if self._maintenance is not None:
                self._maintenance.wait_idle(timeout)
                self._maintenance = None
            root = logging.getLogger()
            root.removeHandler(self.handler)
            if self._root_level is not None:
                root.setLevel(self._root_level)
                self._root_level = None
            self._apply_third_party({})
            self._app_owned.clear()
            self._resolved = None
            self._overrides = {}
            self._file = None

    @property
    def maintenance(self) -> Maintenance | None:
        """The log directory's background upkeep (None when files are off)."""
        return self._maintenance

    def stats(self) -> dict[str, Any]:
        """Counts per level, drops, queue depth, bytes written, rotations and errors."""
        out: dict[str, Any] = {
            "configured": self.configured,
            "records": {},
            "dropped": {},
            "dropped_total": 0,
            "queue_depth": 0,
            "queue_capacity": 0,
            "bytes_written": 0,
            "errors": dict(error_reporter.counts),
        }
        for sink in self.handler.sinks:
            s = sink.stats()
            if isinstance(sink, ConsoleSink):
                out["console"] = s
                continue
            out["file"] = s
            out["records"] = dict(s.get("written", {}))
            out["dropped"] = dict(s.get("dropped", {}))
            out["queue_depth"] = s.get("queue_depth", 0)
            out["queue_capacity"] = s.get("queue_capacity", 0)
            out["bytes_written"] = s.get("bytes_written", 0)
        if "file" not in out and "console" in out:
            out["records"] = dict(out["console"]["written"])
        out["dropped_total"] = sum(out["dropped"].values())
        if self._maintenance is not None:
            out["compressed_segments"] = self._maintenance.compressed
            out["deleted_segments"] = self._maintenance.deleted
        return out


_ALERTS, _COLLECTOR = "notifiers", "collector"  # modules in ..metrics


def _follow_monitoring(cfg: LoggingConfig) -> None:
    """Start, change or stop the alert channels and the system collector as ``cfg`` says
    (imported only once wanted); a failure is reported, never raised."""
    for name, wanted in ((_ALERTS, cfg.alerts_enabled), (_COLLECTOR, cfg.performance_enabled)):
        module = f"plexichat.core.logging.metrics.{name}"
        try:
            if wanted or module in sys.modules:
                importlib.import_module(module).follow_config(cfg)
        except Exception as exc:  # noqa: BLE001 - monitoring never breaks logging
            error_reporter.report("monitoring", f"could not apply {module}: {exc!r}")


def _stop_monitoring(timeout: float | None) -> None:
    """Stop the alert threads and the system collector (if they were ever imported)."""
    for name in (_ALERTS, _COLLECTOR):
        module = sys.modules.get(f"plexichat.core.logging.metrics.{name}")
        if module is not None:
            getattr(module, f"stop_{name}")(timeout)


def check_directory(resolved: Resolved) -> None:
    """Refuse a log directory path that exists and is not a directory."""
    cfg = resolved.config
    try:
        taken = cfg.file_enabled and cfg.directory.exists() and not cfg.directory.is_dir()
    except OSError:  # not even inspectable: writing will report it, once, at run time
        return
    if taken:
        raise ConfigError(
            f"invalid logging configuration: directory={str(cfg.directory)!r} "
            f"(from {resolved.sources.get('directory', 'code')}): it exists and is not a "
            "directory; name a directory (it is created when missing) or set file_enabled=false"
        )


def _build_sinks(cfg: LoggingConfig) -> tuple[list[Sink], Maintenance | None]:
    sinks: list[Sink] = []
    maintenance: Maintenance | None = None
    if cfg.console_enabled:
        sinks.append(
            ConsoleSink(
                cfg.sink_level("console"),
                stream=cfg.console_stream,
                colors=cfg.console_colors,
                show_context=cfg.console_show_context,
                utc=cfg.console_utc,
            )
        )
    if cfg.file_enabled:
        directory = cfg.directory.absolute()  # a later chdir() must not move the logs
        maintenance = Maintenance(
            directory,
            prefix=cfg.file_prefix,
            compression=cfg.compression if cfg.compression_enabled else None,
            retention=RetentionPolicy(cfg.retention_age, cfg.retention_size),
            expire=_rule_expiry(cfg, directory) if cfg.retention_rules else None,
            key_dir=cfg.integrity_key_directory,
        )
        writer = SegmentWriter(
            directory,
            prefix=cfg.file_prefix,
            rotation_size=cfg.rotation_size,
            rotation_interval=cfg.rotation_interval,
            on_rotate=maintenance.segment_closed,
            structured=cfg.structured_enabled,
            integrity=_integrity_options(cfg),
        )
        level = cfg.sink_level("file")
        file_sink: Sink
        if cfg.non_blocking:
            file_sink = AsyncFileSink(
                writer, level, capacity=cfg.queue_size, flush_interval=cfg.flush_interval
            )
        else:
            file_sink = SyncFileSink(writer, level)
        sinks.append(file_sink if cfg.structured_enabled else TextLines(file_sink, utc=True))
    return sinks, maintenance


def _integrity_options(cfg: LoggingConfig) -> IntegrityOptions | None:
    """How the file writer seals its stream (None: integrity off)."""
    if not cfg.integrity_enabled:
        return None
    from ..integrity._witness import make_witness

    key_dir = cfg.integrity_key_directory
    return IntegrityOptions(
        key_directory=key_dir.absolute() if key_dir is not None else None,
        checkpoint_interval=cfg.integrity_checkpoint_interval,
        witness=make_witness(cfg.integrity_witness),
    )


def _file_core(sink: Sink | None) -> tuple[Any, bool]:
    """The synchronous or non-blocking file sink inside ``sink`` and whether it holds JSON."""
    if isinstance(sink, TextLines):
        return sink.inner, False
    if isinstance(sink, AsyncFileSink | SyncFileSink):
        return sink, True
    return None, False


def _rule_expiry(cfg: LoggingConfig, directory: Path) -> Callable[[], int]:
    """File retention that honours the level/category rules (a segment holding a record a
    longer rule protects is kept), for the background upkeep."""
    from ..store.retention import RetentionRules, files_retention

    rules = RetentionRules.from_config(cfg)

    def expire() -> int:
        return len(
            files_retention(
                directory, rules, prefix=cfg.file_prefix, key_dir=cfg.integrity_key_directory
            ).deleted
        )

    return expire


def _close_and_forward(old: tuple[Sink, ...], new: list[Sink]) -> None:
    """Close replaced sinks. A record that reaches an old file sink afterwards (its logging
    call had picked the old sinks already) is handed to the new file sink of the same kind."""
    targets = [_file_core(s) for s in new]
    for sink in old:
        core, structured = _file_core(sink)
        try:
            if core is None:
                sink.close(5.0)
                continue
            successor = next(
                (t for t, kind in targets if t is not None and kind == structured), None
            )
            core.close(5.0, successor=successor)
        except Exception as exc:  # noqa: BLE001
            error_reporter.report("close", f"could not close a log sink: {exc!r}")


_manager = LoggingManager()
atexit.register(_manager.flush, 2.0)


def _after_fork_in_child() -> None:
    """Locks held by other threads at fork time stay locked in the child: make new ones."""
    _manager._lock = threading.RLock()
    error_reporter.after_fork()


_mp_hooked = False


def _before_fork() -> None:
    """A child started by ``multiprocessing`` ends with ``os._exit`` (no atexit): have
    multiprocessing flush our queue when such a child exits."""
    global _mp_hooked
    if _mp_hooked or "multiprocessing" not in sys.modules:
        return
    from multiprocessing import util

    util.register_after_fork(_manager, _flush_at_child_exit)
    _mp_hooked = True


_child_finalizer_pid = 0


def _flush_when_child_exits() -> None:
    """In a ``multiprocessing`` child (any start method) that configured logging itself,
    flush at exit: such children end with ``os._exit``, which skips atexit."""
    global _child_finalizer_pid
    if "multiprocessing" not in sys.modules or _child_finalizer_pid == os.getpid():
        return
    import multiprocessing
    from multiprocessing import util

    if multiprocessing.parent_process() is None:
        return
    util.Finalize(_manager, _close_at_child_exit, args=(_manager,), exitpriority=100)
    _child_finalizer_pid = os.getpid()


def _flush_at_child_exit(manager: LoggingManager) -> None:
    from multiprocessing import util

    util.Finalize(manager, _close_at_child_exit, args=(manager,), exitpriority=100)


def _close_at_child_exit(manager: LoggingManager) -> None:
    """What ``logging.shutdown`` does at a normal exit: flush and close the sinks, so the
    child's segment gets its closing checkpoint (``os._exit`` skips atexit)."""
    manager.flush(2.0)
    manager.handler.close()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)


def get_logging_manager() -> LoggingManager:
    """Return the process-wide logging manager."""
    return _manager
