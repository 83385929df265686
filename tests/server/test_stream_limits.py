"""The live tail's guards, over a real server: revoked tokens lose their tail, foreign
origins are refused, resumes are paced, connections and queues are bounded (by count and by
size), forged cursors are refused."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Origin

from plexichat.core.logging import flush_logging, get_logger
from plexichat.core.logging.server import hub as hub_module
from plexichat.core.logging.server import matcher as matcher_module
from plexichat.core.logging.server import stream as stream_module
from plexichat.core.logging.server import subscriber as subscriber_module
from plexichat.core.logging.server import tail_guard
from plexichat.core.logging.server.auth import TokenStore
from plexichat.core.logging.server.hub import HUB_KEY, Hub
from plexichat.core.logging.server.matcher import Matcher, RecordView, Row
from plexichat.core.logging.server.subscriber import CONTROL_BYTES, Subscriber
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import LiveServer
from tests.server.test_stream import (
    TIMEOUT,
    _small_socket,
    closed_with,
    messages,
    recv,
    subscribed,
    tail,
    until,
)


def _hub(live: LiveServer) -> Hub:
    return live.state.extras[HUB_KEY]  # type: ignore[no-any-return]


def _eventually(check: Callable[[], bool], what: str) -> None:
    """Wait until ``check()`` holds (the deadline only guards against a hang)."""
    deadline = time.monotonic() + TIMEOUT
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.01)


def _revoke(live: LiveServer, name: str) -> None:
    """Revoke a token as an admin would, from another process: through the token file."""
    TokenStore.for_directory(live.directory).revoke(name)


# --- 1. a revoked token loses its live tail ----------------------------------------------


def _assert_closed_as_revoked(ws: Connection) -> list[dict[str, Any]]:
    code, reason, seen = closed_with(ws)
    assert code == 4401
    assert "revoked" in reason
    assert seen[-1]["type"] == "error"
    assert seen[-1]["code"] == 4401
    assert "revoked" in seen[-1]["error"]
    return seen


def test_revoking_a_token_ends_its_live_tail_when_the_token_file_changes(
    live_server: LiveServer,
) -> None:
    """The hub watches the token file: a revocation closes the token's tails with 4401
    (long before the next heartbeat, 30 s here); another token's tail stays."""
    with (
        tail(live_server, "viewer", {"logger": "nobody"}) as revoked,
        tail(live_server, "security", {"logger": "kept.*"}) as kept,
    ):
        subscribed(revoked)
        subscribed(kept)
        _revoke(live_server, "test-viewer")
        _assert_closed_as_revoked(revoked)
        get_logger("kept.app").info("still here")
        flush_logging()
        assert messages(until(kept, "kept.", "still here")) == ["still here"]


