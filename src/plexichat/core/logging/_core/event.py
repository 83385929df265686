"""The event: one dict in the record schema, serialized once to one JSON line.

Both paths build events here: the fast path straight from a logging call, the stdlib path
from a :class:`logging.LogRecord` (third-party loggers, or when other handlers are present).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import orjson

from .clock import iso_utc
from .context import current_context
from .levels import category_value, level_name, severity_number

__all__ = [
    "RECORD_ATTRS",
    "RESERVED_EXTRA_KEYS",
    "SCHEMA_KEYS",
    "STRUCTURED_KEYS",
    "build_event",
    "category_text",
    "event_from_record",
    "exception_info",
    "format_message",
    "items_of",
    "module_of",
    "safe_repr",
    "to_json",
]

Event = dict[str, Any]

STRUCTURED_KEYS = frozenset({"category", "context", "metadata", "performance_data"})
"""Keys of ``extra=`` (and keyword fields) that map to top-level record fields."""

RECORD_ATTRS = frozenset(
    set(logging.LogRecord("n", 0, "p", 0, "m", None, None).__dict__)
    | {"message", "asctime", "taskName", "plexi_reserved"}
)
"""Attribute names of a stdlib LogRecord: reserved, they never become fields by ``extra=``."""

SCHEMA_KEYS = frozenset(
    {
        "timestamp",
        "level",
        "category",
        "message",
        "module",
        "function",
        "line",
        "context",
        "metadata",
        "performance_data",
        "logger",
        "severity_number",
        "exception",
        "stack",
        "trace_id",
        "span_id",
        "stream",
        "seq",
        "tag",
    }
)
"""Top-level keys of the record schema."""

RESERVED_EXTRA_KEYS = RECORD_ATTRS | (SCHEMA_KEYS - STRUCTURED_KEYS)
"""Keys of ``extra=`` that are moved under ``metadata`` (they name record attributes or
schema fields, so they must never clobber them)."""

_DEFAULT_CATEGORY = "system"
_MODULES: dict[str, str] = {}


def module_of(filename: str) -> str:
    """Return the module name stdlib would give a file (its base name without extension)."""
    found = _MODULES.get(filename)
    if found is None:
        base = os.path.basename(filename)
        found = os.path.splitext(base)[0] or base
        if len(_MODULES) < 10_000:
            _MODULES[filename] = found
    return found


def safe_repr(value: object) -> str:
    """``repr(value)``, or a placeholder naming the type when ``__repr__`` itself fails."""
    try:
        text: object = repr(value)
        if isinstance(text, str):
            return text
        return f"<{type(value).__name__} with a non-str __repr__>"
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        return f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"


def _safe_str(value: object) -> str:
    """``str(value)`` as a plain str, or the safe repr when ``__str__`` fails."""
    if type(value) is str:
        return value
    try:
        return str.__str__(str(value))
    except Exception:  # noqa: BLE001 - any user __str__ may fail
        return safe_repr(value)


def format_message(msg: object, args: Any) -> str:
    """Interpolate ``args`` into ``msg`` as stdlib does; a failing format is reported inline."""
    text = msg if type(msg) is str else _safe_str(msg)
    try:
        if not args:
            return text
        if type(args) is tuple and len(args) == 1:
            first = args[0]
            kind = type(first)
            if (kind is dict or (kind not in _PLAIN and isinstance(first, Mapping))) and first:
                args = first
        result = text % args
        return result if type(result) is str else str.__str__(result)
    except Exception as exc:  # noqa: BLE001
        return (
            f"{text} [unformatted args: {safe_repr(args)}; {type(exc).__name__}: {_safe_str(exc)}]"
        )


_PLAIN = frozenset({str, int, float, bool, type(None), bytes, tuple, list})


def exception_info(exc_info: object) -> dict[str, Any] | None:
    """Return ``{"type", "message", "traceback"}`` for an ``exc_info`` argument, or None."""
    if not exc_info:
        return None
    try:
        value: object
        if isinstance(exc_info, BaseException):
            value = exc_info
        elif isinstance(exc_info, tuple) and len(exc_info) == 3:
            value = exc_info[1]
        else:
            value = sys.exc_info()[1]
        if not isinstance(value, BaseException):
            return None
        etype, tb = type(value), value.__traceback__
        lines: list[str] = []
        for chunk in traceback.format_exception(etype, value, tb):
            lines.extend(chunk.rstrip("\n").split("\n"))
        qualname = getattr(etype, "__qualname__", None) or getattr(etype, "__name__", "?")
        modname = getattr(etype, "__module__", "builtins")
        type_name = (
            qualname if modname in ("builtins", "__main__", None) else f"{modname}.{qualname}"
        )
        return {"type": type_name, "message": _safe_str(value), "traceback": lines}
    except Exception as exc:  # noqa: BLE001
        return {
            "type": "<unknown>",
            "message": f"exception info unavailable: {safe_repr(exc)}",
            "traceback": [],
        }


def _otel_ids() -> tuple[str, str] | None:
    trace_mod = sys.modules.get("opentelemetry.trace")
    if trace_mod is None:
        return None
    try:
        ctx = trace_mod.get_current_span().get_span_context()
        if not ctx.is_valid:
            return None
        return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    except Exception:  # noqa: BLE001
        return None


def build_event(
    created: float,
    levelno: int,
    message: str,
    module: str,
    function: str,
    line: int,
    logger_name: str,
    *,
    category: object = None,
    context: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    performance_data: Mapping[str, Any] | None = None,
    exc_info: object = None,
    stack: str | None = None,
) -> Event:
    """Assemble one event in the record schema's key order (empty objects omitted)."""
    names = _LEVELS.get(levelno)
    if names is None:
        names = _level_names(levelno)
    event: Event = {
        "timestamp": iso_utc(created),
        "level": names[0],
        "category": _DEFAULT_CATEGORY if category is None else category_text(category),
        "message": message,
        "module": module,
        "function": function,
        "line": line,
    }
    if context:
        event["context"] = context
    if metadata:
        event["metadata"] = metadata
    if performance_data:
        event["performance_data"] = performance_data
    event["logger"] = logger_name
    event["severity_number"] = names[1]
    if exc_info:
        exc = exception_info(exc_info)
        if exc is not None:
            event["exception"] = exc
    if stack:
        event["stack"] = stack
    ids = _otel_ids()
    if ids is not None:
        event["trace_id"], event["span_id"] = ids
    return event


