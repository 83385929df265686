"""``PlexiHandler``: the one stdlib handler on the root logger that feeds every sink."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
from orjson import dumps as _dumps

from ..sinks.segments import MAX_LINE
from .errors import error_reporter
from .event import _OPTIONS, _default, event_from_record, to_json

__all__ = ["MAX_RECORD_BYTES", "PlexiHandler", "Processor", "Sink", "fit_record"]

Processor = Callable[[dict[str, Any]], dict[str, Any]]
"""A step applied to every event before it is serialized (redaction, field encryption)."""


class Sink(Protocol):
    """Where events go. ``write`` gets the event and, when ``needs_bytes``, its JSON bytes."""

    level: int
    needs_bytes: bool

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes) -> None:
        """Take one event; must not raise."""

    def flush(self, timeout: float | None = None) -> bool:
        """Write out what is buffered; True when everything was written."""

    def close(self, timeout: float | None = None) -> None:
        """Flush and release resources."""

    def stats(self) -> dict[str, Any]:
        """Counters for :func:`get_logging_stats`."""


class PlexiHandler(logging.Handler):
    """Builds each event once, serializes it once and hands it to the configured sinks.

    It is a normal :class:`logging.Handler`: records of any logger (third-party included)
    reach it through the root logger. PlexiChat loggers skip ``LogRecord`` creation and call
    :meth:`emit_event` directly when nothing else would see the record.
    """

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._sinks: tuple[Sink, ...] = ()
        self._processors: tuple[Processor, ...] = ()
        self._needs_bytes = False
        self._closed = False
        self.on_reopen: Callable[[], None] | None = None
        """Called when a record reaches the handler after ``close()`` (see :meth:`close`)."""

    @property
    def sinks(self) -> tuple[Sink, ...]:
        """The active sinks."""
        return self._sinks

    def set_sinks(self, sinks: tuple[Sink, ...]) -> None:
        """Replace the sinks atomically (a running call finishes with the old ones)."""
        self._needs_bytes = any(s.needs_bytes for s in sinks)
        self._sinks = sinks
        if sinks:
            self._closed = False

    @property
    def processors(self) -> tuple[Processor, ...]:
        """The steps applied to every event before it is serialized."""
        return self._processors

    def set_processors(self, processors: tuple[Processor, ...]) -> None:
        """Replace the processors (each must never raise; see ``security.redaction``)."""
        self._processors = tuple(processors)

    def emit_event(self, levelno: int, event: dict[str, Any]) -> None:
        """Process ``event``, serialize it once and give it to every sink that admits it.

        Each sink is tried on its own: one that fails never keeps the record from the others.
        A record whose JSON exceeds :data:`MAX_RECORD_BYTES` is cut to fit (see
        :func:`fit_record`), so it stays readable.
        """
        try:
            if not self._sinks and self._closed and self.on_reopen is not None:
                self.on_reopen()
            for process in self._processors:
                event = process(event)
            data = b""
            if self._needs_bytes:
                try:  # to_json's first attempt, inlined: this is every record's path
                    data = _dumps(event, default=_default, option=_OPTIONS)
                except Exception:  # noqa: BLE001 - the careful pass handles hostile values
                    data = to_json(event)
                if len(data) > MAX_RECORD_BYTES:
                    event, data = fit_record(data)
                    error_reporter.report("oversized-record", _OVERSIZED)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            error_reporter.report("emit", f"could not write a log record: {exc!r}")
            return
        for sink in self._sinks:
            try:
                if levelno >= sink.level:
                    sink.write(levelno, event, data)
            except Exception as exc:  # noqa: BLE001 - the other sinks still get the record
                error_reporter.report("emit", f"could not write a log record: {exc!r}")

    def handle(self, record: logging.LogRecord) -> bool:
        """Filter, then emit without the handler lock (the sinks are thread-safe)."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Build the event of a stdlib record and emit it."""
        try:
            event = event_from_record(record)
        except Exception as exc:  # noqa: BLE001
            error_reporter.report("build", f"could not build a log record: {exc!r}")
            return
        self.emit_event(record.levelno, event)

    def flush(self) -> None:
        """Flush every sink (waits for the non-blocking writer)."""
        for sink in self._sinks:
            try:
                sink.flush()
            except Exception as exc:  # noqa: BLE001
                error_reporter.report("flush", f"could not flush logs: {exc!r}")

    def close(self) -> None:
        """Close every sink; called by ``logging.shutdown`` at exit and by ``dictConfig``.

        Like stdlib's stream handlers, a closed handler that still receives records keeps
        working: the sinks are opened again from the active configuration.
        """
        sinks, self._sinks = self._sinks, ()
        self._closed = True
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001
                error_reporter.report("close", f"could not close a log sink: {exc!r}")
        super().close()


