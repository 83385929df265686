"""Parsing of human sizes (``"100 MB"``) and durations (``"1 day"``) in configuration."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

__all__ = ["format_duration", "format_size", "parse_duration", "parse_size"]

_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}  # fmt: skip
_DURATION_UNITS: dict[str, float] = {
    "ms": 0.001, "msec": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "y": 31536000, "year": 31536000, "years": 31536000,
}  # fmt: skip
_WORDS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0}
_OFF = {"none", "off", "never", "false", "0", "disabled", ""}
_NUMBER_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
SIZE_HELP = 'a size like "100 MB", "512 KiB" or a number of bytes (or "off")'
DURATION_HELP = (
    'a duration like "1 day", "12 hours", "30 min", "90s" or a number of seconds (or "off")'
)


def parse_size(value: object) -> int | None:
    """Return a size in bytes, or None when the value turns the feature off.

    ``False`` also means off: YAML reads an unquoted ``off`` as ``False``.

    Raises:
        ValueError: naming the bad value and the accepted forms.
    """
    if value is None or value is False:
        return None
    if isinstance(value, bool):
        raise ValueError(f"invalid size {value!r}: expected {SIZE_HELP}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or int(value) <= 0:
            raise ValueError(
                f'invalid size {value!r}: must be at least 1 byte (use "off" to disable)'
            )
        return int(value)
    if isinstance(value, str):
        if value.strip().lower() in _OFF:
            return None
        m = _NUMBER_UNIT.match(value)
        if m and m.group(2).lower() in _SIZE_UNITS:
            size = int(Fraction(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
            if size > 0:
                return size
    raise ValueError(f"invalid size {value!r}: expected {SIZE_HELP}")


def parse_duration(value: object) -> float | None:
    """Return a duration in seconds, or None when the value turns the feature off.

    ``False`` also means off: YAML reads an unquoted ``off`` as ``False``.

    Raises:
        ValueError: naming the bad value and the accepted forms.
    """
    if value is None or value is False:
        return None
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: expected {DURATION_HELP}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value <= 0:
            raise ValueError(
                f'invalid duration {value!r}: must be a finite number > 0 (use "off" to disable)'
            )
        return float(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _OFF:
            return None
        if text in _WORDS:
            return _WORDS[text]
        m = _NUMBER_UNIT.match(text)
        if m and m.group(2) in _DURATION_UNITS:
            seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
            if 0 < seconds < math.inf:
                return seconds
    raise ValueError(f"invalid duration {value!r}: expected {DURATION_HELP}")


def _plain(seconds: float) -> str:
    """A number without exponent or trailing zeros: ``1.5``, ``90``, ``0.0000001``."""
    text = format(Decimal(repr(float(seconds))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_size(size: int | None) -> str:
    """``100000000`` -> ``"100 MB"`` style text for display; ``parse_size`` reads it back."""
    if size is None:
        return "off"
    for unit, digits in (("TB", 12), ("GB", 9), ("MB", 6), ("KB", 3)):
        whole, frac = divmod(size, 10**digits)
        if whole and frac % 10 ** (digits - 3) == 0:
            decimals = str(frac).rjust(digits, "0")[:3].rstrip("0")
            return f"{whole}.{decimals} {unit}" if decimals else f"{whole} {unit}"
    return f"{size} B"


def format_duration(seconds: float | None) -> str:
    """``86400`` -> ``"1 day"`` style text for display; ``parse_duration`` reads it back."""
    if seconds is None:
        return "off"
    for unit, factor in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= factor and seconds % factor == 0:
            n = int(seconds // factor)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{_plain(seconds)} seconds"
