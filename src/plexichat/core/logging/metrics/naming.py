"""Metric names and tags: validation and the canonical (sorted) form of a tag set."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .model import MetricError

__all__ = [
    "MAX_TAG_VALUE_LENGTH",
    "RawKey",
    "TagKey",
    "exposed_names",
    "normalize_tags",
    "prometheus_name",
    "validate_name",
]

MAX_TAG_VALUE_LENGTH = 200
"""The longest tag value (in characters) accepted."""

TagKey = tuple[tuple[str, str], ...]
"""A tag set in canonical form: sorted (name, text) pairs."""
RawKey = tuple[tuple[str, object], ...]
"""A tag set as the caller passed it (for the lookup cache)."""

_NAME = re.compile(r"^[A-Za-z_:][A-Za-z0-9_.:]{0,199}$")
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_TAG_VALUE_TYPES = (str, int, float)
_names: set[str] = set()


def validate_name(name: object) -> str:
    """Return ``name`` if it is a valid metric name, else raise :class:`MetricError`.

    Valid: letters, digits, ``_``, ``.`` and ``:``, not starting with a digit or dot, at most
    200 characters (``"http.request_duration"``).
    """
    if name.__class__ is str and name in _names:
        return name
    if not isinstance(name, str) or not _NAME.match(name):
        raise MetricError(
            f"invalid metric name {name!r}: use letters, digits, '_', '.' and ':', not "
            'starting with a digit or dot, at most 200 characters (e.g. "db.query_time")'
        )
    if len(_names) < 10_000:
        _names.add(name)
    return name


def normalize_tags(tags: Mapping[str, object] | None) -> TagKey:
    """Tags as a sorted tuple of (name, text) pairs; raise :class:`MetricError` if invalid.

    Tag names follow Prometheus label rules (letters, digits, ``_``); values are strings or
    numbers (numbers are turned into text).
    """
    if not tags:
        return ()
    if not isinstance(tags, Mapping):
        raise MetricError(
            f"invalid tags {tags!r}: pass a mapping of tag name to value, e.g. "
            '{"endpoint": "/api/users"}'
        )
    out: list[tuple[str, str]] = []
    for k, v in tags.items():
        if not isinstance(k, str) or not _LABEL.match(k) or k.startswith("__"):
            raise MetricError(
                f"invalid tag name {k!r}: use letters, digits and '_', not starting with a "
                'digit or "__" (e.g. "endpoint")'
            )
        if isinstance(v, bool) or not isinstance(v, _TAG_VALUE_TYPES):
            raise MetricError(
                f"invalid value {v!r} for tag {k!r}: use a string or a number "
                '(e.g. {"status": "200"})'
            )
        text = v if isinstance(v, str) else str(v)
        if len(text) > MAX_TAG_VALUE_LENGTH:
            raise MetricError(
                f"invalid value for tag {k!r} ({len(text)} characters, starting "
                f"{text[:40]!r}): at most {MAX_TAG_VALUE_LENGTH} characters; keep long or "
                "unbounded text (messages, raw URLs, ids) out of tags"
            )
        out.append((k, text))
    out.sort()
    return tuple(out)


_SCALE = {
    "ms": ("seconds", 1e-3),
    "milliseconds": ("seconds", 1e-3),
    "us": ("seconds", 1e-6),
    "microseconds": ("seconds", 1e-6),
    "s": ("seconds", 1.0),
    "second": ("seconds", 1.0),
    "sec": ("seconds", 1.0),
    "byte": ("bytes", 1.0),
    "%": ("percent", 1.0),
    "count": ("", 1.0),
    "": ("", 1.0),
}
_BAD = re.compile(r"[^a-zA-Z0-9_]")


def prometheus_name(name: str, unit: str) -> tuple[str, float]:
    """The Prometheus metric name of ``name`` in ``unit`` and the factor to base units.

    Example:
        >>> prometheus_name("db.query_time", "ms")
        ('db_query_time_seconds', 0.001)
    """
    base, scale = _SCALE.get(unit.lower(), (unit.lower(), 1.0))
    out = _BAD.sub("_", name)
    suffix = _BAD.sub("_", base).strip("_")
    if suffix and not out.endswith("_" + suffix):
        out = f"{out}_{suffix}"
    if out[0].isdigit():  # pragma: no cover - registry names never start with a digit
        out = "_" + out
    return out, scale


def exposed_names(name: str, kind: str, unit: str) -> tuple[str, ...]:
    """Every name the metric ``name`` takes in the Prometheus exposition: its family name and
    its sample names (a counter ``x_total``; a summary ``x``, ``x_sum`` and ``x_count``)."""
    base = prometheus_name(name, unit)[0]
    if kind == "counter":
        base = base.removesuffix("_total")
        return (base, f"{base}_total")
    if kind == "gauge":
        return (base,)
    return (base, f"{base}_sum", f"{base}_count")
