"""Metric names and tags: validation and the canonical (sorted) form of a tag set."""

from __future__ import annotations

import re
from collections.abc import Mapping

from .model import MetricError

__all__ = ["RawKey", "TagKey", "normalize_tags", "validate_name"]

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
        out.append((k, v if isinstance(v, str) else str(v)))
    out.sort()
    return tuple(out)
