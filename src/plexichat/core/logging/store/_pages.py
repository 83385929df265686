"""Pages and cursors: what one call of a store returns, and where the next page starts.

Cursors are opaque (base64 JSON of ``(ts, id, order)`` with a short check hash): a
hand-edited or forged one is refused as unknown, never misread. Re-exported by
:mod:`.base`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal

import orjson

from .search import QuerySyntaxError

if TYPE_CHECKING:
    from .base import LogQuery

__all__ = [
    "MAX_ROW_ID",
    "MAX_TAIL",
    "Page",
    "RawPage",
    "check_budget",
    "check_tail",
    "decode_cursor",
    "encode_cursor",
    "entry_page",
    "object_line",
    "raw_page",
]

MAX_TAIL = 10_000
MAX_ROW_ID = 2**63 - 1
"""The largest id (and seq) a database integer holds."""
_MAX_SEQ = MAX_ROW_ID


def check_tail(after_id: int, limit: int, before_id: int | None) -> tuple[int, int, int]:
    """``(after_id, limit, before_id)`` of a :meth:`LogStore.tail` call, checked; a missing
    ``before_id`` becomes the largest row id.

    Raises:
        ValueError: naming the bad argument and what is allowed.
    """
    for name, value in (("after_id", after_id), ("before_id", before_id)):
        if value is not None and (type(value) is not int or not 0 <= value <= _MAX_SEQ):
            raise ValueError(f"invalid {name} {value!r}: allowed are row ids 0..{_MAX_SEQ}")
    if type(limit) is not int or not 1 <= limit <= MAX_TAIL:
        raise ValueError(f"invalid tail limit {limit!r}: allowed are 1..{MAX_TAIL}")
    return after_id, limit, _MAX_SEQ if before_id is None else before_id


def check_budget(budget: float) -> float:
    """The ``budget`` of a :meth:`LogStore.try_query_raw` call, checked.

    Raises:
        ValueError: it is not a number of seconds > 0.
    """
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not budget > 0:
        raise ValueError(f"invalid budget {budget!r}: give seconds > 0, e.g. 0.002")
    return float(budget)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of results and the cursor of the next one (None at the end)."""

    entries: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RawPage:
    """One page of records as their stored JSON lines, never parsed (:meth:`LogStore.query_raw`).

    ``lines[i]`` is the stored line of the i-th record, a JSON object (see
    :func:`object_line`); ``sensitive`` is how many of them are security or audit records
    (category ``security``/``audit``, level SECURITY/AUDIT or a security event type: what
    ``LogQuery.exclude_security`` leaves out), read from the indexed columns;
    ``next_cursor`` is the cursor of the next page, None on the last.
    """

    lines: list[bytes]
    sensitive: int
    next_cursor: str | None


def entry_page(rows: Sequence[Sequence[Any]], query: LogQuery) -> Page:
    """The :class:`Page` of up to ``query.limit + 1`` rows ``(id, ts, line)`` in the query's
    order, each line parsed (a line that is not a JSON object becomes its ``message``)."""
    page, more = rows[: query.limit], len(rows) > query.limit
    cursor = encode_cursor(page[-1][1], page[-1][0], query.order) if more else None
    entries: list[dict[str, Any]] = []
    for _, _, raw in page:
        value = orjson.loads(raw)
        entries.append(value if isinstance(value, dict) else {"message": str(value)})
    return Page(entries=entries, next_cursor=cursor)


def raw_page(rows: Sequence[Sequence[Any]], query: LogQuery) -> RawPage:
    """The :class:`RawPage` of up to ``query.limit + 1`` rows ``(id, ts, line, sensitive)``
    in the query's order (the extra row only says that a next page exists).

    Per row, only C code runs (``map``): this is the API's hot path.
    """
    page, more = rows[: query.limit], len(rows) > query.limit
    cursor = encode_cursor(page[-1][1], page[-1][0], query.order) if more else None
    lines: list[bytes] = list(map(_LINE, page))
    if not all(map(bytes.startswith, lines, repeat(b"{"))) or not all(
        map(bytes.endswith, lines, repeat(b"}"))
    ):
        lines = [object_line(line) for line in lines]
    return RawPage(lines=lines, sensitive=sum(map(_FLAG, page)), next_cursor=cursor)


_LINE = itemgetter(2)
_FLAG = itemgetter(3)


def object_line(raw: bytes) -> bytes:
    """A stored line as one JSON object: the line itself when it is one (the indexer and
    the importer only store objects), else ``{"message": text}`` as :meth:`LogStore.query`
    returns such a line.

    The check is the line's first and last bytes, not a parse: the API sends a page of
    lines without parsing them.
    """
    if raw[:1] == b"{" and raw[-1:] == b"}":
        return raw
    body = raw.strip()
    if body[:1] == b"{" and body[-1:] == b"}":
        return raw
    try:
        value: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        value = body.decode("utf-8", "replace")
    return orjson.dumps({"message": str(value)})


CursorKind = Literal["page", "tail"]
"""``page``: a position in a query's order (SQLite: its time-ordered key; PostgreSQL: the
row id); ``tail``: a live-tail entry's position, in insertion order (the row id)."""
_PAGE_FORMAT = 2  # a page cursor of format 1 (no kind) pointed at an SQLite row id


def encode_cursor(ts: int, row_id: int, order: str, kind: CursorKind = "page") -> str:
    """An opaque cursor after the row ``(ts, row_id)``."""
    payload = orjson.dumps([ts, row_id, order, kind, _PAGE_FORMAT])
    sig = hashlib.sha256(b"plexichat-cursor" + payload).digest()[:6]
    return base64.urlsafe_b64encode(payload + sig).decode().rstrip("=")


def decode_cursor(cursor: str, order: str, kind: CursorKind = "page") -> tuple[int, int]:
    """The ``(ts, row_id)`` a cursor of ``kind`` points after.

    A live-tail cursor is not a page cursor (nor the reverse): the two count rows
    differently. A live-tail cursor made before cursors had a kind is still accepted as
    one (its meaning has not changed); such a page cursor is refused.

    Raises:
        QuerySyntaxError: the cursor was not made by :func:`encode_cursor` for this order
            and kind.
    """
    try:
        blob = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload, sig = blob[:-6], blob[-6:]
        if hashlib.sha256(b"plexichat-cursor" + payload).digest()[:6] != sig:
            raise ValueError("bad signature")
        fields = orjson.loads(payload)
        if len(fields) == 3 and kind == "tail":  # format 1
            fields = [*fields, "tail", _PAGE_FORMAT]
        ts, row_id, cur_order, cur_kind, version = fields
        if (
            cur_order != order
            or cur_kind != kind
            or version != _PAGE_FORMAT
            or type(ts) is not int  # bool is an int subclass: refuse it too
            or type(row_id) is not int
            or not -_MAX_SEQ <= ts <= _MAX_SEQ  # what a database integer holds
            or not 0 <= row_id <= _MAX_SEQ
        ):
            raise ValueError("wrong order, kind or version, or out of range")
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        what = "the next_cursor of the previous page" if kind == "page" else "an entry's cursor"
        raise QuerySyntaxError(
            f"unknown cursor {cursor[:40]!r}: pass {what} unchanged, with the same order"
        ) from None
    return ts, row_id
