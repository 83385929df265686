"""Helpers the verifier uses to classify a problem it already found: reading ahead for a
moved record or the next checkpoint, and dating lines against their stream's start.

Nothing here decides *whether* there is a problem (that is :mod:`._verify`'s chain, tag and
signature checks); these only decide which class a problem belongs to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ._format import CONTROL_PREFIX, Tagger, control_fields, evolve, seq_of, split_line

__all__ = [
    "BACKDATE_SKEW",
    "Ahead",
    "backdate_floor",
    "checkpoint_ahead",
    "chain_to_checkpoint",
    "next_key_checkpoint",
    "parse_time",
    "record_time",
    "seq_ahead",
]

BACKDATE_SKEW = timedelta(minutes=10)
"""How much earlier than its stream's start (the ladder link's time) a record, header or
checkpoint may be dated: records created just before the writer started (queued while the
sink opened) are not backdating. Anything older is reported as BACKDATED."""

_TS_PREFIX = b'{"timestamp":"'
_TS_AT = len(_TS_PREFIX)

Ahead = tuple[int, bytes, bytes]
"""(lines ahead of the current one, body, tag) of a line found by reading ahead."""


def parse_time(text: object) -> datetime | None:
    """An ISO-8601 time (``...Z`` or with an offset) as an aware datetime, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def backdate_floor(start: str) -> tuple[bytes, datetime | None]:
    """For a stream started at ``start``: the earliest allowed time, and its seconds as bytes
    (``YYYY-MM-DDTHH:MM:SS``, UTC) for a cheap first comparison with record timestamps,
    which the writer writes in UTC (``...Z``); others are parsed and compared exactly."""
    begun = parse_time(start)
    if begun is None:
        return b"", None
    floor = begun - BACKDATE_SKEW
    return floor.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S").encode(), floor


def record_time(body: bytes) -> datetime | None:
    """The ``timestamp`` of a record body written by the writer (its first field)."""
    if not body.startswith(_TS_PREFIX):
        return None
    end = body.find(b'"', _TS_AT)
    return parse_time(body[_TS_AT:end].decode("ascii", "replace")) if end > 0 else None


def _parts(raw: bytes) -> tuple[bytes, bytes] | None:
    return split_line(raw) if raw.endswith(b"\n") else None


def seq_ahead(lines: Iterator[bytes], seq: int, bound: int) -> Ahead | None:
    """Read at most ``bound`` lines ahead for the record with sequence number ``seq``."""
    for offset, raw in enumerate(lines, 1):
        if offset > bound:
            return None
        parts = _parts(raw)
        if parts is not None and not raw.startswith(CONTROL_PREFIX) and seq_of(parts[0]) == seq:
            return offset, parts[0], parts[1]
    return None


def checkpoint_ahead(
    lines: Iterator[bytes], bound: int
) -> tuple[int, dict[str, Any], bytes, bytes] | None:
    """The next checkpoint line at most ``bound`` lines ahead: (offset, fields, body, tag)."""
    for offset, raw in enumerate(lines, 1):
        if offset > bound:
            return None
        if not raw.startswith(CONTROL_PREFIX):
            continue
        parts = _parts(raw)
        fields = control_fields(parts[0]) if parts is not None else None
        if parts is not None and fields is not None and fields["$integrity"] == "checkpoint":
            return offset, fields, parts[0], parts[1]
    return None


def chain_to_checkpoint(
    lines: Iterator[bytes], head: bytes, bound: int
) -> tuple[int, dict[str, Any], bytes] | None:
    """Chain the lines ahead from ``head`` up to the next checkpoint: (offset, its fields,
    the chain value before it); None when a line is damaged or no checkpoint comes."""
    for offset, raw in enumerate(lines, 1):
        parts = _parts(raw)
        if offset > bound or parts is None:
            return None
        if raw.startswith(CONTROL_PREFIX):
            fields = control_fields(parts[0])
            if fields is not None and fields["$integrity"] == "checkpoint":
                return offset, fields, head
        head = hashlib.sha256(head + parts[0]).digest()
    return None


def next_key_checkpoint(
    mac: bytes, epoch: int, fields: dict[str, Any], body: bytes, tag: bytes
) -> bool:
    """Whether a checkpoint is the writer's checkpoint of epoch ``epoch + 1``: its tag
    verifies under the next epoch's MAC key over the chain value it states itself (the
    checkpoint of epoch ``epoch`` before it, and with it the true chain value, is gone)."""
    head = fields.get("head")
    if fields.get("epoch") != epoch + 1 or not isinstance(head, str) or len(head) != 64:
        return False
    try:
        before = bytes.fromhex(head)
    except ValueError:
        return False
    return Tagger(evolve(mac, epoch))(hashlib.sha256(before + body).digest()) == tag
