"""Validation of the integration settings (``http_exclude_paths``, ``slow_query_threshold``).

Kept free of framework imports: the configuration model calls these without FastAPI, Flask or
SQLAlchemy installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .._config.units import parse_duration

__all__ = ["check_exclude_paths", "check_slow_query_threshold", "path_excluded"]

_ZERO = re.compile(r"^\s*0+(?:\.0*)?\s*(?:s|ms|sec|seconds?)?\s*$", re.IGNORECASE)
_PATH_HELP = 'paths start with "/"; a trailing "*" matches a prefix, e.g. ["/health", "/static/*"]'


def check_exclude_paths(value: Any) -> list[str]:
    """Validate excluded paths: a list, or comma-separated text as environment values are.

    Args:
        value: ``["/health", "/static/*"]`` or ``"/health,/static/*"``; None or ``""`` for none.

    Returns:
        The paths, stripped, duplicates removed, in the given order.

    Raises:
        ValueError: naming the entry that does not start with ``/`` and the allowed form.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: list[Any] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        raise ValueError(f"invalid http_exclude_paths {value!r}: expected a list; {_PATH_HELP}")
    out: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip().startswith("/"):
            raise ValueError(f"invalid http_exclude_paths entry {item!r}: {_PATH_HELP}")
        out.append(item.strip())
    return list(dict.fromkeys(out))


def check_slow_query_threshold(value: Any) -> float | None:
    """Validate the slow-query threshold: a duration, ``0`` (log every statement) or off.

    Args:
        value: seconds (``0.5``), a duration text (``"500 ms"``), ``0``, or ``"off"``/None.

    Returns:
        The threshold in seconds, or None when the slow-query log is off.

    Raises:
        ValueError: naming the bad value and the accepted forms.
    """
    if isinstance(value, int | float) and not isinstance(value, bool) and value == 0:
        return 0.0
    if isinstance(value, str) and _ZERO.match(value):
        return 0.0
    try:
        return parse_duration(value)
    except ValueError:
        raise ValueError(
            f"invalid slow_query_threshold {value!r}: use a duration such as 0.5 or"
            ' "500 ms", 0 to log every statement, or "off"'
        ) from None


def path_excluded(path: str, patterns: Iterable[str]) -> bool:
    """Whether ``path`` matches one of ``patterns`` (exact, or a prefix before a trailing ``*``).

    Example:
        >>> path_excluded("/static/app.js", ["/health", "/static/*"])
        True
    """
    for pattern in patterns:
        if pattern.endswith("*"):
            if path.startswith(pattern[:-1]):
                return True
        elif path == pattern:
            return True
    return False
