"""``PlexiLogger``: a :class:`logging.Logger` with a fast path, keyword fields and extra levels.

When the only handler a record would reach is the PlexiChat handler (the usual case), the
logger skips ``LogRecord`` creation and the stdlib caller lookup and hands a ready event to
the handler. As soon as anything else is attached (a filter, another handler, pytest's
``caplog``), calls take the ordinary stdlib path and every handler sees a normal record.
"""

from __future__ import annotations

import logging
import sys
import time
import traceback
from collections.abc import Mapping
from types import FrameType, TracebackType
from typing import Any, TypeAlias

from ._caller import (
    _INTERNAL_FILES,
    _caller_frame,
    _ensure_configured,
    _fast_target,
    _stacklevel,
)
from .clock import iso_utc
from .context import current_context
from .errors import error_reporter
from .event import (
    _LEVELS,
    _MODULES,
    RECORD_ATTRS,
    STRUCTURED_KEYS,
    _level_names,
    build_event,
    category_text,
    format_message,
    items_of,
    module_of,
    safe_repr,
    split_extra,
)
from .levels import AUDIT, SECURITY, TRACE

__all__ = ["PlexiLogger", "adopt_logger", "plexi_logger"]

_SysExcInfo: TypeAlias = (
    "tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]"
)
ExcInfo: TypeAlias = "bool | _SysExcInfo | BaseException | None"

_INTERNAL_FILES.add(__file__)
_OTEL = "opentelemetry.trace"
_SCALARS = frozenset({str, int, float})
_time = time.time
_bound = current_context
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = (
    logging.DEBUG,
    logging.INFO,
    logging.WARNING,
    logging.ERROR,
    logging.CRITICAL,
)


