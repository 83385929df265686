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
- ``{"type": "heartbeat", "time": "<ISO-8601>"}`` every ``heartbeat_seconds``;
- ``{"type": "error", "code": N, "error": ...}`` just before the server closes with code N.

Client to server: ``{"type": "update_filter", "filter": {...}}`` (the whole new filter),
``{"type": "ping"}``. ``?after=<cursor>`` resumes after an entry's cursor: the missed
records first, then live ones, none twice. Close codes: 4401 no or bad token (also when
the token is revoked while connected: it is checked again at each heartbeat, each filter
update and each change of the token file), 4403 a browser page of an origin that is not
allowed (see :mod:`.tail_guard`), 4429 rate limited or too many live tails (per token
and per server), 4400 bad filter or cursor (the reason names it), 1009 a frame over 64 KiB,
1001 server shutting down. The viewer role never receives security or audit records; for
the security and admin roles each connection and filter change is written to the audit
trail.

Resumes are paced: each reads at most :data:`MAX_BACKFILL_SCAN` rows, matching them in a
worker thread, and at most ``hub.MAX_BACKFILLS`` of a server read the store at once.
"""

from __future__ import annotations

import asyncio
import time
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
from .deps import (
    PREFIX,
    accepted_subprotocol,
    audit,
    authenticate_websocket,
    get_state,
    websocket_token,
)
from .hub import TAIL_BATCH, Hub, Position, get_hub
from .matcher import RecordView, parse_filter, scan_rows
from .params import FilterError
from .state import ServerState
from .subscriber import CONTROL_LIMIT, Subscriber
from .tail_guard import (
    check_resume_id,
    connection_limits,
    origin_refusal,
)

__all__ = [
    "CONTROL_LIMIT",
    "MAX_BACKFILL",
    "MAX_BACKFILL_SCAN",
    "MAX_FRAME_BYTES",
    "Subscriber",
    "router",
    "stream",
]

router = APIRouter(prefix=PREFIX)
"""The ``/stream`` WebSocket route (included under ``/api/v2/logs``)."""

MAX_FRAME_BYTES = 64 * 1024
"""A client frame longer than this closes the connection (1009)."""
MAX_BACKFILL = 10_000
"""Records a resume (``?after=``) sends at most; the rest are reported as dropped."""
MAX_BACKFILL_SCAN = 10 * MAX_BACKFILL
"""Rows a resume reads at most; past it the remaining ids are counted as dropped."""
_NOT_FILTER = ("token", "after")
_FIELD_CHARS = 200  # the most of a client's field name an error reply repeats
_ERROR_CHARS = 1000  # the most of an error text an error reply holds
_REVOKED = "the API token is revoked or no longer valid: reconnect with a valid token"

_REASON_BYTES = 123  # the most a close frame's reason holds


@router.websocket("/stream")
async def stream(ws: WebSocket) -> None:
    """Stream new log records matching the client's filter (see the module docs)."""
    state = get_state(ws)
    refusal = origin_refusal(state, ws)  # before anything else: a foreign page learns nothing
    await ws.accept(subprotocol=accepted_subprotocol(ws))
    if refusal is not None:
        await _refuse(ws, 4403, refusal, "origin")
        return
    caller = await asyncio.to_thread(authenticate_websocket, state, ws)
    if isinstance(caller, tuple):
        await _refuse(ws, *caller)
        return
    limits = connection_limits(state)
    busy = limits.acquire(caller)
    if busy is not None:
        await _refuse(ws, 4429, busy)
        return
    try:
        await _serve(ws, state, caller)
    finally:
        limits.release(caller)