_LEVELS: dict[int, tuple[str, int]] = {}


def _level_names(levelno: int) -> tuple[str, int]:
    """(name, OpenTelemetry severity) of a level, cached for the levels in use."""
    names = (level_name(levelno), severity_number(levelno))
    if len(_LEVELS) < 256:
        _LEVELS[levelno] = names
    return names


def category_text(category: object) -> str:
    """The JSON value of a category; a hostile object becomes a placeholder naming its type."""
    if type(category) is str:
        return category
    try:
        return category_value(category)
    except Exception:  # noqa: BLE001 - a hostile category object
        return f"<unprintable {type(category).__name__}>"


def _as_mapping(value: object, what: str) -> dict[str, Any]:
    if type(value) is dict:
        return value.copy()
    try:
        if isinstance(value, Mapping):
            return dict(value)
    except Exception:  # noqa: BLE001 - hostile mapping
        return {what: safe_repr(value)}
    return {what: value}


def split_extra(
    extra: Mapping[str, Any] | None, fields: Mapping[str, Any] | None
) -> tuple[object, dict[str, Any], dict[str, Any], dict[str, Any] | None]:
    """Split ``extra=`` and keyword fields into category, context, metadata, performance data.

    Precedence inside ``context``: unknown ``extra`` keys < ``extra["context"]`` < keyword
    fields. Reserved stdlib attribute names are moved under ``metadata``.
    """
    category: object = None
    context: dict[str, Any] = {}
    metadata: dict[str, Any] = {}
    perf: dict[str, Any] | None = None
    call_context: dict[str, Any] | None = None
    for source in (extra, fields):
        if source is None:  # not ``not source``: a hostile __bool__/__len__ may raise
            continue
        items = items_of(source)
        if items is None:
            metadata["extra" if source is extra else "fields"] = safe_repr(source)
            continue
        for key, value in items:
            if type(key) is not str:  # non-str keys by repr; str subclasses as plain str
                key = str.__str__(key) if isinstance(key, str) else safe_repr(key)
            if key == "category":
                category = value
            elif key == "context":
                call_context = {**(call_context or {}), **_as_mapping(value, "context")}
            elif key == "metadata":
                metadata.update(_as_mapping(value, "metadata"))
            elif key == "performance_data":
                perf = {**(perf or {}), **_as_mapping(value, "performance_data")}
            elif source is extra and key in RESERVED_EXTRA_KEYS:
                metadata[key] = value
            elif source is fields:
                call_context = {**(call_context or {}), key: value}
            else:
                context[key] = value
    if call_context:
        context.update(call_context)
    return category, context, metadata, perf


def items_of(source: object) -> list[tuple[Any, Any]] | None:
    """The items of ``extra=`` / keyword fields, or None when it is not a usable mapping."""
    try:
        if type(source) is dict:
            return list(source.items())
        if not isinstance(source, Mapping):
            return None
        return list(source.items())
    except Exception:  # noqa: BLE001 - hostile mapping
        return None


