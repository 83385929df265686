"""The rows the PostgreSQL store stages for a record: its columns, and its field hashes.

``plexichat_fields`` holds one ``(h, ts, id)`` row per distinct scalar leaf of a record's
``context`` and ``metadata`` (not ``performance_data``: measurements, not names; its filters
read the rows, as its values are not searched either). ``h`` is :func:`field_hash` of the
leaf's dotted path and of its value as a ``where`` filter compares it (a string as itself,
another scalar as its JSON text as PostgreSQL prints it). A ``where`` filter then walks the
index ``(h, ts, id)`` newest first instead of reading every row (see ``_postgres_query``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson

from ._postgres_query import clean, field_hash, fold
from .base import StoredRecord

FIELDS = ("context", "metadata", "performance_data")
SEARCH_CHARS = 100_000  # of a record's text indexed for search (a tsvector holds < 1 MB)
_GAP = " s.s "  # between message, logger and values: a token folded text never has, deleted
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")  # \u0000, not \\u0000


def _leaves(value: object) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict | list):
            stack.extend(reversed(item.values() if isinstance(item, dict) else item))
        elif isinstance(item, str):
            yield item
        elif isinstance(item, int | float) and not isinstance(item, bool):
            yield str(item)


def scalar_text(value: object) -> str | None:
    """A scalar as ``(fields #> path)::text`` prints it (a string: itself), NUL removed;
    None for an object or an array (never hashed: such filters read the rows)."""
    if isinstance(value, str):
        return clean(value)
    if value is None or isinstance(value, bool):
        return orjson.dumps(value).decode()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):  # jsonb keeps the number as numeric, printed plainly
        if not math.isfinite(value):
            return "null"  # orjson writes NaN and infinities as null
        text = format(Decimal(orjson.dumps(value).decode()), "f")
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text
    return None


def field_hashes(fields: dict[str, Any]) -> list[int] | None:
    """The distinct hashes of a record's scalar leaves (arrays are not walked); None for none."""
    out: set[int] = set()
    stack: list[tuple[str, Any]] = [(clean(key), value) for key, value in fields.items()]
    while stack:
        path, value = stack.pop()
        if not isinstance(value, dict):
            if (text := scalar_text(value)) is not None and "." in path:
                out.add(field_hash(path, text))
            continue
        for key, item in value.items():
            if isinstance(item, str) and "\x00" not in key and "\x00" not in item:
                out.add(field_hash(f"{path}.{key}", item))  # the usual leaf, made quickly
            else:
                stack.append((f"{path}.{clean(key)}", item))
    return list(out) if out else None


def clamp(value: int, bits: int) -> int:
    return max(-(1 << (bits - 1)), min(value, (1 << (bits - 1)) - 1))


def stage_row(rec: StoredRecord) -> tuple[Any, ...]:
    """The staging row of a record: its columns, ``fields`` JSON, search text and field
    hashes."""
    doc = rec.parsed()
    fields: dict[str, Any] = {}
    words: list[str] = []
    for key in FIELDS if isinstance(doc, dict) else ():
        value = doc.get(key)
        if isinstance(value, dict) and value:
            fields[key] = value
            words.extend(_leaves(value) if key != "performance_data" else ())
    blob = orjson.dumps(fields).decode() if fields else None
    if blob is not None and "\\u0000" in blob:  # jsonb cannot hold U+0000: drop it
        blob = _NUL_ESCAPE.sub(r"\1", blob)
    texts = map(clean, (rec.level, rec.category, rec.logger, rec.module, rec.message, rec.stream))
    event = None if rec.event_type is None else clean(rec.event_type)
    raw = clean(rec.raw.decode("utf-8", "replace"))
    parts = (rec.message, rec.logger, " ".join(words))  # a phrase never spans two of them
    search = _GAP.join(fold(part[:SEARCH_CHARS]) for part in parts)[:SEARCH_CHARS]
    row = (rec.ts, clamp(rec.levelno, 32), *texts, clamp(rec.seq, 64), event)
    named = {key: value for key, value in fields.items() if key != "performance_data"}
    return (*row, rec.security_severity, raw, blob, search, field_hashes(named))
