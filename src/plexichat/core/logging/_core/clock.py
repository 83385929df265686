"""Fast timestamp rendering: the second-resolution part is cached, only milliseconds vary."""

from __future__ import annotations

import time

__all__ = ["console_time", "iso_utc"]

_iso_cache: tuple[int, str] = (-1, "")
_iso_ms: tuple[int, str] = (-1, "")
_console_cache: tuple[int, str] = (-1, "")


def iso_utc(t: float) -> str:
    """Return ``t`` (seconds since the epoch) as UTC ISO-8601 with milliseconds and ``Z``.

    Example:
        >>> iso_utc(1705314645.123)
        '2024-01-15T10:30:45.123Z'
    """
    global _iso_cache, _iso_ms
    millis = int(t * 1000)
    last = _iso_ms
    if last[0] == millis:
        return last[1]
    sec, ms = divmod(millis, 1000)
    cached = _iso_cache
    if cached[0] != sec:
        cached = (sec, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(sec)))
        _iso_cache = cached
    text = f"{cached[1]}{ms:03d}Z"
    _iso_ms = (millis, text)
    return text


def console_time(t: float) -> str:
    """Return ``t`` as ``YYYY-MM-DD HH:MM:SS`` in local time, as the console shows it."""
    global _console_cache
    sec = int(t)
    cached = _console_cache
    if cached[0] != sec:
        cached = (sec, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(sec)))
        _console_cache = cached
    return cached[1]
