"""The live tail over a real server and a real WebSocket client: the spec's flow, filters,
auth and roles, resume, slow clients, malformed messages, other processes' records."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from plexichat.core.logging import LogLevel, flush_logging, get_logger
from plexichat.core.logging.log_api import ServerSettings, ServerState, create_app
from plexichat.core.logging.security_logger import get_audit_logger
from plexichat.core.logging.server import stream as stream_module
from plexichat.core.logging.server.deps import STATE_KEY
from plexichat.core.logging.server.hub import HUB_KEY, Hub, get_hub
from plexichat.core.logging.server.matcher import Matcher, RecordView, Row, parse_filter
from plexichat.core.logging.server.stream import Subscriber
from plexichat.core.logging.store.base import LogQuery
from tests.integrations.servers import serve_asgi
from tests.server.conftest import LiveServer

TIMEOUT = 30.0  # only against hangs: every wait ends as soon as its message arrives


@contextmanager
def tail(
    live: LiveServer,
    role: str | None = "viewer",
    params: dict[str, Any] | None = None,
    *,
    header: bool = False,
    sock: socket.socket | None = None,
    compression: str | None = "deflate",
) -> Iterator[Connection]:
    """A connected client (token in ``?token=``, or in the header with ``header``)."""
    query = dict(params or {})
    headers = {}
    if role is not None and header:
        headers["Authorization"] = f"Bearer {live.tokens[role]}"
    elif role is not None:
        query["token"] = live.tokens[role]
    url = f"{live.ws}/stream" + (f"?{urlencode(query, doseq=True)}" if query else "")
    with connect(
        url,
        additional_headers=headers,
        open_timeout=TIMEOUT,
        proxy=None,
        sock=sock,
        compression=compression,
    ) as ws:
        yield ws


def recv(ws: Connection) -> dict[str, Any]:
    """The next message, skipping heartbeats."""
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=TIMEOUT))
        if message["type"] != "heartbeat":
            return message


def subscribed(ws: Connection) -> dict[str, Any]:
    """The first message, which must be ``subscribed``."""
    message = recv(ws)
    assert message["type"] == "subscribed", message
    return message


def until(ws: Connection, prefix: str, last: str | None) -> list[dict[str, Any]]:
    """Every message up to the entry with message ``last`` (None: up to a ``dropped``);
    entries of loggers outside ``prefix`` (the server's own records) are left out."""
    out: list[dict[str, Any]] = []
    while True:
        message = recv(ws)
        if message["type"] == "entry" and not message["logger"].startswith(prefix):
            continue
        out.append(message)
        if message.get("message", message["type"]) == (last or "dropped"):
            return out


def messages(items: list[dict[str, Any]]) -> list[str]:
    """The ``message`` of each entry (other messages as ``<type>``)."""
    return [m["message"] if m["type"] == "entry" else f"<{m['type']}>" for m in items]


def closed_with(ws: Connection) -> tuple[int, str, list[dict[str, Any]]]:
    """Read until the server closes; its close code, reason and the messages before."""
    seen = []
    try:
        while True:
            seen.append(json.loads(ws.recv(timeout=TIMEOUT)))
    except ConnectionClosed as exc:
        if exc.rcvd is None:
            raise
        return exc.rcvd.code, exc.rcvd.reason, seen


@pytest.mark.parametrize("server_settings", [{"insecure_no_auth": True}])
def test_spec_client_example_works_unchanged(live_server: LiveServer) -> None:
    """The spec's example: ``/stream?level=INFO`` (no token on an insecure loopback server),
    entries with the record's fields; ``update_filter`` is acknowledged and then only
    ERROR+ security records arrive."""
    with connect(f"{live_server.ws}/stream?level=INFO", proxy=None) as ws:
        hello = subscribed(ws)
        assert hello["filter"] == {"level": "INFO"}
        assert hello["role"] == "admin"
        log = get_logger("spec.app")
        log.debug("hidden debug")
        log.info("first")
        log.warning("second", extra={"context": {"user_id": "u1"}})
        flush_logging()
        got = until(ws, "spec.", "second")
        assert messages(got) == ["first", "second"]
        entry = got[1]
        assert entry["type"] == "entry"
        assert entry["level"] == "WARNING"
        assert entry["context"] == {"user_id": "u1"}
        assert entry["category"] == "system"
        assert {"timestamp", "module", "function", "line", "cursor", "stream"} <= set(entry)
        update = {"level": "ERROR", "category": "security"}
        ws.send(json.dumps({"type": "update_filter", "filter": update}))
        before_ack = []  # records of the old filter already on their way (the server's own)
        while (ack := recv(ws))["type"] == "entry":
            before_ack.append(ack)
        assert ack == {
            "type": "filter_updated",
            "filter": {"level": "ERROR", "category": ["security"]},
        }
        assert all(e["level"] != "DEBUG" for e in before_ack)
        log.info("info security", extra={"category": "security"})
        log.error("error system")
        log.error("error security", extra={"category": "security"})
        log.critical("critical api", extra={"category": "api"})
        log.critical("critical security", extra={"category": "security"})
        flush_logging()
        got = until(ws, "", "critical security")  # every entry, whatever its logger
    assert messages(got) == ["error security", "critical security"]
    for entry in got:
        assert entry["category"] == "security"
        assert entry["level"] in ("ERROR", "CRITICAL")


CASES: dict[str, tuple[dict[str, Any], list[tuple[str, dict[str, Any], bool]]]] = {
    # name: (filter, [(message, record fields, expected to arrive)]); the last one arrives
    "level": ({"level": "WARNING"}, [
        ("a debug", {"level": "DEBUG"}, False),
        ("an info", {}, False),
        ("a warning", {"level": "WARNING"}, True),
        ("a security", {"level": "SECURITY"}, True),
        ("an error", {"level": "ERROR"}, True),
    ]),
    "category": ({"category": "database,cache"}, [
        ("api one", {"category": "api"}, False),
        ("db one", {"category": "database"}, True),
        ("cache one", {"category": "cache"}, True),
        ("system one", {}, False),
        ("db two", {"category": "database"}, True),
    ]),
    "search and": ({"search_query": "database AND timeout"}, [
        ("database ok", {}, False),
        ("a timeout", {}, False),
        ("Database TIMEOUT after 5 s", {}, True),
        ("timeout of the database pool", {}, True),
    ]),
    "search or, phrase": ({"search_query": '"connection refused" OR slow'}, [
        ("refused connection", {}, False),
        ("slow query", {}, True),
        ("connection-refused by peer", {}, True),
        ("peer: connection refused", {}, True),
    ]),
    "search not": ({"search_query": "error NOT debug"}, [
        ("error in debug mode", {}, False),
        ("plain error", {}, True),
        ("debug only", {}, False),
        ("error with user", {"context": {"mode": "debug"}}, False),
        ("an error again", {}, True),
    ]),
    "search in context values": ({"search_query": "alice"}, [
        ("login", {"context": {"user": "bob"}}, False),
        ("login ok", {"context": {"user": "Alice"}}, True),
        ("meta", {"metadata": {"who": ["x", "alice"]}}, True),
    ]),
    "context equality": ({"context.user_id": "u1", "context.attempt": 2}, [
        ("u2 attempt 2", {"context": {"user_id": "u2", "attempt": 2}}, False),
        ("u1 attempt 3", {"context": {"user_id": "u1", "attempt": 3}}, False),
        ("u1 attempt 2", {"context": {"user_id": "u1", "attempt": 2}}, True),
        ("u1 attempt '2'", {"context": {"user_id": "u1", "attempt": "2"}}, True),
    ]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_filters_select_the_records_the_store_would(live_server: LiveServer, case: str) -> None:
    """Each filter delivers exactly the matching records, in order; the store agrees."""
    filt, records = CASES[case]
    prefix = "flt." + case.replace(" ", "_").replace(",", "")
    with tail(live_server, "security", {**filt, "logger": f"{prefix}.*"}) as ws:
        subscribed(ws)
        log = get_logger(f"{prefix}.app")
        for message, fields in ((m, f) for m, f, _ in records):
            extra = {k: v for k, v in fields.items() if k != "level"}
            log.log(LogLevel[fields.get("level", "INFO")], message, extra=extra)
        flush_logging()
        got = until(ws, prefix, records[-1][0])
    expected = [m for m, _, arrives in records if arrives]
    assert messages(got) == expected
    query = parse_filter({**filt, "logger": f"{prefix}.*"}, sees_sensitive=True)[0].query
    live_server.wait_for(len(expected), query)
    page = live_server.state.store.query(LogQuery(**{**_fields(query), "order": "asc"}))
    assert [e["message"] for e in page.entries] == expected


def _fields(query: LogQuery) -> dict[str, Any]:
    names = ("min_level", "categories", "loggers", "search", "where")
    return {name: getattr(query, name) for name in names}


def test_logger_filter_takes_a_logger_and_its_children(live_server: LiveServer) -> None:
    """``logger=a.db.*`` matches ``a.db`` and ``a.db.pool``, not ``a.dbx``; an exact name
    only itself."""
    with tail(live_server, params={"logger": ["lg.db.*", "lg.api"]}) as ws:
        subscribed(ws)
        for name in ("lg.db", "lg.dbx", "lg.db.pool", "lg.api.v1", "lg.api"):
            get_logger(name).info(f"from {name}")
        flush_logging()
        got = until(ws, "lg.", "from lg.api")
    assert messages(got) == ["from lg.db", "from lg.db.pool", "from lg.api"]


def test_no_token_or_a_bad_token_closes_with_4401(live_server: LiveServer) -> None:
    """Without a valid token the socket closes with 4401 and the reason."""
    with tail(live_server, None) as ws:
        code, reason, seen = closed_with(ws)
    assert code == 4401
    assert "missing API token" in reason
    assert seen[0]["type"] == "error"
    assert seen[0]["code"] == 4401
    url = f"{live_server.ws}/stream?token=plx_wrong"
    with connect(url, proxy=None) as ws:
        code, reason, _ = closed_with(ws)
    assert code == 4401
    assert "unknown or revoked" in reason


def test_bearer_header_and_query_token_both_authenticate(live_server: LiveServer) -> None:
    """``Authorization: Bearer`` and ``?token=`` are both accepted; the role is echoed."""
    with tail(live_server, "security", header=True) as ws:
        assert subscribed(ws)["role"] == "security"
    with tail(live_server, "admin") as ws:
        assert subscribed(ws)["role"] == "admin"


def test_browser_subprotocol_token_authenticates_and_is_echoed(live_server: LiveServer) -> None:
    """Browsers offer ["plexichat-logs", "bearer.<token>"]: the token authenticates and the
    server picks "plexichat-logs" (a browser drops a socket whose offer was not answered)."""
    offer: Any = ["plexichat-logs", "bearer." + live_server.tokens["viewer"]]
    with connect(f"{live_server.ws}/stream?level=INFO", subprotocols=offer, proxy=None) as ws:
        assert ws.subprotocol == "plexichat-logs"
        assert subscribed(ws)["role"] == "viewer"
    bad: Any = ["plexichat-logs", "bearer.plx_wrong"]
    with connect(f"{live_server.ws}/stream", subprotocols=bad, proxy=None) as ws:
        code, reason, _ = closed_with(ws)
    assert code == 4401
    assert "unknown or revoked" in reason


@pytest.mark.parametrize("server_settings", [{"rate_limit": 2}])
def test_over_the_rate_limit_closes_with_4429(live_server: LiveServer) -> None:
    """A connection counts as a request of its token: over the limit, 4429."""
    for _ in range(2):
        with tail(live_server) as ws:
            subscribed(ws)
    with tail(live_server) as ws:
        code, reason, _ = closed_with(ws)
    assert code == 4429
    assert "rate limit" in reason


def test_viewer_never_receives_security_or_audit_records(live_server: LiveServer) -> None:
    """Security category, SECURITY/AUDIT levels, audit records and security events reach
    the security role only; both see the operational records."""
    params = {"logger": ["sens.*", "plexichat.audit"]}
    with (
        tail(live_server, "viewer", params) as viewer,
        tail(live_server, "security", params) as soc,
    ):
        subscribed(viewer)
        subscribed(soc)
        log = get_logger("sens.app")
        log.info("ops one")
        log.info("security category", extra={"category": "security"})
        log.log(LogLevel.SECURITY, "security level")
        log.info("event", extra={"metadata": {"event_type": "login_failed"}})
        get_audit_logger().log("admin", "update", "config/x", "success")
        log.info("ops two")
        flush_logging()
        seen_by_viewer = until(viewer, "", "ops two")
        seen_by_soc = until(soc, "", "ops two")
    assert [m for m in messages(seen_by_viewer) if m.startswith("ops")] == ["ops one", "ops two"]
    for entry in seen_by_viewer:
        assert entry["category"] not in ("security", "audit"), entry
        assert entry["level"] not in ("SECURITY", "AUDIT"), entry
        assert "event_type" not in entry.get("metadata", {}), entry
    soc_messages = messages(seen_by_soc)
    for message in ("security category", "security level", "event", "ops two"):
        assert message in soc_messages
    assert any(m.get("logger") == "plexichat.audit" for m in seen_by_soc)


def test_security_roles_are_audited_per_connection_and_filter_update(
    live_server: LiveServer,
) -> None:
    """One audit record (action tail, resource logs/stream, the filter) per connection and
    per filter update of a security or admin token; none for a viewer."""
    with tail(live_server, "viewer", {"level": "INFO"}) as ws:
        subscribed(ws)
    with tail(live_server, "security", {"category": "api"}) as ws:
        subscribed(ws)
        live_server.wait_for(1, LogQuery(where=(("metadata.action", "tail"),)))
        ws.send(json.dumps({"type": "update_filter", "filter": {"level": "ERROR"}}))
        assert recv(ws)["type"] == "filter_updated"
        live_server.wait_for(2, LogQuery(where=(("metadata.action", "tail"),)))
    page = live_server.state.store.query(
        LogQuery(where=(("metadata.action", "tail"),), order="asc")
    )
    meta = [e["metadata"] for e in page.entries]
    assert [m["details"]["filter"] for m in meta] == [{"category": ["api"]}, {"level": "ERROR"}]
    assert {m["resource"] for m in meta} == {"logs/stream"}
    assert [m["actor"]["role"] for m in meta] == ["security", "security"]  # not the viewer


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"level": "LOUD"}, "level"),
        ({"colour": "red"}, "colour"),
        ({"search_query": "a AND"}, "search_query"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"after": "not-a-cursor"}, "after"),
    ],
)
def test_an_invalid_initial_filter_or_cursor_closes_with_4400(
    live_server: LiveServer, params: dict[str, str], field: str
) -> None:
    """The reason names the bad field; the error message carries it too."""
    with tail(live_server, params=params) as ws:
        code, reason, seen = closed_with(ws)
    assert code == 4400
    assert reason.startswith(field)
    assert seen[-1]["field"] == field