async def _serve(ws: WebSocket, state: ServerState, caller: Principal) -> None:
    """The live tail of an accepted, authenticated connection."""
    sees_sensitive = caller.allows("security")
    try:
        matcher, normalized = parse_filter(_query_filter(ws), sees_sensitive)
        after = ws.query_params.get("after")
        resume = None
        if after is not None:
            ts, resume = decode_cursor(after, "asc", "tail")
            bad = check_resume_id(ts, resume)
            if bad is not None:
                await _refuse(ws, 4400, bad, "after")
                return
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
    connection = _Connection(ws, state, hub, caller, subscriber, websocket_token(ws))
    try:
        await connection.run(normalized, resume, position)
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
    """One subscribed client: backfill, then a sender and a receiver until either ends.

    ``token`` is the token the connection authenticated with (None: the anonymous caller
    of an ``insecure_no_auth`` server); it is checked again at each heartbeat, each filter
    update and whenever the hub sees the token file change.
    """

    def __init__(
        self,
        ws: WebSocket,
        state: ServerState,
        hub: Hub,
        caller: Principal,
        sub: Subscriber,
        token: str | None,
    ) -> None:
        self.ws = ws
        self.state = state
        self.hub = hub
        self.caller = caller
        self.sub = sub
        self._token = token

    def __repr__(self) -> str:  # never the token
        return f"<live tail of {self.caller.name!r}>"

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
        sub = self.sub
        if sub.closed and self.ws.application_state == WebSocketState.CONNECTED:
            if sub.close_code >= 4000:  # this client's token: say why before closing
                await _refuse(self.ws, sub.close_code, sub.close_reason)
                return
            # the hub stopped (shutdown) or this client's filter failed
            reason = "the log server is shutting down" if sub.close_code == 1001 else ""
            try:
                await self.ws.close(sub.close_code, reason)
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

    async def _token_valid(self) -> bool:
        """Whether the connection's token still names its caller; if not, the subscriber
        is closed with 4401 (the connection then says why and closes)."""
        if self._token is None:  # the anonymous caller of an insecure_no_auth server
            return True
        try:
            now = await asyncio.to_thread(self.state.tokens.authenticate, self._token)
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable token file: fail closed
            error_reporter.report(
                "live-tail-auth", f"live tail: re-checking a token failed: {exc!r}"
            )
            now = None
        if now is not None and (now.token_id, now.role) == (
            self.caller.token_id,
            self.caller.role,
        ):
            return True
        reason = _REVOKED if now is None else f"the token's role is now {now.role!r}: reconnect"
        self.sub.close(4401, reason)
        return False

    async def _backfill(self, after_id: int, at: Position) -> None:
        """Send the records after ``after_id`` the hub fanned out before this client
        joined (those it fans out later are queued already): none missed, none twice.

        The rows are read and matched in a worker thread, while holding one of the hub's
        backfill slots (not while sending: a client that reads slowly never holds one)."""
        sub, hub = self.sub, self.hub
        sent = skipped = scanned = 0
        approximate = False
        matcher, sees_sensitive = sub.matcher, sub.sees_sensitive

        def keep(view: RecordView, sensitive: bool) -> bool:
            return (sees_sensitive or not sensitive) and matcher(view)

        while after_id < at.high and not sub.closed:
            if scanned >= MAX_BACKFILL_SCAN:
                skipped += at.high - after_id  # at most this many ids are left
                approximate = True
                break
            limit = min(TAIL_BATCH, MAX_BACKFILL_SCAN - scanned)
            async with hub.backfills.hold():
                batch = await asyncio.to_thread(
                    scan_rows,
                    hub.store(),
                    after_id,
                    limit,
                    at.high + 1,
                    at.delivered,
                    keep,
                    MAX_BACKFILL - sent,
                    sub.max_bytes,
                )
            scanned += batch.scanned
            skipped += batch.matched - len(batch.texts)
            for text in batch.texts:
                await self.ws.send_text(text)
            sent += len(batch.texts)
            if batch.done:
                break
            after_id = batch.last
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
            if sub.recheck or now >= next_beat:
                sub.recheck = False
                if not await self._token_valid():
                    return
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
            await self.sub.room()  # replies full: read no more until some are sent

    def _error(self, field: str, error: str) -> None:
        self.sub.send(
            {
                "type": "error",
                "field": _cut(field, _FIELD_CHARS),
                "error": _cut(error, _ERROR_CHARS),
            }
        )

    async def _handle(self, text: str) -> None:
        try:
            await self._dispatch(text)
        except RecursionError:  # a message nested deeper than any code path expects
            self._error(
                "message", "the message is nested too deeply: send a flat JSON object of fields"
            )

    async def _dispatch(self, text: str) -> None:
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
        if not await self._token_valid():
            return
        if not isinstance(raw, dict):  # its type, not its text (str() of a deep list fails)
            self._error(
                "filter",
                f"invalid filter: got {_json_type(raw)}, expected an object of fields such as "
                '{"level": "ERROR"}',
            )
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


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type (``array``, ``string``...)."""
    names = {list: "an array", str: "a string", bool: "a boolean", int: "a number"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, float) else "a value")


def _cut(text: str, most: int) -> str:
    """``text`` cut to ``most`` characters (marked with ``...``)."""
    return text if len(text) <= most else text[: most - 3] + "..."


def _gone(exc: BaseException) -> bool:
    """Whether ``exc`` only says the client went away."""
    return isinstance(exc, WebSocketDisconnect | OSError) or type(exc).__name__ in (
        "ClientDisconnected",
        "ConnectionClosed",
    )


def _task(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    return asyncio.get_running_loop().create_task(coro)