MAX_RECORD_BYTES = MAX_LINE - 64 * 1024
"""The longest serialized record written as is. Readers skip lines over ``MAX_LINE``
(:mod:`..sinks.segments`); the 64 KiB margin leaves room for what the writer
appends (stream, sequence number, integrity tag)."""

_OVERSIZED = (
    f"a log record longer than {MAX_RECORD_BYTES} bytes was cut to fit (its largest values"
    " end in '...[truncated N bytes]'): readers skip longer lines"
)
_FIT_ROUNDS = 32


def fit_record(data: bytes, limit: int = MAX_RECORD_BYTES) -> tuple[dict[str, Any], bytes]:
    """Shrink a serialized record over ``limit`` bytes until it fits.

    Works on the plain JSON of ``data``: the largest string value is cut and ends in
    ``...[truncated N bytes]``; a large container of small values becomes its JSON text,
    cut the same way. Returns the smaller event and its bytes; never raises.
    """
    try:
        event: dict[str, Any] = orjson.loads(data)
        for _ in range(_FIT_ROUNDS):
            excess = len(data) - limit
            if excess <= 0:
                return event, data
            _shrink_largest(event, excess + 256)
            data = orjson.dumps(event)
    except Exception:  # noqa: BLE001 - never raise on the logging path
        event = {}
    # Still too big (e.g. thousands of small fields): keep the record's identity only.
    small: dict[str, Any] = {key: event.get(key) for key in _IDENTITY if key in event}
    message = str(small.get("message", ""))
    if len(message) > limit // 8:
        small["message"] = _cut(message, len(message) - limit // 8)
    small["metadata"] = {"truncated": f"record over {limit} bytes: fields dropped"}
    return small, orjson.dumps(small)


_IDENTITY = (
    "timestamp", "level", "category", "message", "module", "function", "line", "logger",
    "severity_number", "trace_id", "span_id",
)  # fmt: skip


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


def _shrink_largest(node: Any, excess: int) -> None:
    """Cut the largest value under ``node`` so the record shrinks by about ``excess``."""
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        sizes = [(_size(node[k]), k) for k in keys]
        size, key = max(sizes, key=lambda pair: pair[0])
        child = node[key]
        if isinstance(child, str):
            node[key] = _cut(child, excess)
            return
        if isinstance(child, dict | list) and child and size * 2 >= excess:
            spread = max(_size(v) for v in (child.values() if isinstance(child, dict) else child))
            if spread * 4 >= min(size, excess):  # one big value inside: go find it
                node = child
                continue
        # Many small values (or a scalar): the container's JSON text, cut.
        node[key] = _cut(orjson.dumps(child).decode("utf-8"), excess)
        return


def _cut(text: str, excess: int) -> str:
    """``text`` shorter by at least ``excess`` UTF-8 bytes (when it is that long), marked."""
    raw = text.encode("utf-8")
    keep = max(0, len(raw) - excess - 32)
    kept = raw[:keep].decode("utf-8", "ignore")
    removed = len(raw) - len(kept.encode("utf-8"))
    return f"{kept}...[truncated {removed} bytes]"
