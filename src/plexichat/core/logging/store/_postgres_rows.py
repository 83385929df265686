"""The rows the PostgreSQL store writes for a record: its columns, its search vector and
its field hashes.

``plexichat_fields`` holds one ``(h, ts, id)`` row per distinct scalar leaf of a record's
``context`` and ``metadata`` (not ``performance_data``: measurements, not names; its filters
read the rows, as its values are not searched either). ``h`` is :func:`field_hash` of the
leaf's dotted path and of its value as a ``where`` filter compares it (a string as itself,
another scalar as its JSON text as PostgreSQL prints it). A ``where`` filter then walks the
index ``(h, ts, id)`` newest first instead of reading every row (see ``_postgres_query``).

A record's search text becomes its ``tsvector`` here, in PostgreSQL's binary format, when
the result is certain to be what the server's parser makes of it (:func:`search_vector`):
the server then has no text to parse (``to_tsvector`` was a quarter of its work per record).
Rows are in COPY's binary format: ``raw`` as UTF-8 bytes, ``fields`` as jsonb's.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson

from ._postgres_query import clean, field_hash, fold
from .base import StoredRecord

FIELDS = ("context", "metadata", "performance_data")
SEARCH_CHARS = 100_000  # of a record's text indexed for search (a tsvector holds < 1 MB)
_GAP = " s.s "  # between message, logger and values: a token folded text never has, deleted
_GAP_WORD = _GAP.strip().encode()
_SCIENTIFIC = re.compile(rb"(?<![a-z0-9])([0-9]+e[0-9]+)(?=[a-z])")
"""A word that starts like a number in scientific notation and runs on into letters: the
server's parser splits it after the number (``1e5x`` -> ``1e5``, ``x``; ``8e61beab`` ->
``8e61``, ``beab``)."""
_MAYBE_SCIENTIFIC = re.compile(rb"[0-9]e[0-9]")  # a quick test before the exact one
_ASCII_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256)
)  # letters lower-cased, digits kept, anything else (``_`` too, as fold) a space
VECTOR_CHARS = 2000  # longer search texts: the server makes the tsvector (words < 2 KB)
VECTOR_WORDS = 255  # more words: the server makes the tsvector (256 positions per word)
_U16 = struct.Struct(">H").pack
_I32 = struct.Struct(">i").pack
_POSITION = [_U16(n) for n in range(VECTOR_WORDS + 1)]
_ONCE = [b"\x00" + _U16(1) + _U16(n) for n in range(VECTOR_WORDS + 1)]
"""A lexeme's end in a binary tsvector when it is at one position: NUL, 1, the position."""
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")  # \u0000, not \\u0000
_INT32, _INT64 = 1 << 31, 1 << 63  # the bounds of PostgreSQL's integer and bigint
_JSONB = b"\x01"  # jsonb's binary format: a version byte, then the JSON text


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


def stored_hashes(fields: Any) -> list[int]:
    """The field hashes of a stored record from its ``fields`` column (jsonb as psycopg
    loads it, or its text): what :func:`stage_row` made of the record's line."""
    doc = orjson.loads(fields) if isinstance(fields, str | bytes) else fields
    if not isinstance(doc, dict):
        return []
    return field_hashes({k: v for k, v in doc.items() if k != "performance_data"}) or []


def clamp(value: int, bits: int) -> int:
    return max(-(1 << (bits - 1)), min(value, (1 << (bits - 1)) - 1))


def search_text(message: str, logger: str, values: str) -> str:
    """The text a record is searched by: its message, logger and context/metadata values
    (``values``, joined by spaces), each folded, between gaps (a phrase never spans two)."""
    parts = (message, logger, values)
    return _GAP.join(fold(part[:SEARCH_CHARS]) for part in parts)[:SEARCH_CHARS]


def _words(text: str) -> list[bytes] | None:
    """The lower-cased words of folded ``text`` (a word like ``1e5x`` split after the
    number, as the parser splits it), or None when it does not fold to ASCII."""
    if text.isascii():
        data = text.encode().translate(_ASCII_FOLD)  # fold's work on ASCII, lower-cased
    elif (folded := fold(text)).isascii() and len(folded) <= VECTOR_CHARS:  # NFKD may grow it
        data = folded.lower().encode()
    else:
        return None
    if _MAYBE_SCIENTIFIC.search(data) is not None:
        data = _SCIENTIFIC.sub(rb"\1 ", data)
    return data.split()