def test_invalid_filter_update_is_refused_and_the_old_filter_stays(
    live_server: LiveServer,
) -> None:
    """An invalid update gets an error naming the field and the allowed values."""
    with tail(live_server, params={"logger": "upd.*"}) as ws:
        subscribed(ws)
        ws.send(json.dumps({"type": "update_filter", "filter": {"level": "LOUD"}}))
        error = recv(ws)
        assert error["type"] == "error"
        assert error["field"] == "level"
        assert "'LOUD'" in error["error"]
        assert "allowed are" in error["error"]
        ws.send(json.dumps({"type": "update_filter", "filter": "ERROR"}))
        assert recv(ws)["field"] == "filter"
        get_logger("upd.app").info("still the old filter")
        flush_logging()
        assert messages(until(ws, "upd.", "still the old filter")) == ["still the old filter"]


def test_malformed_messages_get_errors_and_the_connection_stays(
    live_server: LiveServer,
) -> None:
    """Bad JSON, a non-object, an unknown type and a binary frame each get an error; a
    ping still gets its pong afterwards."""
    with tail(live_server, params={"logger": "nobody"}) as ws:
        subscribed(ws)
        for frame, field in (
            ("{nope", "message"),
            ("[1, 2]", "message"),
            ('{"type": "subscribe"}', "type"),
            (b"\x00\x01", "message"),
        ):
            ws.send(frame)
            error = recv(ws)
            assert (error["type"], error["field"]) == ("error", field), error
        ws.send('{"type": "ping"}')
        assert recv(ws) == {"type": "pong"}


