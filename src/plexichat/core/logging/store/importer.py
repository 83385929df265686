"""Import foreign JSON-lines logs into a store, mapping their fields to the record schema.

Recognized shapes: PlexiChat's own records, structlog (``event``), loguru
``serialize=True`` (``text`` + ``record``), python-json-logger (``levelname``, ``asctime``)
and plain ``timestamp``/``level``/``message`` lines. Unusable lines are counted, never fatal.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .._core.clock import iso_utc
from .._core.levels import LogLevel
from ..sinks.segments import open_segment
from .base import LogStore, StoredRecord, record_from_event

__all__ = ["ImportReport", "import_file", "map_foreign"]

BATCH = 5000
MAX_LINE = 10 * 1024 * 1024
_TIME_KEYS = ("timestamp", "@timestamp", "time", "ts", "asctime", "created", "datetime")
_LEVEL_KEYS = ("level", "levelname", "severity", "log.level", "lvl")
_MESSAGE_KEYS = ("message", "msg", "event", "text")
_LOGGER_KEYS = ("logger", "name", "logger_name")
_SKIP = {"module", "function", "funcName", "lineno", "line", "category", "context", "metadata"}


@dataclass
class ImportReport:
    """What an import did: records stored, lines skipped and why."""

    records: int = 0
    duplicates: int = 0
    malformed: int = 0
    oversized: int = 0
    unknown_levels: int = 0
    warnings: list[str] = field(default_factory=list)


def _timestamp(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else float(value)  # milliseconds or seconds
        return iso_utc(seconds)
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
    return iso_utc(dt.timestamp())


def _first(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if key in data:
            return data[key]
    return None


def map_foreign(data: Mapping[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """Map one foreign record to the PlexiChat schema; returns (event or None, level known)."""
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


def _lines(path: Path) -> Iterator[bytes]:
    with open_segment(path) as fh:  # plain, .gz or .zst
        yield from fh


def import_file(path: str | Path, store: LogStore) -> ImportReport:
    """Import one JSON-lines file (optionally ``.gz`` or ``.zst``); importing it again adds nothing.

    Raises:
        OSError: the file cannot be read.
    """
    path = Path(path)
    stream = "import-" + hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    report = ImportReport()
    batch: list[StoredRecord] = []
    for number, raw in enumerate(_lines(path), 1):
        if len(raw) > MAX_LINE:
            report.oversized += 1
            continue
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            report.malformed += 1
            continue
        if not isinstance(data, dict):
            report.malformed += 1
            continue
        event, known = map_foreign(data)
        if event is None:
            report.malformed += 1
            continue
        if not known:
            report.unknown_levels += 1
        event["stream"], event["seq"] = stream, number
        try:
            batch.append(record_from_event(event))
        except (ValueError, TypeError, OverflowError):
            report.malformed += 1
            continue
        if len(batch) >= BATCH:
            _flush(store, batch, report)
            batch = []
    _flush(store, batch, report)
    if report.malformed:
        report.warnings.append(f"{path}: {report.malformed} lines are not log records (skipped)")
    if report.unknown_levels:
        report.warnings.append(f"{path}: {report.unknown_levels} records have unknown levels")
    return report


def _flush(store: LogStore, batch: list[StoredRecord], report: ImportReport) -> None:
    if not batch:
        return
    inserted = store.append(batch)
    report.records += inserted
    report.duplicates += len(batch) - inserted
