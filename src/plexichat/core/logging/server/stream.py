"""The live tail: ``WebSocket /api/v2/logs/stream``.

Protocol (JSON text frames). The filter comes from the query string
(``?level=INFO&category=security&context.user_id=u1``, the names of the REST routes: see
:func:`~.params.filter_to_query`), the token from ``Authorization: Bearer``, the
subprotocols ``["plexichat-logs", "bearer.<token>"]`` (browsers: ``new WebSocket(url,
["plexichat-logs", "bearer." + token])``) or ``?token=``.

Server to client:

- ``{"type": "subscribed", "filter": {...}, "role": ..., "heartbeat_seconds": N}`` first;
- ``{"type": "entry", "cursor": "...", ...the record's fields...}`` per matching record;
- ``{"type": "dropped", "count": N}`` before the next entry when N were not sent (the
  client was too slow, or a resume went past :data:`MAX_BACKFILL`);
- ``{"type": "filter_updated", "filter": {...}}``, ``{"type": "pong"}``,
  ``{"type": "error", "field": ..., "error": ...}`` in reply to the client;
- ``{"type": "heartbeat", "time": "<ISO-8601>"}`` every ``heartbeat_seconds``.

Client to server: ``{"type": "update_filter", "filter": {...}}`` (the whole new filter),
``{"type": "ping"}``. ``?after=<cursor>`` resumes after an entry's cursor: the missed
records first, then live ones, none twice. Close codes: 4401 no or bad token, 4429 rate
limited, 4400 bad filter or cursor (the reason names it), 1009 a frame over 64 KiB, 1001
server shutting down. The viewer role never receives security or audit records; for the
security and admin roles each connection and filter change is written to the audit trail.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from .._core.clock import iso_utc
from .._core.errors import error_reporter
from ..store.base import decode_cursor
from ..store.search import QuerySyntaxError
from .auth import Principal
from .deps import accepted_subprotocol, audit, authenticate_websocket, get_state
from .hub import TAIL_BATCH, Hub, Position, get_hub
from .matcher import Matcher, Row, fetch_rows, parse_filter
from .params import FilterError
from .state import ServerState

__all__ = ["MAX_BACKFILL", "MAX_FRAME_BYTES", "Subscriber", "router", "stream"]

router = APIRouter()
"""The ``/stream`` WebSocket route (included under ``/api/v2/logs``)."""

MAX_FRAME_BYTES = 64 * 1024
"""A client frame longer than this closes the connection (1009)."""
MAX_BACKFILL = 10_000
"""Records a resume (``?after=``) sends at most; the rest are reported as dropped."""
MAX_BACKFILL_SCAN = 1_000_000
"""Rows a resume reads at most; past it the remaining ids are counted as dropped."""
CONTROL_LIMIT = 64
"""Replies (acks, errors) a client may have unsent before its messages are read no further."""
_NOT_FILTER = ("token", "after")

_REASON_BYTES = 123  # the most a close frame's reason holds


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    """Stream new log records matching the client's filter (see the module docs)."""
    state = get_state(ws)
    await ws.accept(subprotocol=accepted_subprotocol(ws))
    caller = await asyncio.to_thread(authenticate_websocket, state, ws)
    if isinstance(caller, tuple):
        await _refuse(ws, *caller)
        return
    sees_sensitive = caller.allows("security")
    try:
        matcher, normalized = parse_filter(_query_filter(ws), sees_sensitive)
        after = ws.query_params.get("after")
        resume = None if after is None else decode_cursor(after, "asc")[1]
    except FilterError as exc:
        await _refuse(ws, 4400, str(exc), exc.field)
        return
    except QuerySyntaxError as exc:
        await _refuse(ws, 4400, f"after: {exc}", "after")
        return
    try:
        hub = await get_hub(state)
    except Exception as exc:  # noqa: BLE001 - e.g. the store is unreachable
        error_reporter.report("live-tail-start", f"live tail could not start: {exc!r}")
        await _refuse(ws, 1011, f"the live tail is unavailable: {exc}")
        return
    subscriber = Subscriber(
        matcher, sees_sensitive=sees_sensitive, capacity=state.settings.client_queue
    )
    position = hub.subscribe(subscriber)
    try:
        await _Connection(ws, state, hub, caller, subscriber).run(normalized, resume, position)
    except Exception as exc:  # noqa: BLE001 - one client's failure never reaches the server
        if not _gone(exc):
            error_reporter.report("live-tail-client", f"live tail client failed: {exc!r}")
            await _refuse(ws, 1011, "the live tail failed; reconnect with ?after=<cursor>")
    finally:
        hub.unsubscribe(subscriber)


