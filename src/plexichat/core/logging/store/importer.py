"""Import foreign JSON-lines logs into a store, mapping their fields to the record schema.

Recognized shapes: PlexiChat's own records (stored as they are), structlog (``event``),
loguru ``serialize=True`` (``text`` + ``record``), python-json-logger (``levelname``,
``asctime``) and plain ``timestamp``/``level``/``message`` lines. Unusable lines are
counted, never fatal.

A file is identified by its content, not its name: its records form the stream
``import-<hash of its first line>`` with the line numbers as sequence numbers. The same
file imported again (renamed, compressed by logrotate, or grown since) adds only the lines
not stored yet; a file with another first line is another stream. PlexiChat's own records
keep their stream and sequence number, so a segment the indexer already stored adds
nothing, and its integrity control lines are skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .._core.levels import LogLevel
from ..integrity._format import CONTROL_PREFIX
from ..sinks.segments import MAX_LINE, open_segment
from ._pages import MAX_ROW_ID
from .base import LogStore, StoredRecord, record_from_event, record_from_line

__all__ = ["ImportReport", "import_file", "map_foreign"]

BATCH = 5000
_TIME_KEYS = ("timestamp", "@timestamp", "time", "ts", "asctime", "created", "datetime")
_LEVEL_KEYS = ("level", "levelname", "severity", "log.level", "lvl")
_MESSAGE_KEYS = ("message", "msg", "event", "text")
_LOGGER_KEYS = ("logger", "name", "logger_name")
_SKIP = {"module", "function", "funcName", "lineno", "line", "category", "context", "metadata"}
_NATIVE_KEYS = ("timestamp", "level", "category", "message", "stream", "seq")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIRST_US = -62135596800 * 1_000_000  # 0001-01-01T00:00:00Z
_END_US = 253402300800 * 1_000_000  # 10000-01-01T00:00:00Z, just after the year 9999
_UNITS = ((1e11, 1), (1e14, 1e3), (1e17, 1e6), (1e20, 1e9))
"""Numeric timestamps: up to 1e11 (the year 5138) seconds, then milliseconds, microseconds
and nanoseconds; anything larger is not a timestamp."""


@dataclass
class ImportReport:
    """What an import did: records stored, lines skipped and why.

    Attributes:
        records: records stored by this import.
        duplicates: records already in the store (imported before, or indexed).
        malformed: lines that are not log records (not JSON objects, or without a usable
            timestamp).
        oversized: lines longer than :data:`MAX_LINE`.
        unknown_levels: records stored whose level name is not a PlexiChat level.
        control_lines: integrity control lines of PlexiChat segments (skipped).
        stream: the stream of the file's foreign records (``import-<hash>``), None for a
            file without a non-blank line.
        error: why reading stopped before the end of the file (a damaged compressed
            file); the records read before it are stored.
        warnings: human-readable notes on the above.
    """

    records: int = 0
    duplicates: int = 0
    malformed: int = 0
    oversized: int = 0
    unknown_levels: int = 0
    control_lines: int = 0
    stream: str | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def _epoch_iso(value: float) -> str | None:
    """A number of seconds, ms, us or ns since the epoch as ISO-8601, None when it is not
    a time in the years 1..9999."""
    for bound, per_second in _UNITS:
        if abs(value) <= bound:  # False for NaN
            return _micros_iso(round(value * 1_000_000 / per_second))
    return None


def _micros_iso(us: int) -> str | None:
    """Microseconds since the epoch as ISO-8601 with milliseconds (the writer's format),
    None outside the years 1..9999."""
    if not _FIRST_US <= us < _END_US:
        return None
    moment = _EPOCH + timedelta(milliseconds=us // 1000)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timestamp(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch_iso(value)
    if isinstance(value, Mapping):  # loguru: {"repr": ..., "timestamp": 1705314645.123}
        return _timestamp(value.get("timestamp"))
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(",", ".", 1) if "," in value[-4:] else value.strip()
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return _micros_iso((dt - _EPOCH) // _MICROSECOND)


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in data:
            return data[key]
    return None


def map_foreign(data: Mapping[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """Map one foreign record to the PlexiChat schema; returns (event or None, level known).

    The event is None when the record has no timestamp in the years 1..9999 (an ISO-8601
    text, or a number of seconds, milliseconds, microseconds or nanoseconds since the epoch).
    """
    if "record" in data and isinstance(data["record"], Mapping) and "text" in data:
        rec = data["record"]  # loguru serialize=True
        level = rec.get("level", {})
        data = {
            "timestamp": rec.get("time"),
            "level": level.get("name") if isinstance(level, Mapping) else level,
            "message": rec.get("message"),
            "logger": rec.get("name"),
            "module": rec.get("module"),
            "function": rec.get("function"),
            "line": rec.get("line"),
            "context": rec.get("extra") if isinstance(rec.get("extra"), Mapping) else {},
        }
    timestamp = _timestamp(_first(data, _TIME_KEYS))
    if timestamp is None:
        return None, True
    level_value = _first(data, _LEVEL_KEYS)
    level = str(level_value).upper() if level_value is not None else "INFO"
    if level == "WARN":
        level = "WARNING"
    known = level in LogLevel.__members__
    message = _first(data, _MESSAGE_KEYS)
    event: dict[str, Any] = {
        "timestamp": timestamp,
        "level": level,
        "category": str(data.get("category") or "system"),
        "message": message if isinstance(message, str) else orjson.dumps(message).decode(),
        "module": str(data.get("module") or ""),
        "function": str(data.get("function") or data.get("funcName") or ""),
        "line": data.get("line") or data.get("lineno") or 0,
    }
    used = set(_TIME_KEYS + _LEVEL_KEYS + _MESSAGE_KEYS + _LOGGER_KEYS) | _SKIP
    context = dict(data["context"]) if isinstance(data.get("context"), Mapping) else {}
    context.update({k: v for k, v in data.items() if k not in used and k != "record"})
    if context:
        event["context"] = context
    if isinstance(data.get("metadata"), Mapping):
        event["metadata"] = dict(data["metadata"])
    logger = _first(data, _LOGGER_KEYS)
    event["logger"] = str(logger) if logger is not None else ""
    return event, known


def _is_native(data: Mapping[str, Any]) -> bool:
    """Whether a line is a PlexiChat record: the native fields, its own stream and seq."""
    if not all(key in data for key in _NATIVE_KEYS):
        return False
    stream, seq = data["stream"], data["seq"]
    return (
        isinstance(stream, str)
        and bool(stream)
        and isinstance(seq, int)
        and not isinstance(seq, bool)
        and 0 <= seq <= MAX_ROW_ID
        and isinstance(data["timestamp"], str)
    )


def _import_stream(first_line: bytes) -> str:
    """The stream of an imported file's records, from its first non-blank line.

    The same content under another name, compressed, or grown since has the same stream.
    """
    return "import-" + hashlib.sha256(first_line.strip()).hexdigest()[:16]


@dataclass
class _Import:
    """The state of one file's import: the batch not stored yet and the report."""

    store: LogStore
    report: ImportReport = field(default_factory=ImportReport)
    batch: list[StoredRecord] = field(default_factory=list)

    def line(self, number: int, raw: bytes) -> None:
        """Count or queue one line (never raises for the line's content)."""
        report = self.report
        if report.stream is None:
            if not raw.strip():
                report.malformed += 1
                return
            report.stream = _import_stream(raw)
        if raw.startswith(CONTROL_PREFIX):  # integrity header, checkpoint, announced loss
            report.control_lines += 1
            return
        if len(raw) > MAX_LINE:
            report.oversized += 1
            return
        try:
            record = self._record(number, raw, report.stream)
        except (ValueError, TypeError, ArithmeticError):  # orjson errors are ValueError/TypeError
            record = None
        if record is None:
            report.malformed += 1
            return
        self.batch.append(record)
        if len(self.batch) >= BATCH:
            self.flush()

    def _record(self, number: int, raw: bytes, stream: str) -> StoredRecord | None:
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            return None
        if _is_native(data):  # PlexiChat's own line: its stream, seq and raw line as they are
            return record_from_line(raw)
        event, known = map_foreign(data)
        if event is None:
            return None
        record = record_from_event(event, stream=stream, seq=number)
        if not known:
            self.report.unknown_levels += 1
        return record

    def flush(self) -> None:
        """Store the batch; records already stored count as duplicates."""
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        inserted = self.store.append(batch)
        self.report.records += inserted
        self.report.duplicates += len(batch) - inserted


def _read_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged plain, ``.gz`` or ``.zst`` file raises."""
    try:
        import zstandard
    except ImportError:  # pragma: no cover - zstandard is installed with the zstd extra
        return (OSError, EOFError)
    return (OSError, EOFError, zstandard.ZstdError)


def import_file(path: str | Path, store: LogStore) -> ImportReport:
    """Import one JSON-lines file (optionally ``.gz`` or ``.zst``); importing it again adds nothing.

    A line that is not a usable record (not JSON, no timestamp in the years 1..9999, too
    long) is counted and skipped; the import goes on. A read error in the middle of the
    file (a damaged ``.gz``) ends the import of the file: the records before it are stored
    and :attr:`ImportReport.error` says why it stopped.

    Raises:
        OSError: the file cannot be opened.
    """
    path = Path(path)
    job = _Import(store)
    report = job.report
    number = 0
    with open_segment(path) as fh:
        try:
            for number, raw in enumerate(fh, 1):
                job.line(number, raw)
        except _read_errors() as exc:
            reason = (exc.strerror if isinstance(exc, OSError) else None) or exc
            report.error = f"{path}: cannot read past line {number}: {reason}"
        job.flush()
    if report.malformed:
        report.warnings.append(
            f"{path}: {report.malformed} lines are not log records (not JSON objects, or "
            "without a timestamp in the years 1..9999): skipped"
        )
    if report.oversized:
        report.warnings.append(f"{path}: {report.oversized} lines longer than {MAX_LINE} bytes")
    if report.unknown_levels:
        report.warnings.append(f"{path}: {report.unknown_levels} records have unknown levels")
    return report
