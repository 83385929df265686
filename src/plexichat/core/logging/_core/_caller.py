"""The logger's per-call helpers: the caller's frame, the fast-path check and the
``stacklevel`` argument, kept apart from the level methods that use them."""

from __future__ import annotations

import logging
import operator
import sys
from types import FrameType

from .handler import PlexiHandler

__all__ = ["_INTERNAL_FILES", "_caller_frame", "_ensure_configured", "_fast_target", "_stacklevel"]

_INTERNAL_FILES: set[str] = {logging.__file__}
"""Files whose frames are never the caller (``logger.py`` adds itself)."""
_record_factory = logging.getLogRecordFactory
_LogRecord = logging.LogRecord


def _caller_frame(stacklevel: int) -> FrameType:
    """The frame of the code that called the level method (our own frames skipped).

    Called from ``_plexi_log``; when no Python code called (a C callback such as
    ``atexit.register(logger.warning, ...)``), the level method's own frame stands in.
    """
    try:
        frame: FrameType = sys._getframe(3)
    except ValueError:
        return sys._getframe(2)
    while frame.f_code.co_filename in _INTERNAL_FILES:
        back = frame.f_back
        if back is None:
            break
        frame = back
    if stacklevel != 1:
        frame = _up(frame, _stacklevel(stacklevel))
    return frame


def _stacklevel(value: object) -> int:
    """``stacklevel`` as an int; anything that is not a whole number (``"2"``, ``None``)
    counts as 1, so a bad argument never drops the record or raises."""
    if type(value) is int:
        return value
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - any bad value: the caller itself
        return 1


def _up(frame: FrameType, stacklevel: int) -> FrameType:
    """Walk ``stacklevel - 1`` frames up from the caller, not counting logging's own frames."""
    f = frame
    while stacklevel > 1:
        nxt = f.f_back
        if nxt is None:
            break
        f = nxt
        if f.f_code.co_filename not in _INTERNAL_FILES:
            stacklevel -= 1
    return f


def _fast_target(logger: logging.Logger) -> PlexiHandler | None:
    """Return the PlexiChat handler if it is the only thing a record from ``logger`` reaches
    and no custom ``logging.setLogRecordFactory`` wants to see (and extend) each record."""
    if _record_factory() is not _LogRecord:
        return None
    found: PlexiHandler | None = None
    node: logging.Logger | None = logger
    while node is not None:
        if node.filters:
            return None
        for handler in node.handlers:
            if found is None and type(handler) is PlexiHandler and not handler.filters:
                found = handler
            else:
                return None
        if not node.propagate:
            break
        node = node.parent
    return found


def _ensure_configured() -> None:
    """Configure logging if nothing is (after ``shutdown_logging``, a logger the application
    still holds reconfigures on its next call instead of going silent)."""
    from .manager import get_logging_manager  # lazily: the manager imports the sinks

    get_logging_manager().ensure_configured()
