"""One live-tail client's queue: what the hub offers it, bounded by count and by size.

A :class:`Subscriber` keeps only the entry text of each queued record (the hub's parsed
record is not kept alive by a slow client), at most ``capacity`` entries and
:data:`SUBSCRIBER_BYTES` characters of entry text: past either, records are dropped and
counted, and the client gets ``{"type": "dropped", "count": N}`` before the next entry.
Control replies (acks, errors) are bounded too (:data:`CONTROL_LIMIT` messages,
:data:`CONTROL_BYTES` characters): the connection reads no further client messages while
they are full (:meth:`Subscriber.room`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import orjson

from .matcher import Matcher, RecordView, Row

__all__ = ["CONTROL_BYTES", "CONTROL_LIMIT", "SUBSCRIBER_BYTES", "Subscriber"]

SUBSCRIBER_BYTES = 8 << 20
"""Characters (about bytes) of entry text a client may have queued; past it, drops."""
CONTROL_LIMIT = 64
"""Replies (acks, errors) a client may have unsent before its messages are read no further."""
CONTROL_BYTES = 256 << 10
"""Characters of unsent replies past which the client's messages are read no further."""


class Subscriber:
    """One client's filter and bounded queue; the connection's sender drains it.

    Args:
        matcher: the client's filter.
        sees_sensitive: whether security and audit records may be sent (role security+).
        capacity: entries queued before further ones are dropped and counted.
        max_bytes: characters of entry text queued before further entries are dropped
            (an entry is always queued when the queue is empty).
    """

    def __init__(
        self,
        matcher: Matcher,
        *,
        sees_sensitive: bool,
        capacity: int,
        max_bytes: int | None = None,
    ) -> None:
        self.matcher = matcher
        self.sees_sensitive = sees_sensitive
        self.capacity = capacity
        self.max_bytes = SUBSCRIBER_BYTES if max_bytes is None else max_bytes
        self.dropped = 0
        """Entries dropped so far because the queue was full."""
        self.closed = False
        self.close_code = 1000
        self.close_reason = ""
        self.recheck = False
        """Set by :meth:`revalidate`: the connection re-checks its token at once."""
        self._entries: deque[tuple[str, int]] = deque()  # (entry text, drops just before it)
        self._bytes = 0
        self._control: deque[str] = deque()
        self._control_bytes = 0
        self._pending_drops = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()

    @property
    def queued_bytes(self) -> int:
        """Characters of entry text queued now."""
        return self._bytes

    @property
    def control_bytes(self) -> int:
        """Characters of control replies queued now."""
        return self._control_bytes

    def deliver(self, row: Row) -> None:
        """Queue ``row`` when this client may see it and its filter matches (hub side)."""
        if self.closed or (row.sensitive and not self.sees_sensitive):
            return
        if not self.matcher(row.view):
            return
        text = row.text
        if len(self._entries) >= self.capacity or (
            self._entries and self._bytes + len(text) > self.max_bytes
        ):
            self._pending_drops += 1
            self.dropped += 1
            return
        self._entries.append((text, self._pending_drops))
        self._bytes += len(text)
        self._pending_drops = 0
        self._ready.set()

    def send(self, message: dict[str, Any]) -> None:
        """Queue a control message (ack, error, notice): sent before queued entries."""
        text = orjson.dumps(message).decode()
        self._control.append(text)
        self._control_bytes += len(text)
        if self.replies_full:
            self._room.clear()
        self._ready.set()

    @property
    def replies_full(self) -> bool:
        """Whether :data:`CONTROL_LIMIT` replies, or :data:`CONTROL_BYTES` of them, wait."""
        return len(self._control) >= CONTROL_LIMIT or self._control_bytes >= CONTROL_BYTES

    async def room(self) -> None:
        """Wait until the unsent replies are below their limits (or the client closed)."""
        while self.replies_full and not self.closed:
            await self._room.wait()

    def revalidate(self) -> None:
        """Ask the connection to re-check its token now (the token file changed)."""
        self.recheck = True
        self._ready.set()

    def set_matcher(self, matcher: Matcher) -> None:
        """Replace the filter; queued entries it no longer matches are removed (their
        place in the drop counts is kept). Queued entries are matched as their entry text
        says (a record cut to its top-level fields is matched on those)."""
        self.matcher = matcher
        kept: deque[tuple[str, int]] = deque()
        carry = 0
        size = 0
        for text, drops in self._entries:
            if _matches(matcher, text):
                kept.append((text, drops + carry))
                size += len(text)
                carry = 0
            else:
                carry += drops
        self._entries = kept
        self._bytes = size
        self._pending_drops += carry

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Stop: the sender ends and the connection closes with ``code`` (the first
        close wins)."""
        if not self.closed:
            self.closed, self.close_code, self.close_reason = True, code, reason
        self._ready.set()
        self._room.set()

    async def next(self, timeout: float) -> str | None:
        """The next message: control messages first, then a ``dropped`` notice before the
        entry that follows the drops, then entries. None when ``timeout`` passed, when
        closed, or when :attr:`recheck` is set.
        """
        while not self.closed and not self.recheck:
            if self._control:
                text = self._control.popleft()
                self._control_bytes -= len(text)
                if not self.replies_full:
                    self._room.set()
                return text
            if self._entries:
                text, drops = self._entries[0]
                if drops:
                    self._entries[0] = (text, 0)
                    return _dropped(drops)
                self._entries.popleft()
                self._bytes -= len(text)
                return text
            if self._pending_drops:
                count, self._pending_drops = self._pending_drops, 0
                return _dropped(count)
            self._ready.clear()
            timer = asyncio.get_running_loop().call_later(max(timeout, 0.0), self._ready.set)
            try:  # a plain wait: the sender runs right after the hub's next yield
                await self._ready.wait()
            finally:
                timer.cancel()
            if not (self._control or self._entries or self._pending_drops):
                return None
        return None


def _matches(matcher: Matcher, text: str) -> bool:
    """Whether a queued entry matches ``matcher`` (read back from its entry text)."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(doc, dict):
        return True
    doc.pop("type", None)
    doc.pop("cursor", None)
    doc.pop("truncated", None)
    return matcher(RecordView(doc))


def _dropped(count: int) -> str:
    return f'{{"type":"dropped","count":{count}}}'