def test_an_absurd_frame_closes_with_1009(live_server: LiveServer) -> None:
    """A frame over 64 KiB closes the connection (message too big)."""
    with tail(live_server) as ws:
        subscribed(ws)
        ws.send(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        code, reason, _ = closed_with(ws)
    assert code == 1009
    assert "65536" in reason


@pytest.mark.parametrize("server_settings", [{"heartbeat_seconds": 0.2}])
def test_heartbeats_arrive_every_heartbeat_seconds(live_server: LiveServer) -> None:
    """Idle or not, a heartbeat with the server's time is sent every heartbeat_seconds."""
    with tail(live_server, params={"logger": "nobody"}) as ws:
        assert subscribed(ws)["heartbeat_seconds"] == 0.2
        beats = [json.loads(ws.recv(timeout=TIMEOUT)) for _ in range(2)]
    assert [b["type"] for b in beats] == ["heartbeat", "heartbeat"]
    assert beats[0]["time"].endswith("Z")


def test_resume_after_a_disconnect_has_no_gap_and_no_duplicate(
    live_server: LiveServer,
) -> None:
    """Reconnecting with ``?after=<cursor>`` sends exactly the records missed since that
    entry, then the live ones."""
    log = get_logger("res.app")
    params = {"logger": "res.*"}
    with tail(live_server, params=params) as ws:
        subscribed(ws)
        for i in range(5):
            log.info(f"r{i}")
        flush_logging()
        first = until(ws, "res.", "r4")
    cursor = first[2]["cursor"]  # the client saw r0..r4 but processed only up to r2
    for i in range(5, 10):
        log.info(f"r{i}")
    live_server.wait_for(10, LogQuery(loggers=("res.*",)))
    with tail(live_server, params={**params, "after": cursor}) as ws:
        subscribed(ws)
        for i in range(10, 13):
            log.info(f"r{i}")
        flush_logging()
        got = until(ws, "res.", "r12")
    assert messages(got) == [f"r{i}" for i in range(3, 13)]
    assert len({m["cursor"] for m in got}) == len(got)


def test_resume_past_the_backfill_limit_reports_the_rest_as_dropped(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_BACKFILL records, the rest of the gap is a ``dropped`` count."""
    monkeypatch.setattr(stream_module, "MAX_BACKFILL", 3)
    log = get_logger("cap.app")
    with tail(live_server, params={"logger": "cap.*"}) as ws:
        subscribed(ws)
        log.info("c0")
        flush_logging()
        cursor = until(ws, "cap.", "c0")[0]["cursor"]
    for i in range(1, 11):
        log.info(f"c{i}")
    live_server.wait_for(11, LogQuery(loggers=("cap.*",)))
    with tail(live_server, params={"logger": "cap.*", "after": cursor}) as ws:
        subscribed(ws)
        log.info("live")
        flush_logging()
        got = until(ws, "cap.", "live")
    assert messages(got) == ["c1", "c2", "c3", "<dropped>", "live"]
    assert got[3]["count"] == 7


def _small_socket(live: LiveServer) -> socket.socket:
    """A connected socket with a small receive buffer (it stops reading sooner)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    host, port = live.url.removeprefix("http://").split(":")
    sock.connect((host, int(port)))
    return sock


@pytest.mark.parametrize("server_settings", [{"client_queue": 10}])
def test_slow_client_gets_a_dropped_count_and_never_slows_a_fast_one(
    live_server: LiveServer,
) -> None:
    """A client that does not read while records arrive loses the ones its queue cannot
    hold, then gets ``dropped`` with their exact count before the next entry; a fast client
    at the same time receives every record."""
    pad = os.urandom(1000).hex()  # 2 KB that compression cannot shrink
    params = {"logger": "slow.*"}
    fast_got: list[dict[str, Any]] = []
    log = get_logger("slow.app")
    total = 0
    with (
        tail(live_server, params=params, sock=_small_socket(live_server), compression=None) as slow,
        tail(live_server, params=params, compression=None) as fast,
    ):
        subscribed(slow)
        subscribed(fast)
        hub = live_server.state.extras[HUB_KEY]
        extra_steps = 0
        while extra_steps < 2:  # until the slow client's buffers overflowed, and a bit more
            for _ in range(50):  # small steps: the fast client never lags behind by more
                log.info(f"s{total}", extra={"context": {"pad": pad}})
                total += 1
            flush_logging()
            fast_got += until(fast, "slow.", f"s{total - 1}")
            extra_steps += any(s.dropped for s in hub.subscribers)
            assert total < 50_000, "the slow client never overflowed"
        assert messages(fast_got) == [f"s{i}" for i in range(total)]
        got = until(slow, "slow.", None)  # the slow client starts reading
        log.info("after")
        flush_logging()
        got += until(slow, "slow.", "after")
    names = messages(got)
    assert names.count("<dropped>") == 1
    assert names[-2:] == ["<dropped>", "after"]
    received = names[:-2]
    dropped = got[-2]["count"]
    assert dropped > 0
    assert received == [f"s{i}" for i in range(len(received))]
    assert len(received) + dropped == total


def test_records_of_another_process_reach_the_client(live_server: LiveServer) -> None:
    """A separate process logging into the same directory is streamed too."""
    code = (
        "import sys\n"
        "from plexichat.core.logging import configure_logging, get_logger, shutdown_logging\n"
        "configure_logging(directory=sys.argv[1], console_enabled=False)\n"
        "log = get_logger('other.proc')\n"
        "for i in range(3):\n"
        "    log.info(f'from child {i}', extra={'context': {'pid': 'child'}})\n"
        "shutdown_logging()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    with tail(live_server, params={"logger": "other.*"}) as ws:
        subscribed(ws)
        subprocess.run(
            [sys.executable, "-c", code, str(live_server.directory)],
            check=True,
            env=env,
            timeout=TIMEOUT * 2,
        )
        got = until(ws, "other.", "from child 2")
    assert messages(got) == ["from child 0", "from child 1", "from child 2"]
    assert {m["stream"] for m in got} != {""}
    assert got[0]["context"] == {"pid": "child"}


def test_closing_the_server_closes_clients_and_stops_the_hub(tmp_path: Path) -> None:
    """Shutting the server down ends every live tail (a close frame, no hang) and stops
    the hub's reader."""
    directory = tmp_path / "logs"
    settings = ServerSettings(directory=directory, insecure_no_auth=True, index_interval=0.05)
    app = create_app(settings)
    state = getattr(app.state, STATE_KEY)
    with serve_asgi(app, lifespan="on") as url:
        ws = connect(f"ws{url.removeprefix('http')}/api/v2/logs/stream", proxy=None)
        subscribed(ws)
        hub = state.extras[HUB_KEY]
        assert not hub.stopped
    code, _, _ = closed_with(ws)
    ws.close()
    assert code in (1001, 1012)  # uvicorn says "service restart" first
    assert hub.stopped
    assert hub.subscribers == set()


def _row(row_id: int, message: str) -> Row:
    doc = {"timestamp": "2026-01-01T00:00:00Z", "message": message}
    return Row(row_id, RecordView(doc), False, json.dumps({"type": "entry", "message": message}))


def test_subscriber_reports_drops_before_the_next_entry_and_keeps_them_on_refilter() -> None:
    """A full queue counts drops; the count is sent just before the entry that follows
    them, and survives a filter change that removes queued entries."""

    async def scenario() -> list[str]:
        sub = Subscriber(Matcher(LogQuery()), sees_sensitive=False, capacity=2)
        for i, text in enumerate(["a", "b", "c", "d"]):  # c and d are dropped
            sub.deliver(_row(i, text))
        out = [await sub.next(1.0) or "", await sub.next(1.0) or ""]  # a, b
        sub.deliver(_row(5, "e"))
        sub.deliver(_row(6, "keep f"))
        sub.set_matcher(Matcher(LogQuery(search="keep")))  # e leaves the queue
        sub.send({"type": "pong"})
        while (message := await sub.next(0.05)) is not None:
            out.append(message)
        return out

    got = [json.loads(m) for m in asyncio.run(scenario())]
    assert [m.get("message", m["type"]) for m in got] == ["a", "b", "pong", "dropped", "keep f"]
    assert got[3]["count"] == 2


def test_a_viewer_subscriber_ignores_sensitive_rows() -> None:
    """A row marked sensitive never enters a viewer's queue, whatever its filter."""
    sub = Subscriber(Matcher(LogQuery()), sees_sensitive=False, capacity=5)
    row = _row(1, "secret")
    sub.deliver(Row(row.id, row.view, True, row.text))
    sub.deliver(_row(2, "plain"))
    assert [json.loads(asyncio.run(sub.next(0.05)) or "{}")["message"]] == ["plain"]


@pytest.mark.parametrize("server_settings", [{"rate_limit": 2}])
def test_filter_updates_count_against_the_rate_limit(live_server: LiveServer) -> None:
    """Each update is a request of the token: over the limit it is refused with an error
    and the filter stays; the connection stays open."""
    with tail(live_server, params={"logger": "nobody"}) as ws:
        subscribed(ws)
        ws.send(json.dumps({"type": "update_filter", "filter": {"logger": "rl.*"}}))
        assert recv(ws)["type"] == "filter_updated"
        ws.send(json.dumps({"type": "update_filter", "filter": {"logger": "other.*"}}))
        error = recv(ws)
        assert error["field"] == "filter"
        assert "rate limit" in error["error"]
        get_logger("rl.app").info("still rl")
        flush_logging()
        assert messages(until(ws, "rl.", "still rl")) == ["still rl"]


def test_resume_beyond_the_scan_limit_reports_an_approximate_count(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resume reads at most MAX_BACKFILL_SCAN rows; the ids left are reported as dropped
    (an upper bound, marked approximate)."""
    for name, value in (("MAX_BACKFILL", 1), ("MAX_BACKFILL_SCAN", 4), ("TAIL_BATCH", 2)):
        monkeypatch.setattr(stream_module, name, value)
    log = get_logger("scan.app")
    with tail(live_server, params={"logger": "scan.*"}) as ws:
        subscribed(ws)
        log.info("c0")
        flush_logging()
        cursor = until(ws, "scan.", "c0")[0]["cursor"]
    for i in range(1, 11):
        log.info(f"c{i}")
    live_server.wait_for(11, LogQuery(loggers=("scan.*",)))
    with tail(live_server, params={"logger": "scan.*", "after": cursor}) as ws:
        subscribed(ws)
        got = until(ws, "scan.", None)
    sent = messages(got)[:-1]  # the server's own records may fill the scan before c1
    assert sent in ([], ["c1"])
    assert got[-1]["approximate"] is True
    assert got[-1]["count"] >= 10 - len(sent)


def test_a_hub_of_a_loop_that_is_gone_is_replaced(tmp_path: Path) -> None:
    """Connections in one loop share its hub; a new loop (a test client's) gets a new one
    and the old one stops; closing the server stops the last."""
    state = ServerState(ServerSettings(directory=tmp_path / "logs"))

    async def twice() -> tuple[Hub, Hub]:
        return await asyncio.gather(get_hub(state), get_hub(state))

    first, same = asyncio.run(twice())
    assert first is same
    second, _ = asyncio.run(twice())
    assert second is not first
    assert first.stopped
    state.close()
    assert second.stopped