def search_vector(message: str, logger: str, values: str) -> bytes | None:
    """The binary tsvector of ``ts_delete(to_tsvector('simple', search), 's.s')`` for the
    :func:`search_text` of these parts, or None when only the server can say.

    Folded ASCII text is letters, digits and spaces (and the gaps), which the default parser
    reads as one word per run of them, lower-cased, numbered from 1 (a gap takes a number
    too), except that a run starting like ``1e5`` and going on with letters is two words.
    Longer texts (PostgreSQL drops words over 2 KB and keeps 256 positions per word) and
    other scripts (the parser's notion of a letter and of lower case is the server's
    locale's) are left to the server. ``tests/store/test_postgres_vectors.py`` compares the
    two on generated text.
    """
    if len(message) + len(logger) + len(values) > VECTOR_CHARS:
        return None
    first, second, third = _words(message), _words(logger), _words(values)
    if first is None or second is None or third is None:
        return None
    words = [*first, _GAP_WORD, *second, _GAP_WORD, *third]
    if len(words) > VECTOR_WORDS:
        return None
    last = dict(zip(words, range(1, len(words) + 1), strict=False))  # each word's last place
    del last[_GAP_WORD]
    if len(last) + 2 == len(words):  # every word once: the usual case, without a loop
        lexemes = sorted(last)  # bytewise, as the server orders them
        ends = map(_ONCE.__getitem__, map(last.__getitem__, lexemes))
        return _I32(len(lexemes)) + b"".join(map(bytes.__add__, lexemes, ends))
    places: dict[bytes, list[int]] = {}
    for n, word in enumerate(words, 1):
        if word in places:
            places[word].append(n)
        else:
            places[word] = [n]
    del places[_GAP_WORD]
    out = [_I32(len(places))]
    for word in sorted(places):
        at = places[word]
        if len(at) == 1:
            out.append(word + _ONCE[at[0]])
        else:
            out.append(word + b"\x00" + _U16(len(at)) + b"".join(map(_POSITION.__getitem__, at)))
    return b"".join(out)


def _utf8(raw: bytes) -> bytes:
    """A line as PostgreSQL text takes it: valid UTF-8 (bad bytes replaced), no NUL."""
    if not raw.isascii():
        try:
            raw.decode()
        except UnicodeDecodeError:
            raw = raw.decode("utf-8", "replace").encode()
    return raw.replace(b"\x00", b"") if b"\x00" in raw else raw


def fields_of(doc: Any) -> tuple[dict[str, Any], str]:
    """A parsed record's ``fields`` (its non-empty ``context``, ``metadata`` and
    ``performance_data`` objects) and the values it is searched by (the scalar leaves of
    the first two, joined by spaces)."""
    fields: dict[str, Any] = {}
    words: list[str] = []
    for key in FIELDS if isinstance(doc, dict) else ():
        value = doc.get(key)
        if isinstance(value, dict) and value:
            fields[key] = value
            if key == "performance_data":
                continue
            try:
                words.append(" ".join(value.values()))  # the usual case: strings only
            except TypeError:
                if leaves := list(_leaves(value)):
                    words.append(" ".join(leaves))
    return fields, " ".join(words)


def stage_row(rec: StoredRecord) -> tuple[Any, ...]:
    """The row of a record in COPY's binary format: ``ts, levelno, level, category, logger,
    module, message, stream, seq, event_type, security_severity, raw, fields`` (the columns
    of ``_postgres_schema.COLS``), then its tsvector, or None and the search text the
    server makes it of, and its field hashes (None for none)."""
    fields, values = fields_of(rec.parsed())
    blob = None
    if fields:
        blob = orjson.dumps(fields)
        if b"\\u0000" in blob:  # jsonb cannot hold U+0000: drop it
            blob = _NUL_ESCAPE.sub(rb"\1", blob)
        blob = _JSONB + blob
    vector = search_vector(rec.message, rec.logger, values)
    search = search_text(rec.message, rec.logger, values) if vector is None else None
    fields.pop("performance_data", None)
    texts = map(clean, (rec.level, rec.category, rec.logger, rec.module, rec.message, rec.stream))
    event = None if rec.event_type is None else clean(rec.event_type)
    levelno = rec.levelno if -_INT32 <= rec.levelno < _INT32 else clamp(rec.levelno, 32)
    seq = rec.seq if -_INT64 <= rec.seq < _INT64 else clamp(rec.seq, 64)
    row = (rec.ts, levelno, *texts, seq, event, rec.security_severity, _utf8(rec.raw), blob)
    return (*row, vector, search, field_hashes(fields))
