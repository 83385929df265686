"""Validators of single settings shared by the configuration model: paths, intervals and
the per-level/category retention rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._core.levels import LEVEL_CHOICES
from .units import parse_duration

__all__ = ["DEFAULT_DIRECTORY", "blank_path", "check_retention_rules", "required_duration"]

DEFAULT_DIRECTORY = Path("logs")
"""The log directory when none is set (relative to the working directory at configuration)."""


def blank_path(value: Any, field: str | None) -> Any:
    """An empty or blank path means the field's default, never the working directory.

    ``PLEXICHAT_LOG_DIRECTORY=""`` (an unset variable passed through a template) would
    otherwise be ``Path("")``, the current directory: segment files and the integrity keys,
    the auditor key included, would land wherever the process was started.
    """
    if isinstance(value, str) and not value.strip():
        return DEFAULT_DIRECTORY if field == "directory" else None
    return value


def required_duration(value: Any) -> float:
    """A duration that cannot be turned off: ``"100 ms"``, ``"30s"``, ``"1 minute"`` or a
    number of seconds (the field's own bounds are checked afterwards).

    Raises:
        ValueError: not a duration, or "off".
    """
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(str(exc).replace(' (use "off" to disable)', "")) from None
    if seconds is None:
        raise ValueError(
            f"invalid duration {value!r}: this interval cannot be turned off; "
            'expected a duration like "100 ms", "30s", "1 minute" or a number of seconds'
        )
    return seconds


_RULE_KEY_HELP = (
    f"use a level name ({', '.join(LEVEL_CHOICES)}) or category:NAME (e.g. category:security)"
)


def check_retention_rules(value: Any) -> dict[str, str]:
    """Validate per-level/category retention rules; return them with normalized keys.

    Keys are a level name (``"DEBUG"``) or ``"category:NAME"`` (the name lower-cased); values
    are durations (``"3 days"``, ``"7 years"``, a number of seconds, or ``"off"``: kept
    forever), kept as given.

    Raises:
        ValueError: naming the bad key or value and what is allowed.
    """
    if not isinstance(value, dict):
        raise ValueError(
            f"invalid retention_rules {value!r}: expected a mapping of level or category:NAME "
            'to a duration, e.g. {"DEBUG": "3 days", "category:security": "1 year"}'
        )
    out: dict[str, str] = {}
    for key, duration in value.items():
        text = key.strip() if isinstance(key, str) else ""
        kind, sep, name = text.partition(":")
        if sep and kind.strip().lower() == "category" and name.strip():
            norm = f"category:{name.strip().lower()}"
        elif not sep and text.upper() in LEVEL_CHOICES:
            norm = text.upper()
        else:
            raise ValueError(f"invalid retention rule key {key!r}: {_RULE_KEY_HELP}")
        try:
            parse_duration(duration)
        except ValueError as exc:
            raise ValueError(f"retention rule {key!r}: {exc}") from None
        if norm in out:
            raise ValueError(f"retention rule {key!r} repeats {norm!r}: give each key once")
        out[norm] = "off" if duration is None or duration is False else str(duration).strip()
    return out