def with_bound(context: dict[str, Any]) -> dict[str, Any]:
    """Merge the bound context under ``context`` (per-call keys win)."""
    bound = current_context()
    if not bound:
        return context
    if not context:
        return dict(bound)
    merged = dict(bound)
    merged.update(context)
    return merged


def event_from_record(record: logging.LogRecord) -> Event:
    """Build the event for a stdlib LogRecord (the path for third-party and mixed handlers)."""
    attrs = record.__dict__
    extra_keys = {k: v for k, v in attrs.items() if k not in RECORD_ATTRS}
    category, context, metadata, perf = split_extra(extra_keys, None)
    reserved = attrs.get("plexi_reserved")
    if reserved:
        # Set by PlexiLogger.makeRecord; a plain logger's ``extra`` may hold anything here.
        found = items_of(reserved)
        if found is None:
            metadata["plexi_reserved"] = reserved
        else:
            metadata.update((k if isinstance(k, str) else safe_repr(k), v) for k, v in found)
    stack = record.stack_info if isinstance(record.stack_info, str) else None
    return build_event(
        record.created,
        record.levelno,
        format_message(record.msg, record.args),
        record.module,
        record.funcName or "",
        record.lineno,
        record.name,
        category=category,
        context=with_bound(context),
        metadata=metadata,
        performance_data=perf,
        exc_info=record.exc_info,
        stack=stack,
    )


_OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, float):  # orjson takes only exact floats
        return float.__float__(value)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return safe_repr(value)


def to_json(event: Mapping[str, Any]) -> bytes:
    """Serialize an event to one JSON object (no newline); never raises.

    Values orjson cannot serialize become their ``repr``; cycles, huge integers, lone
    surrogates and similar hostile values are sanitized in a second, careful pass, where a
    value that defeats even that becomes a placeholder naming its type.
    """
    try:
        return orjson.dumps(event, default=_default, option=_OPTIONS)
    except Exception:  # noqa: BLE001
        pass
    try:
        return orjson.dumps(_sanitize(event, 0, set()), default=_default, option=_OPTIONS)
    except Exception as exc:  # noqa: BLE001  # pragma: no cover - _sanitize gives plain JSON
        return orjson.dumps(
            {
                "timestamp": event.get("timestamp", iso_utc(0.0)),
                "level": _sanitize(event.get("level", "ERROR"), 0, set()),
                "category": "system",
                "message": f"<unserializable log record: {type(exc).__name__}>",
            }
        )


_MAX_DEPTH = 64


def _clean_str(text: str) -> str:
    text = str.__str__(text)  # a plain str, whatever a subclass overrides
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _key_text(key: object) -> str:
    """A dict key as the first pass renders it (``OPT_NON_STR_KEYS``): None -> "null", ..."""
    if isinstance(key, str):
        return _clean_str(key)
    if isinstance(key, int) and not isinstance(key, bool):
        return _big_int(int(key))
    try:
        rendered = orjson.loads(orjson.dumps({key: None}, option=_OPTIONS))
        return _clean_str(next(iter(rendered)))
    except Exception:  # noqa: BLE001
        return _clean_str(safe_repr(key))


def _sanitize(value: Any, depth: int, seen: set[int]) -> Any:
    """A JSON-safe copy of ``value``; a value that defeats even this costs only itself."""
    try:
        return _sanitize_value(value, depth, seen)
    except Exception as exc:  # noqa: BLE001 - e.g. a __class__ property that raises
        return f"<unserializable {type(value).__name__}: {type(exc).__name__}>"


def _sanitize_value(value: Any, depth: int, seen: set[int]) -> Any:
    if isinstance(value, str):
        return _clean_str(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return float.__float__(value)  # a plain float, whatever a subclass overrides
    if isinstance(value, int):
        number = int.__int__(value)  # a plain int, whatever a subclass overrides
        return number if -(2**63) <= number < 2**64 else _big_int(number)
    if depth >= _MAX_DEPTH:
        return "<max depth>"
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        marker = id(value)
        if marker in seen:
            return "<cycle>"
        seen.add(marker)
        try:
            if isinstance(value, Mapping):
                return {_key_text(k): _sanitize(v, depth + 1, seen) for k, v in list(value.items())}
            return [_sanitize(v, depth + 1, seen) for v in list(value)]
        except Exception:  # noqa: BLE001 - hostile container
            return _clean_str(safe_repr(value))
        finally:
            seen.discard(marker)
    try:  # what the first pass makes of it (datetimes, UUIDs, enums, paths, ...)
        return orjson.loads(orjson.dumps(value, default=_default, option=_OPTIONS))
    except Exception:  # noqa: BLE001
        return _clean_str(safe_repr(value))


def _big_int(value: int) -> str:
    try:
        return str(value)
    except ValueError:  # more digits than int-to-str allows
        return f"<int with {value.bit_length()} bits>"
