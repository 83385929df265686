"""The console sink: the spec's console format, colored per level on a TTY.

``[2024-01-15 10:30:45] [INFO    ] auth_service: User authenticated successfully``
"""

from __future__ import annotations

import calendar
import os
import re
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from typing import Any, TextIO

from .._core.clock import console_time
from .._core.errors import error_reporter
from .._core.handler import _OVERSIZED, MAX_RECORD_BYTES
from .._core.levels import level_name

__all__ = ["ConsoleRenderer", "ConsoleSink", "TextLines", "escape_controls", "use_color"]

RESET = "\x1b[0m"
DIM = "\x1b[2m"
LEVEL_COLORS: dict[str, str] = {
    "TRACE": "\x1b[2;37m",
    "DEBUG": "\x1b[36m",
    "INFO": "\x1b[32m",
    "WARNING": "\x1b[33m",
    "ERROR": "\x1b[31m",
    "CRITICAL": "\x1b[1;97;41m",
    "SECURITY": "\x1b[1;35m",
    "AUDIT": "\x1b[1;34m",
}


def use_color(stream: object, configured: bool = True) -> bool:
    """Decide coloring: ``FORCE_COLOR`` forces, ``NO_COLOR`` disables, else only on a TTY."""
    if not configured:
        return False
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001
        return False


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x1B: "\\x1b"}


def escape_controls(text: str) -> str:
    """Make control characters visible (``\\n``, ``\\x1b``, ...).

    A message cannot start a fake log line or send escape sequences to the operator's
    terminal; everything printable, non-ASCII included, stays as it is.
    """
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(
        lambda m: (
            _ESCAPES.get(ord(m.group()), f"\\x{ord(m.group()):02x}")
            if ord(m.group()) < 0x100
            else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )


def _compact(value: object) -> str:
    if isinstance(value, Mapping) and value.get("$enc") == "aes256gcm":  # field encryption
        return "🔒" + str(value.get("kid", ""))[:8]
    if isinstance(value, str):
        return value if value and " " not in value and "=" not in value else repr(value)
    return repr(value) if not isinstance(value, int | float | bool) else str(value)


class ConsoleRenderer:
    """Turns an event (or a parsed JSON record) into console text.

    Args:
        color: emit ANSI colors.
        show_context: append ``key=value`` pairs of the context after the message.
        utc: show the time in UTC instead of local time.
    """

    def __init__(
        self, *, color: bool = False, show_context: bool = False, utc: bool = False
    ) -> None:
        self.color = color
        self.show_context = show_context
        self.utc = utc

    def render(self, event: Mapping[str, Any]) -> str:
        """Return the console line(s) for one event, without a trailing newline."""
        level = str(event.get("level", ""))
        stamp = _stamp(event, self.utc)
        name = escape_controls(str(event.get("logger") or event.get("module") or ""))
        message = escape_controls(str(event.get("message", "")))
        extra = ""
        if self.show_context:
            ctx = event.get("context")
            if isinstance(ctx, Mapping) and ctx:
                extra = escape_controls(
                    "  " + " ".join(f"{k}={_compact(v)}" for k, v in ctx.items())
                )
        if self.color:
            color = LEVEL_COLORS.get(level, "")
            head = f"[{stamp}] [{color}{level:<8}{RESET}] {name}: {message}"
            if extra:
                head += f"{DIM}{extra}{RESET}"
        else:
            head = f"[{stamp}] [{level:<8}] {name}: {message}{extra}"
        exc = event.get("exception")
        if isinstance(exc, Mapping):
            lines = exc.get("traceback") or [f"{exc.get('type')}: {exc.get('message')}"]
            tb = _continuation(lines if isinstance(lines, list) else [lines])
            head += "\n" + (f"{LEVEL_COLORS['ERROR']}{tb}{RESET}" if self.color else tb)
        stack = event.get("stack")
        if isinstance(stack, str):
            head += "\n" + _continuation(stack.split("\n"))
        return head


def _continuation(lines: list[Any]) -> str:
    """Traceback / stack lines below a record line, escaped, none of them able to pass for
    a record line: a line starting with ``[`` (the console format's first character) gets a
    ``| `` prefix. The traceback's own lines (``Traceback``, ``  File ...``) are untouched."""
    out = []
    for line in lines:
        text = escape_controls(str(line))
        out.append("| " + text if text.startswith("[") else text)
    return "\n".join(out)


def render_or_fallback(renderer: ConsoleRenderer, event: Mapping[str, Any]) -> str:
    """``renderer``'s line for ``event``, or :func:`fallback_line` when rendering fails
    (e.g. a context value whose repr raises): the failure is reported, never raised."""
    try:
        return renderer.render(event)
    except Exception as exc:  # noqa: BLE001 - the record is still written, minimally
        error_reporter.report("console-render", f"cannot render a log record: {exc!r}")
        return fallback_line(event, exc)


def fallback_line(event: Mapping[str, Any], exc: BaseException) -> str:
    """A minimal console line for an event the renderer failed on (never raises)."""
    try:
        level = str(event.get("level", ""))
        name = escape_controls(str(event.get("logger") or event.get("module") or ""))
        message = escape_controls(str(event.get("message", "")))
        stamp = str(event.get("timestamp", ""))[:19].replace("T", " ")
        return (
            f"[{stamp}] [{level:<8}] {name}: {message}"
            f"  <context not shown: {type(exc).__name__} while rendering>"
        )
    except Exception:  # noqa: BLE001 - a hostile event: name only the failure
        return f"<a log record could not be rendered: {type(exc).__name__}>"


_local_cache: tuple[str, str] = ("", "")


def _stamp(event: Mapping[str, Any], utc: bool) -> str:
    """``2024-01-15T10:30:45.123Z`` -> ``2024-01-15 10:30:45`` in local time (or UTC)."""
    global _local_cache
    ts = str(event.get("timestamp", ""))
    head = ts[:19]
    if utc or len(head) != 19:
        return head.replace("T", " ")
    cached = _local_cache
    if cached[0] != head:
        try:
            seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        except ValueError:
            return head.replace("T", " ")
        cached = (head, console_time(seconds))
        _local_cache = cached
    return cached[1]


_LIVE_CONSOLES: weakref.WeakSet[ConsoleSink] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for sink in list(_LIVE_CONSOLES):
        sink._lock = threading.RLock()  # another thread may have held it at fork time
        sink._busy = False
        sink._nested.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class ConsoleSink:
    """Writes rendered events to stderr (or stdout) synchronously.

    The stream is looked up at each write, so ``sys.stderr`` replaced by a test harness or
    ``contextlib.redirect_stderr`` is honored.
    """

    needs_bytes = False

    def __init__(
        self,
        level: int = 0,
        *,
        stream: str = "stderr",
        colors: bool = True,
        show_context: bool = False,
        utc: bool = False,
    ) -> None:
        self.level = level
        self.stream_name = stream
        self.colors = colors
        self.show_context = show_context
        self.utc = utc
        # Re-entrant: a signal handler that logs while this thread is mid-write must not
        # deadlock. Its record waits in ``_nested``; the outer call writes it right after.
        self._lock = threading.RLock()
        self._busy = False
        self._nested: deque[tuple[int, str]] = deque()
        self.written: dict[int, int] = {}
        self._renderers: dict[bool, ConsoleRenderer] = {}
        _LIVE_CONSOLES.add(self)

    def _stream(self) -> TextIO | None:
        return sys.stdout if self.stream_name == "stdout" else sys.stderr

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes | None) -> None:
        """Render and write one event."""
        stream = self._stream()
        if stream is None:
            return
        color = use_color(stream, self.colors)
        renderer = self._renderers.get(color)
        if renderer is None:
            renderer = ConsoleRenderer(color=color, show_context=self.show_context, utc=self.utc)
            self._renderers[color] = renderer
        text = render_or_fallback(renderer, event)
        with self._lock:
            if self._busy:  # a signal handler on this thread, inside our own write
                self._nested.append((levelno, text))
                return
            self._busy = True
            try:
                self._put(stream, levelno, text)
            finally:
                self._busy = False  # then look: a record queued after this writes itself
                if self._nested:
                    self._busy = True
                    self._leave(stream)

    def _put(self, stream: TextIO, levelno: int, text: str) -> None:
        """One record, one ``write`` call (so it lands whole); the caller holds the lock."""
        try:
            stream.write(text + "\n")
            stream.flush()
            self.written[levelno] = self.written.get(levelno, 0) + 1
        except Exception as exc:  # noqa: BLE001 - a closed or broken console never crashes us
            error_reporter.report("console", f"cannot write to the console: {exc!r}")

    def _leave(self, stream: TextIO) -> None:
        """Write what signal handlers logged during our write, then clear ``_busy``.

        Writing them from the handler itself would re-enter the stream's buffer (Python
        refuses: ``reentrant call``); the loop re-checks after clearing, so none is left.
        """
        nested = self._nested
        try:
            while True:
                while nested:
                    levelno, text = nested.popleft()
                    self._put(stream, levelno, text)
                self._busy = False
                if not nested:
                    return
                self._busy = True
        finally:
            self._busy = False

    def flush(self, timeout: float | None = None) -> bool:
        """Flush the console stream."""
        stream = self._stream()
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001
            return False
        return True

    def close(self, timeout: float | None = None) -> None:
        """Nothing to close: the console belongs to the application."""

    def stats(self) -> dict[str, Any]:
        """Records written per level."""
        with self._lock:
            return {"written": {level_name(k): v for k, v in sorted(self.written.items())}}