@pytest.mark.parametrize("server_settings", [{"heartbeat_seconds": 0.2}])
def test_each_heartbeat_rechecks_the_token(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the token-file watch, the next heartbeat finds the revocation."""
    monkeypatch.setattr(hub_module, "TOKEN_CHECK_SECONDS", 1e9)
    with tail(live_server, "viewer", {"logger": "nobody"}) as ws:
        subscribed(ws)
        _revoke(live_server, "test-viewer")
        seen = _assert_closed_as_revoked(ws)
    assert {m["type"] for m in seen} <= {"heartbeat", "error"}


def test_a_filter_update_rechecks_the_token(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the watch and before any heartbeat, an update_filter of a revoked token is
    refused with 4401 (never acknowledged)."""
    monkeypatch.setattr(hub_module, "TOKEN_CHECK_SECONDS", 1e9)
    with tail(live_server, "viewer", {"logger": "nobody"}) as ws:
        subscribed(ws)
        _revoke(live_server, "test-viewer")
        ws.send(json.dumps({"type": "update_filter", "filter": {"level": "ERROR"}}))
        seen = _assert_closed_as_revoked(ws)
    assert "filter_updated" not in {m["type"] for m in seen}


@pytest.mark.parametrize("server_settings", [{"heartbeat_seconds": 0.2, "insecure_no_auth": True}])
def test_an_anonymous_insecure_tail_stays_when_tokens_change(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The anonymous caller of an insecure_no_auth server has no token to revoke: its tail
    survives token-file changes and heartbeats."""
    rechecks: list[Subscriber] = []
    real = Subscriber.revalidate

    def counted(self: Subscriber) -> None:
        rechecks.append(self)
        real(self)

    monkeypatch.setattr(Subscriber, "revalidate", counted)
    with connect(f"{live_server.ws}/stream?logger=nobody", proxy=None) as ws:
        subscribed(ws)
        _revoke(live_server, "test-admin")
        _eventually(lambda: bool(rechecks), "the hub saw the token file change")
        beats = [json.loads(ws.recv(timeout=TIMEOUT)) for _ in range(3)]
        assert {b["type"] for b in beats} == {"heartbeat"}
        ws.send('{"type": "ping"}')
        assert recv(ws) == {"type": "pong"}


# --- 2. cross-site WebSocket hijacking ---------------------------------------------------


@contextmanager
def _from(live: LiveServer, origin: str, role: str | None = "viewer") -> Iterator[Connection]:
    query = {"logger": "nobody"} | ({} if role is None else {"token": live.tokens[role]})
    url = f"{live.ws}/stream?{urlencode(query)}"
    with connect(url, origin=Origin(origin), proxy=None, open_timeout=TIMEOUT) as ws:
        yield ws


def _assert_origin_refused(ws: Connection, origin: str) -> None:
    code, reason, seen = closed_with(ws)
    assert code == 4403
    assert origin in reason
    assert "api_cors_origins" in reason
    assert seen == [{"type": "error", "code": 4403, "field": "origin", "error": seen[0]["error"]}]
    assert "PLEXICHAT_LOG_API_CORS_ORIGINS" in seen[0]["error"]


@pytest.mark.parametrize(
    ("server_settings", "role"),
    [({"insecure_no_auth": True}, None), ({}, "admin")],
    ids=["insecure-no-auth", "token"],
)
def test_a_page_of_another_origin_is_refused(live_server: LiveServer, role: str | None) -> None:
    """Another site's page gets 4403 naming its origin and the setting, nothing else."""
    with _from(live_server, "https://evil.example", role) as ws:
        _assert_origin_refused(ws, "https://evil.example")
    with _from(live_server, "null", role) as ws:  # a sandboxed frame, a file: page
        assert closed_with(ws)[0] == 4403


def test_the_servers_own_origin_is_allowed(live_server: LiveServer) -> None:
    """A page the server served itself (the web viewer) connects; so does a client
    without an Origin (every other test)."""
    with _from(live_server, live_server.url) as ws:
        assert subscribed(ws)["role"] == "viewer"
    with _from(live_server, live_server.url.replace("127.0.0.1", "localhost")) as ws:
        assert closed_with(ws)[0] == 4403  # another origin, though the same machine


@pytest.mark.parametrize("server_settings", [{"cors_origins": ["https://app.example"]}])
def test_listed_cors_origins_are_allowed(live_server: LiveServer) -> None:
    """api_cors_origins admits its origins (default ports ignored), and only those."""
    for origin in ("https://app.example", "https://app.example:443"):
        with _from(live_server, origin) as ws:
            subscribed(ws)
    with _from(live_server, "http://app.example") as ws:
        _assert_origin_refused(ws, "http://app.example")


@pytest.mark.parametrize(
    ("server_settings", "allowed"),
    [({"cors_origins": ["*"]}, True), ({"cors_origins": ["*"], "insecure_no_auth": True}, False)],
    ids=["tokens", "insecure-no-auth"],
)
def test_a_wildcard_origin_never_opens_an_insecure_server(
    live_server: LiveServer, allowed: bool
) -> None:
    """ "*" admits any page when a token is needed anyway, never on an insecure server."""
    with _from(live_server, "https://any.example") as ws:
        if allowed:
            subscribed(ws)
        else:
            _assert_origin_refused(ws, "https://any.example")


# --- 3. costly resumes, too many connections -------------------------------------------


def test_a_resume_scans_at_most_ten_times_what_it_sends() -> None:
    assert stream_module.MAX_BACKFILL_SCAN == 10 * stream_module.MAX_BACKFILL == 100_000


def _cursor_before(live: LiveServer, prefix: str, count: int) -> str:
    """Log ``{prefix}0`` (its cursor is returned) then ``count`` more records, all stored
    and fanned out by the hub before this returns."""
    log = get_logger(f"{prefix}.app")
    with tail(live, params={"logger": f"{prefix}.*"}) as ws:
        subscribed(ws)
        log.info(f"{prefix}0")
        flush_logging()
        cursor: str = until(ws, f"{prefix}.", f"{prefix}0")[0]["cursor"]
    for i in range(1, count + 1):
        log.info(f"{prefix}{i}")
    live.wait_for(count + 1, LogQuery(loggers=(f"{prefix}.*",)))
    last = live.state.store.last_id()
    hub = _hub(live)
    _eventually(lambda: hub.tracker.low >= last, "the hub fanned out the records")
    return cursor


def test_a_resume_matches_its_rows_in_a_worker_thread(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backfill's parsing and matching never run on the event loop."""
    cursor = _cursor_before(live_server, "bf", 5)
    calls: list[bool] = []
    real = matcher_module.parse_filter

    def recording(raw: dict[str, object], sees: bool) -> tuple[Matcher, dict[str, Any]]:
        matcher, normalized = real(raw, sees)

        def check(record: Any) -> bool:
            if str(record.doc.get("message", "")).startswith("bf"):
                try:
                    asyncio.get_running_loop()
                    calls.append(True)  # on the event loop
                except RuntimeError:
                    calls.append(False)
            return matcher(record)

        return _Wrapped(check), normalized

    monkeypatch.setattr(stream_module, "parse_filter", recording)
    with tail(live_server, params={"logger": "bf.*", "after": cursor}) as ws:
        subscribed(ws)
        got = until(ws, "bf.", "bf5")
    assert messages(got) == [f"bf{i}" for i in range(1, 6)]
    assert calls  # matched...
    assert not any(calls)  # ...never on the loop


class _Wrapped(Matcher):  # a recording wrapper: calls ``check``
    def __init__(self, check: Callable[[Any], bool]) -> None:  # no super(): nothing compiled
        self._check = check

    def __call__(self, record: Any) -> bool:
        return self._check(record)


def test_at_most_two_resumes_read_the_store_at_once(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third concurrent resume waits for a slot; all three complete once released."""
    cursor = _cursor_before(live_server, "sem", 3)
    gate = threading.Event()
    real = matcher_module.scan_rows

    def gated(*args: Any) -> matcher_module.Scan:
        assert gate.wait(TIMEOUT)
        return real(*args)

    monkeypatch.setattr(stream_module, "scan_rows", gated)
    hub = _hub(live_server)
    with ExitStack() as stack:
        clients = [
            stack.enter_context(tail(live_server, params={"logger": "sem.*", "after": cursor}))
            for _ in range(3)
        ]
        for ws in clients:
            subscribed(ws)
        _eventually(lambda: (hub.backfills.busy, hub.backfills.waiting) == (2, 1), "2 + 1")
        gate.set()
        for ws in clients:
            assert messages(until(ws, "sem.", "sem3")) == ["sem1", "sem2", "sem3"]
    assert hub.backfills.busy == hub.backfills.waiting == 0


def test_connections_are_limited_per_token_and_per_server(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_CONNECTIONS_PER_TOKEN of one token, or MAX_CONNECTIONS in all, a new tail
    closes with 4429 and says which limit; closed tails free their places."""
    monkeypatch.setattr(tail_guard, "MAX_CONNECTIONS_PER_TOKEN", 2)
    monkeypatch.setattr(tail_guard, "MAX_CONNECTIONS", 3)
    limits = tail_guard.connection_limits(live_server.state)
    with ExitStack() as stack:
        for _ in range(2):
            subscribed(stack.enter_context(tail(live_server, "viewer")))
        with tail(live_server, "viewer") as third:
            code, reason, seen = closed_with(third)
        assert code == 4429
        assert "'test-viewer'" in reason
        assert seen[-1]["code"] == 4429
        subscribed(stack.enter_context(tail(live_server, "security")))
        with tail(live_server, "admin") as fourth:
            code, reason, _ = closed_with(fourth)
        assert code == 4429
        assert "too many live tails" in reason
    _eventually(lambda: limits.total == 0 and not limits.per_token, "all places freed")
    with tail(live_server, "viewer") as ws:
        subscribed(ws)


# --- 4. memory bounded by bytes -----------------------------------------------------------


def _row(row_id: int, text: str, doc: dict[str, Any] | None = None) -> Row:
    doc = {"timestamp": "2026-01-01T00:00:00Z", "message": "m"} if doc is None else doc
    return Row(row_id, RecordView(doc), False, text)


def test_a_subscriber_drops_past_its_byte_budget_like_a_full_queue() -> None:
    """Entries past max_bytes of queued text are dropped and counted, though the queue
    has room for more."""

    async def scenario() -> list[str]:
        sub = Subscriber(Matcher(LogQuery()), sees_sensitive=False, capacity=100, max_bytes=3500)
        for i in range(10):
            sub.deliver(_row(i, json.dumps({"type": "entry", "i": i, "pad": "x" * 980})))
        assert sub.queued_bytes <= 3500
        assert sub.dropped == 7
        sub.deliver(_row(10, json.dumps({"type": "entry", "i": 10})))  # fits: queued
        out = []
        while (message := await sub.next(0.01)) is not None:
            out.append(message)
        assert sub.queued_bytes == 0
        return out

    got = [json.loads(m) for m in asyncio.run(scenario())]
    assert [m.get("i", m["type"]) for m in got] == [0, 1, 2, "dropped", 10]
    assert got[3]["count"] == 7


def test_a_queued_entry_keeps_only_its_text() -> None:
    """The parsed record (and its view) is not kept alive by a queue that waits."""

    class Doc(dict[str, Any]):
        """A dict that can be weakly referenced."""

    doc = Doc(timestamp="2026-01-01T00:00:00Z", message="held")
    sub = Subscriber(Matcher(LogQuery()), sees_sensitive=False, capacity=5)
    sub.deliver(_row(1, '{"type":"entry","message":"held"}', doc))
    ref = weakref.ref(doc)
    del doc
    gc.collect()
    assert ref() is None
    sub.set_matcher(Matcher(LogQuery(search="held")))  # matched again from its text
    assert json.loads(asyncio.run(sub.next(0.01)) or "{}")["message"] == "held"


def test_control_replies_are_bounded_by_size_too() -> None:
    """A few large replies fill the reply queue as many small ones do; room() waits until
    the sender took some."""

    async def scenario() -> None:
        sub = Subscriber(Matcher(LogQuery()), sees_sensitive=False, capacity=5)
        big = "x" * (CONTROL_BYTES // 3 + 1)
        for _ in range(3):
            sub.send({"type": "error", "error": big})
        assert sub.replies_full
        waiter = asyncio.ensure_future(sub.room())
        await asyncio.sleep(0)
        assert not waiter.done()
        await sub.next(0.01)
        await asyncio.wait_for(waiter, TIMEOUT)
        assert not sub.replies_full

    asyncio.run(scenario())


def test_an_error_reply_never_repeats_a_huge_value(live_server: LiveServer) -> None:
    """A 60 KB message type or filter field name gets a short error reply."""
    with tail(live_server, params={"logger": "nobody"}) as ws:
        subscribed(ws)
        ws.send(json.dumps({"type": "t" * 60_000}))
        ws.send(json.dumps({"type": "update_filter", "filter": {"f" * 60_000: "1"}}))
        errors = [recv(ws), recv(ws)]
    assert [e["type"] for e in errors] == ["error", "error"]
    assert [e["field"][0] for e in errors] == ["t", "f"]
    assert all(len(json.dumps(e)) < 2000 for e in errors)


@pytest.mark.parametrize("server_settings", [{"client_queue": 1000}])
def test_a_slow_client_of_large_records_is_bounded_by_bytes(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for 1,000 records but a byte budget of 64 KiB, a slow client queues at
    most 64 KiB of 8 KB records; the rest is an exact dropped count."""
    monkeypatch.setattr(subscriber_module, "SUBSCRIBER_BYTES", 64 * 1024)
    pad = os.urandom(4000).hex()  # 8 KB that compression cannot shrink
    params = {"logger": "big.*"}
    log = get_logger("big.app")
    total = extra_steps = 0
    most = 0
    with (
        tail(live_server, params=params, sock=_small_socket(live_server), compression=None) as slow,
        tail(live_server, params=params, compression=None) as fast,
    ):
        subscribed(slow)
        subscribed(fast)
        hub = _hub(live_server)
        while extra_steps < 2:
            for _ in range(20):
                log.info(f"b{total}", extra={"context": {"pad": pad}})
                total += 1
            flush_logging()
            until(fast, "big.", f"b{total - 1}")
            subs = [s for s in hub.subscribers if isinstance(s, Subscriber)]
            most = max([most, *(s.queued_bytes for s in subs)])
            extra_steps += any(s.dropped for s in subs)
            assert total < 20_000, "the slow client never overflowed"
        got = until(slow, "big.", None)
        log.info("after")
        flush_logging()
        got += until(slow, "big.", "after")
    assert 0 < most <= 64 * 1024  # 8 records, with room for 1,000
    assert messages(got)[-1] == "after"
    received = [int(m["message"][1:]) for m in got[:-1] if m["type"] == "entry"]
    dropped = sum(m["count"] for m in got if m["type"] == "dropped")
    assert received == sorted(set(received))  # in order, none twice
    assert dropped > 0
    assert len(received) + dropped == total


# --- 5. forged cursors ----------------------------------------------------------------------


@pytest.mark.parametrize(("ts", "row_id"), [(0, -1), (0, 2**63), (2**63, 1), (-(2**63) - 1, 1)])
def test_the_stream_checks_a_resume_cursor_itself(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, ts: int, row_id: int
) -> None:
    """Whatever decode_cursor lets through, the stream refuses ids and times out of range
    with 4400 (never a 1011 from the store)."""
    monkeypatch.setattr(stream_module, "decode_cursor", lambda *_args: (ts, row_id))
    get_logger("forge.app").info("a record to resume over")
    live_server.wait_for(1, LogQuery(loggers=("forge.*",)))
    with tail(live_server, params={"after": "anything"}) as ws:
        code, reason, seen = closed_with(ws)
    assert code == 4400
    assert reason.startswith("after: ")
    assert seen[-1]["field"] == "after"


def _forged(ts: int, row_id: int) -> str:
    """A cursor as encode_cursor makes one, with any numbers (the hash is not keyed)."""
    payload = json.dumps([ts, row_id, "asc"]).encode()
    sig = hashlib.sha256(b"plexichat-cursor" + payload).digest()[:6]
    return base64.urlsafe_b64encode(payload + sig).decode().rstrip("=")


@pytest.mark.parametrize(
    ("ts", "row_id"),
    [(0, -1), (0, -(2**63)), (0, 2**63), (0, 2**64 - 1), (2**64 - 1, 5)],
    ids=["id-1", "id-min", "id-2**63", "id-max-u64", "ts-max-u64"],
)
def test_a_forged_cursor_out_of_range_closes_with_4400(
    live_server: LiveServer, ts: int, row_id: int
) -> None:
    """Never 1011 (an internal error): 4400 naming ``after``."""
    get_logger("forge.app").info("a record to resume over")
    live_server.wait_for(1, LogQuery(loggers=("forge.*",)))
    with tail(live_server, params={"after": _forged(ts, row_id)}) as ws:
        code, reason, seen = closed_with(ws)
    assert code == 4400
    assert reason.startswith("after")
    assert seen[-1]["field"] == "after"