def _query_filter(ws: WebSocket) -> dict[str, object]:
    """The filter in the query string (a repeated key gives a list)."""
    out: dict[str, object] = {}
    for key, value in ws.query_params.multi_items():
        if key in _NOT_FILTER:
            continue
        old = out.get(key)
        out[key] = value if old is None else [*(old if isinstance(old, list) else [old]), value]
    return out


def _reason(text: str) -> str:
    """``text`` cut to fit a close frame (123 bytes of UTF-8)."""
    data = text.encode(errors="replace")
    if len(data) <= _REASON_BYTES:
        return text
    return data[: _REASON_BYTES - 3].decode(errors="ignore") + "..."


async def _refuse(ws: WebSocket, code: int, reason: str, field: str | None = None) -> None:
    """Send the whole reason as an error message, then close with ``code``."""
    message: dict[str, Any] = {"type": "error", "error": reason, "code": code}
    if field is not None:
        message["field"] = field
    try:
        await ws.send_text(orjson.dumps(message).decode())
        await ws.close(code, _reason(reason))
    except Exception:  # noqa: BLE001 - the client left already
        return


class _Connection:
    """One subscribed client: backfill, then a sender and a receiver until either ends."""

    def __init__(
        self, ws: WebSocket, state: ServerState, hub: Hub, caller: Principal, sub: Subscriber
    ) -> None:
        self.ws = ws
        self.state = state
        self.hub = hub
        self.caller = caller
        self.sub = sub

    async def run(self, normalized: dict[str, Any], resume: int | None, at: Position) -> None:
        await self._audit(normalized)
        settings = self.state.settings
        await self._send(
            {
                "type": "subscribed",
                "filter": normalized,
                "role": self.caller.role,
                "heartbeat_seconds": settings.heartbeat_seconds,
            }
        )
        if resume is not None:
            await self._backfill(resume, at)
        tasks = {
            _task(self._send_loop(settings.heartbeat_seconds)),
            _task(self._receive_loop()),
        }
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            failure = task.exception()
            if failure is not None and not _gone(failure):
                error_reporter.report("live-tail-client", f"live tail client failed: {failure!r}")
        if self.sub.closed and self.ws.application_state == WebSocketState.CONNECTED:
            # the hub stopped (shutdown) or this client's filter failed
            reason = "the log server is shutting down" if self.sub.close_code == 1001 else ""
            try:
                await self.ws.close(self.sub.close_code, reason)
            except Exception:  # noqa: BLE001 - gone already
                return

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(orjson.dumps(message).decode())

    async def _audit(self, normalized: dict[str, Any]) -> None:
        """One audit record per connection and per filter change (roles security+)."""
        if self.caller.allows("security"):
            await asyncio.to_thread(
                audit, self.caller, "tail", "logs/stream", self.ws, filter=normalized
            )

    async def _backfill(self, after_id: int, at: Position) -> None:
        """Send the records after ``after_id`` the hub fanned out before this client
        joined (those it fans out later are queued already): none missed, none twice."""
        sub, store = self.sub, self.hub.store
        sent = skipped = scanned = 0
        approximate = False
        while after_id < at.high and not sub.closed:
            if scanned >= MAX_BACKFILL_SCAN:
                skipped += at.high - after_id  # at most this many ids are left
                approximate = True
                break
            rows = await asyncio.to_thread(fetch_rows, store(), after_id, TAIL_BATCH, at.high + 1)
            scanned += len(rows)
            for row in rows:
                if not at.delivered(row.id) or (row.sensitive and not sub.sees_sensitive):
                    continue
                if not sub.matcher(row.view):
                    continue
                if sent < MAX_BACKFILL:
                    await self.ws.send_text(row.text)
                    sent += 1
                else:
                    skipped += 1
            if len(rows) < TAIL_BATCH:
                break
            after_id = rows[-1].id
        if skipped:
            notice: dict[str, Any] = {"type": "dropped", "count": skipped}
            if approximate:
                notice["approximate"] = True
            await self._send(notice)

    async def _send_loop(self, heartbeat: float) -> None:
        sub, ws = self.sub, self.ws
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + heartbeat
        while not sub.closed:
            now = loop.time()
            if now >= next_beat:
                beat = {"type": "heartbeat", "time": iso_utc(time.time())}
                await ws.send_text(orjson.dumps(beat).decode())
                next_beat = now + heartbeat
                continue
            message = await sub.next(next_beat - now)
            if message is not None:
                await ws.send_text(message)

    async def _receive_loop(self) -> None:
        while not self.sub.closed:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > MAX_FRAME_BYTES:
                self.sub.close(1009)
                await self.ws.close(
                    1009, f"message of {size} bytes: the limit is {MAX_FRAME_BYTES}"
                )
                return
            if text is None:
                self._error("message", "binary frames are not accepted: send JSON text")
            else:
                await self._handle(text)
            while self.sub.replies_full and not self.sub.closed:  # read no more for now
                await asyncio.sleep(0.05)

    def _error(self, field: str, error: str) -> None:
        self.sub.send({"type": "error", "field": field, "error": error})

    async def _handle(self, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            self._error("message", f"invalid JSON ({exc}): send a JSON object with a type")
            return
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "ping":
            self.sub.send({"type": "pong"})
        elif kind == "update_filter":
            await self._update_filter(message.get("filter"))
        elif isinstance(message, dict):
            self._error(
                "type", f"unknown message type {kind!r}: allowed are 'update_filter', 'ping'"
            )
        else:
            self._error("message", f"invalid message {text[:80]!r}: send a JSON object")

    async def _update_filter(self, raw: object) -> None:
        if not isinstance(raw, dict):
            self._error("filter", f"invalid filter {str(raw)[:80]!r}: give an object of fields")
            return
        try:
            matcher, normalized = parse_filter(raw, self.sub.sees_sensitive)
        except FilterError as exc:
            self._error(exc.field, exc.message)
            return
        wait = self.state.limiter.check(self.caller.token_id)
        if wait > 0:
            self._error(
                "filter",
                f"rate limit of {self.state.limiter.per_minute} requests per minute exceeded: "
                f"retry after {wait:.0f} s; the previous filter stays",
            )
            return
        self.sub.set_matcher(matcher)
        self.sub.send({"type": "filter_updated", "filter": normalized})
        await self._audit(normalized)


class Subscriber:
    """One client's filter and bounded queue; the connection's sender drains it.

    Args:
        matcher: the client's filter.
        sees_sensitive: whether security and audit records may be sent (role security+).
        capacity: entries queued before further ones are dropped and counted.
    """

    def __init__(self, matcher: Matcher, *, sees_sensitive: bool, capacity: int) -> None:
        self.matcher = matcher
        self.sees_sensitive = sees_sensitive
        self.capacity = capacity
        self.dropped = 0
        """Entries dropped so far because the queue was full."""
        self.closed = False
        self.close_code = 1000
        self._entries: deque[tuple[Row, int]] = deque()  # (row, drops just before it)
        self._control: deque[str] = deque()
        self._pending_drops = 0
        self._ready = asyncio.Event()

    def deliver(self, row: Row) -> None:
        """Queue ``row`` when this client may see it and its filter matches (hub side)."""
        if self.closed or (row.sensitive and not self.sees_sensitive):
            return
        if not self.matcher(row.view):
            return
        if len(self._entries) >= self.capacity:
            self._pending_drops += 1
            self.dropped += 1
            return
        self._entries.append((row, self._pending_drops))
        self._pending_drops = 0
        self._ready.set()

    def send(self, message: dict[str, Any]) -> None:
        """Queue a control message (ack, error, notice): sent before queued entries."""
        self._control.append(orjson.dumps(message).decode())
        self._ready.set()

    @property
    def replies_full(self) -> bool:
        """Whether :data:`CONTROL_LIMIT` control messages wait to be sent."""
        return len(self._control) >= CONTROL_LIMIT

    def set_matcher(self, matcher: Matcher) -> None:
        """Replace the filter; queued entries it no longer matches are removed (their
        place in the drop counts is kept)."""
        self.matcher = matcher
        kept: deque[tuple[Row, int]] = deque()
        carry = 0
        for row, drops in self._entries:
            if matcher(row.view):
                kept.append((row, drops + carry))
                carry = 0
            else:
                carry += drops
        self._entries = kept
        self._pending_drops += carry

    def close(self, code: int = 1000) -> None:
        """Stop: the sender ends and the connection closes with ``code``."""
        if not self.closed:
            self.closed, self.close_code = True, code
        self._ready.set()

    async def next(self, timeout: float) -> str | None:
        """The next message: control messages first, then a ``dropped`` notice before the
        entry that follows the drops, then entries. None when ``timeout`` passed, or closed.
        """
        while not self.closed:
            if self._control:
                return self._control.popleft()
            if self._entries:
                row, drops = self._entries[0]
                if drops:
                    self._entries[0] = (row, 0)
                    return _dropped(drops)
                self._entries.popleft()
                return row.text
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


def _dropped(count: int) -> str:
    return f'{{"type":"dropped","count":{count}}}'


def _gone(exc: BaseException) -> bool:
    """Whether ``exc`` only says the client went away."""
    return isinstance(exc, WebSocketDisconnect | OSError) or type(exc).__name__ in (
        "ClientDisconnected",
        "ConnectionClosed",
    )


def _task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro)