class TextLines:
    """Feeds a file sink console-format text instead of JSON (``structured_enabled: false``)."""

    needs_bytes = False

    def __init__(self, inner: Any, *, utc: bool = False) -> None:
        self.inner = inner
        self.level: int = inner.level
        self._renderer = ConsoleRenderer(color=False, show_context=True, utc=utc)

    def write(self, levelno: int, event: Mapping[str, Any], data: bytes | None) -> None:
        """Render the event as console text and pass it on as the line's bytes."""
        text = render_or_fallback(self._renderer, event).encode("utf-8", "backslashreplace")
        if len(text) > MAX_RECORD_BYTES:  # readers skip longer lines: cut it, visibly
            kept = text[: MAX_RECORD_BYTES - 64].decode("utf-8", "ignore").encode("utf-8")
            text = kept + b"...[truncated %d bytes]" % (len(text) - len(kept))
            error_reporter.report("oversized-record", _OVERSIZED)
        self.inner.write(levelno, event, text)

    def flush(self, timeout: float | None = None) -> bool:
        """Flush the inner sink."""
        return bool(self.inner.flush(timeout))

    def close(self, timeout: float | None = None) -> None:
        """Close the inner sink."""
        self.inner.close(timeout)

    def stats(self) -> dict[str, Any]:
        """The inner sink's counters."""
        return dict(self.inner.stats())