class PlexiLogger(logging.Logger):
    """A stdlib logger that also takes keyword fields and has ``trace``/``security``/``audit``.

    ``logger.info("User login", category=LogCategory.SECURITY, user_id="u1")`` puts
    ``user_id`` into the record's ``context``; ``exc_info``, ``stack_info``, ``stacklevel`` and
    ``extra`` keep their stdlib meaning.
    """

    _cache: dict[int, bool]  # stdlib's per-level isEnabledFor cache (not in typeshed)

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - stdlib name
        """Like stdlib's; on a cache miss (every level change, ``shutdown_logging`` included,
        empties the cache) logging is configured first if it is not, as ``get_logger`` does."""
        if self.disabled:
            return False
        try:
            return self._cache[level]
        except KeyError:
            _ensure_configured()
            return super().isEnabledFor(level)

    def _plexi_log(
        self,
        level: int,
        msg: object,
        args: tuple[object, ...],
        exc_info: ExcInfo,
        extra: Mapping[str, object] | None,
        stack_info: bool,
        stacklevel: int,
        fields: dict[str, Any],
    ) -> None:
        try:
            target = _fast_target(self)
        except Exception:  # noqa: BLE001 - hostile handler lists fall back to stdlib
            target = None
        if target is None:
            self._stdlib_log(level, msg, args, exc_info, extra, stack_info, stacklevel, fields)
            return
        if level < target.level:
            return
        try:
            frame = _caller_frame(stacklevel)
            code = frame.f_code
            metadata: dict[str, Any]
            if fields:
                if extra is None and fields.keys().isdisjoint(STRUCTURED_KEYS):
                    category, context, metadata, perf = None, fields, {}, None  # a fresh dict
                else:
                    category, context, metadata, perf = split_extra(extra, fields)
            elif extra is None:
                category, context, metadata, perf = None, {}, {}, None
            elif type(extra) is dict and len(extra) == 1 and type(extra.get("context")) is dict:
                category, context, metadata, perf = None, extra["context"].copy(), {}, None
            else:
                category, context, metadata, perf = split_extra(extra, fields)
            bound = _bound()
            if bound:
                context = {**bound, **context}
            filename = code.co_filename
            module = _MODULES.get(filename) or module_of(filename)
            if type(msg) is not str:
                message = format_message(msg, args)
            elif not args:
                message = msg
            elif len(args) == 1 and type(args[0]) in _SCALARS:
                try:
                    message = msg % args
                except Exception:  # noqa: BLE001 - bad format: the careful path says why
                    message = format_message(msg, args)
            else:
                message = format_message(msg, args)
            if exc_info or stack_info or _OTEL in sys.modules:
                event = self._full_event(
                    level, message, module, code.co_name, frame, category, context,
                    metadata, perf, exc_info, stack_info,
                )  # fmt: skip
            else:
                # build_event's common case, inlined (tests compare it with the stdlib path).
                names = _LEVELS.get(level) or _level_names(level)
                event = {
                    "timestamp": iso_utc(_time()),  # cached per millisecond
                    "level": names[0],
                    "category": "system" if category is None else category_text(category),
                    "message": message,
                    "module": module,
                    "function": code.co_name,
                    "line": frame.f_lineno,
                }
                if context:
                    event["context"] = context
                if metadata:
                    event["metadata"] = metadata
                if perf:
                    event["performance_data"] = perf
                event["logger"] = self.name
                event["severity_number"] = names[1]
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            error_reporter.report("build", f"could not build a log record: {exc!r}")
            return
        target.emit_event(level, event)

    def _full_event(
        self,
        level: int,
        message: str,
        module: str,
        function: str,
        frame: FrameType,
        category: object,
        context: dict[str, Any],
        metadata: dict[str, Any],
        perf: dict[str, Any] | None,
        exc_info: ExcInfo,
        stack_info: bool,
    ) -> dict[str, Any]:
        """The event with exception, stack or trace ids: the general builder."""
        if exc_info and not isinstance(exc_info, tuple | BaseException):
            exc_info = sys.exc_info()
        stack = None
        if stack_info:
            stack = "Stack (most recent call last):\n" + "".join(
                traceback.format_stack(frame)
            ).rstrip("\n")
        return build_event(
            _time(),
            level,
            message,
            module,
            function,
            frame.f_lineno,
            self.name,
            category=category,
            context=context,
            metadata=metadata,
            performance_data=perf,
            exc_info=exc_info,
            stack=stack,
        )

    def _stdlib_log(
        self,
        level: int,
        msg: object,
        args: tuple[object, ...],
        exc_info: ExcInfo,
        extra: Mapping[str, object] | None,
        stack_info: bool,
        stacklevel: int,
        fields: dict[str, Any],
    ) -> None:
        try:
            if fields:
                extra = _fold_fields(extra, fields)
            # Stdlib's Logger._log, step by step, so that a record stdlib cannot build from
            # hostile arguments is still built (message pre-formatted) instead of raising.
            fn, lno, func, sinfo = self.findCaller(stack_info, _stacklevel(stacklevel))
            if exc_info:
                if isinstance(exc_info, BaseException):
                    exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
                elif not isinstance(exc_info, tuple):
                    exc_info = sys.exc_info()
            try:
                record = self.makeRecord(
                    self.name, level, fn, lno, msg, args, exc_info, func, extra, sinfo
                )
            except Exception:  # noqa: BLE001 - e.g. an argument whose isinstance() raises
                record = self.makeRecord(
                    self.name, level, fn, lno, format_message(msg, args), (), exc_info, func,
                    extra, sinfo,
                )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            error_reporter.report("build", f"could not build a log record: {exc!r}")
            return
        self.handle(record)

    def findCaller(  # noqa: N802 - stdlib name
        self, stack_info: bool = False, stacklevel: int = 1
    ) -> tuple[str, int, str, str | None]:
        """Like stdlib's, but also skips this module's frames."""
        f: FrameType | None = sys._getframe(1)
        while f is not None and f.f_code.co_filename in _INTERNAL_FILES:
            f = f.f_back
        while stacklevel > 1 and f is not None and f.f_back is not None:
            f = f.f_back
            if f.f_code.co_filename not in _INTERNAL_FILES:
                stacklevel -= 1
        if f is None:  # pragma: no cover
            return "(unknown file)", 0, "(unknown function)", None
        sinfo = None
        if stack_info:
            sinfo = "Stack (most recent call last):\n" + "".join(traceback.format_stack(f)).rstrip(
                "\n"
            )
        code = f.f_code
        return code.co_filename, f.f_lineno, code.co_name, sinfo

    def makeRecord(  # noqa: N802 - stdlib name
        self,
        name: str,
        level: int,
        fn: str,
        lno: int,
        msg: object,
        args: Any,
        exc_info: Any,
        func: str | None = None,
        extra: Mapping[str, object] | None = None,
        sinfo: str | None = None,
    ) -> logging.LogRecord:
        """Like stdlib's, but a reserved key in ``extra`` is kept under ``plexi_reserved``
        (it lands in ``metadata``) instead of raising ``KeyError``."""
        record = logging.getLogRecordFactory()(
            name, level, fn, lno, msg, args, exc_info, func, sinfo
        )
        if extra is not None:
            reserved: dict[str, object] = {}
            attrs = record.__dict__
            items = items_of(extra)
            if items is None:
                attrs["plexi_reserved"] = {"extra": safe_repr(extra)}
                return record
            for key, value in items:
                if key in RECORD_ATTRS or key in attrs:
                    reserved[key] = value
                else:
                    attrs[key] = value
            if reserved:
                attrs["plexi_reserved"] = reserved
        return record

    # --- level methods -------------------------------------------------------------------

    def trace(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at TRACE (5), below DEBUG."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[TRACE]:
                return
        except KeyError:
            if not self.isEnabledFor(TRACE):
                return
        self._plexi_log(TRACE, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def debug(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at DEBUG."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[_DEBUG]:
                return
        except KeyError:
            if not self.isEnabledFor(_DEBUG):
                return
        self._plexi_log(_DEBUG, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def info(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at INFO."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[_INFO]:
                return
        except KeyError:
            if not self.isEnabledFor(_INFO):
                return
        self._plexi_log(_INFO, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def warning(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at WARNING."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[_WARNING]:
                return
        except KeyError:
            if not self.isEnabledFor(_WARNING):
                return
        self._plexi_log(_WARNING, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def warn(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Deprecated alias of :meth:`warning`, kept for stdlib compatibility."""
        if self.isEnabledFor(_WARNING):
            self._dispatch(_WARNING, msg, args, kwargs)

    def error(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at ERROR."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[_ERROR]:
                return
        except KeyError:
            if not self.isEnabledFor(_ERROR):
                return
        self._plexi_log(_ERROR, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def exception(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = True,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at ERROR with the current exception's traceback."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[_ERROR]:
                return
        except KeyError:
            if not self.isEnabledFor(_ERROR):
                return
        self._plexi_log(_ERROR, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def critical(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at CRITICAL."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[_CRITICAL]:
                return
        except KeyError:
            if not self.isEnabledFor(_CRITICAL):
                return
        self._plexi_log(_CRITICAL, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    fatal = critical

    def security(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at SECURITY (60): above CRITICAL, never dropped when the queue is full."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[SECURITY]:
                return
        except KeyError:
            if not self.isEnabledFor(SECURITY):
                return
        self._plexi_log(SECURITY, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def audit(
        self,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at AUDIT (70): the highest level, never dropped when the queue is full."""
        try:  # stdlib's isEnabledFor, inlined: this is every call's cost below the level
            if self.disabled or not self._cache[AUDIT]:
                return
        except KeyError:
            if not self.isEnabledFor(AUDIT):
                return
        self._plexi_log(AUDIT, msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def log(
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: ExcInfo = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Mapping[str, object] | None = None,
        **fields: Any,
    ) -> None:
        """Log at an explicit level number (or :class:`LogLevel`)."""
        checked: object = level  # callers without type checking may pass anything
        if not isinstance(checked, int):
            if logging.raiseExceptions:
                raise TypeError(f"level must be an integer or LogLevel, got {checked!r}")
            return
        if self.isEnabledFor(level):
            self._plexi_log(int(level), msg, args, exc_info, extra, stack_info, stacklevel, fields)

    def _dispatch(
        self, level: int, msg: object, args: tuple[object, ...], kw: dict[str, Any]
    ) -> None:
        exc_info = kw.pop("exc_info", None)
        stack_info = bool(kw.pop("stack_info", False))
        stacklevel = _stacklevel(kw.pop("stacklevel", 1))
        extra = kw.pop("extra", None)
        self._plexi_log(level, msg, args, exc_info, extra, stack_info, stacklevel, kw)


def _fold_fields(extra: Mapping[str, object] | None, fields: dict[str, Any]) -> dict[str, object]:
    """Fold keyword fields into ``extra=`` so stdlib handlers (caplog included) see them as
    record.category / record.context / record.metadata / record.performance_data."""
    category, context, metadata, perf = split_extra(extra, fields)
    merged: dict[str, object] = {
        k: v for k, v in (items_of(extra) or ()) if k not in STRUCTURED_KEYS
    }
    if category is not None:
        merged["category"] = category
    if context:
        merged["context"] = context
    if metadata:
        merged["metadata"] = metadata
    if perf:
        merged["performance_data"] = perf
    return merged


def plexi_logger(name: str | None) -> PlexiLogger:
    """Return the logger ``name``, created as a :class:`PlexiLogger` when it is new.

    Only this one logger is created with our class (the global logger class is left alone);
    an existing logger is adopted in place by :func:`adopt_logger`.
    """
    if not name:
        return adopt_logger(logging.getLogger())
    manager = logging.Logger.manager
    lock = getattr(logging, "_lock", None)
    existing = manager.loggerDict.get(name)
    if isinstance(existing, logging.Logger) or lock is None:
        return adopt_logger(logging.getLogger(name))
    with lock:  # the lock stdlib's Manager.getLogger takes (re-entrant)
        saved = manager.loggerClass
        manager.loggerClass = PlexiLogger
        try:
            logger = manager.getLogger(name)
        finally:
            manager.loggerClass = saved
    return adopt_logger(logger)


def adopt_logger(logger: logging.Logger) -> PlexiLogger:
    """Give an existing stdlib logger the PlexiChat methods (in place), returning it."""
    if isinstance(logger, PlexiLogger):
        return logger
    cls = type(logger)
    if cls is logging.Logger:
        logger.__class__ = PlexiLogger
    else:
        logger.__class__ = _mixed_class(cls)
    return logger  # type: ignore[return-value]


_MIXED: dict[type[logging.Logger], type[PlexiLogger]] = {}


def _mixed_class(cls: type[logging.Logger]) -> type[PlexiLogger]:
    mixed = _MIXED.get(cls)
    if mixed is None:
        mixed = type(f"Plexi{cls.__name__}", (PlexiLogger, cls), {})
        _MIXED[cls] = mixed
    return mixed
