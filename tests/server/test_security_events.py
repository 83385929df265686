"""``GET /security/events``: severity, type, user and address filters, paging and auditing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from plexichat.core.logging import configure_logging, get_logger
from plexichat.core.logging.security_logger import get_audit_logger, get_security_logger
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import LiveServer

EVENTS = (
    ("data_access", "LOW", "alice", "10.0.0.1"),
    ("permission_denied", "MEDIUM", "bob", "10.0.0.2"),
    ("sql_injection_attempt", "HIGH", "mallory", "203.0.113.9"),
    ("key_compromise", "CRITICAL", "mallory", "203.0.113.9"),
    ("audit_log_tampering", "EMERGENCY", "eve", "198.51.100.7"),
)


@pytest.fixture
def events(live_server: LiveServer) -> LiveServer:
    """Five security events of rising severity, an ordinary record and an audit record."""
    security = get_security_logger()
    for event_type, severity, user, ip in EVENTS:
        security.log_event(event_type, severity, user_id=user, ip_address=ip)
    get_logger("app").error("Security event lookalike", user_id="mallory")
    get_audit_logger().log("admin", "update", "config/logging", "success")
    live_server.wait_for(len(EVENTS), LogQuery(categories=("security",)))
    live_server.wait_for(1, LogQuery(categories=("audit",)))
    return live_server


def _events(client: httpx.Client, path: str = "/security/events", **params: Any) -> list[Any]:
    response = client.get(path, params=params or None)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"events", "next_cursor"}
    events: list[Any] = body["events"]
    return events


def _types(events: list[dict[str, Any]]) -> list[str]:
    return [e["metadata"]["event_type"] for e in events]


def test_spec_request_verbatim(events: LiveServer) -> None:
    """``severity=HIGH&start_time=2024-01-01T00:00:00Z``: HIGH and above, newest first."""
    with events.client("security") as c:
        found = _events(c, "/security/events?severity=HIGH&start_time=2024-01-01T00:00:00Z")
    assert _types(found) == ["audit_log_tampering", "key_compromise", "sql_injection_attempt"]
    assert all(e["category"] == "security" and e["level"] == "SECURITY" for e in found)


def test_only_security_events_are_returned(events: LiveServer) -> None:
    """No filter: every security event, neither ordinary nor audit records."""
    with events.client("security") as c:
        found = _events(c)
    assert sorted(_types(found)) == sorted(e[0] for e in EVENTS)
    assert {e["category"] for e in found} == {"security"}


def test_filters(events: LiveServer) -> None:
    """event_type (repeated, comma, any case), user_id, ip_address and the time range."""
    with events.client("admin") as c:
        found = _events(c, event_type=["DATA_ACCESS", "key_compromise"])
        assert _types(found) == ["key_compromise", "data_access"]
        found = _events(c, event_type="permission_denied,data_access", order="asc")
        assert _types(found) == ["data_access", "permission_denied"]
        found = _events(c, user_id="mallory")
        assert _types(found) == ["key_compromise", "sql_injection_attempt"]
        assert _types(_events(c, ip_address="198.51.100.7")) == ["audit_log_tampering"]
        assert _types(_events(c, user_id="mallory", severity="critical")) == ["key_compromise"]
        assert _events(c, user_id="nobody") == []
        assert _events(c, end_time="2024-01-01T00:00:00Z") == []
        assert _events(c, event_type="no_such_type") == []
        assert _types(_events(c, search_query="tampering")) == ["audit_log_tampering"]


def test_pages_with_cursor(events: LiveServer) -> None:
    """Two at a time: three pages, every event once."""
    seen: list[str] = []
    cursor = None
    with events.client("security") as c:
        for _ in range(3):
            params: dict[str, Any] = {"limit": 2}
            if cursor:
                params["cursor"] = cursor
            body = c.get("/security/events", params=params).json()
            seen.extend(_types(body["events"]))
            cursor = body["next_cursor"]
        bad = c.get("/security/events", params={"cursor": "x" * 50})
    assert cursor is None
    assert sorted(seen) == sorted(e[0] for e in EVENTS)
    assert bad.status_code == 400
    assert "unknown cursor" in bad.json()["detail"]


def test_invalid_severity_names_allowed_values(events: LiveServer) -> None:
    """422 naming ``severity`` and listing the scale; a bad time names its parameter."""
    with events.client("security") as c:
        response = c.get("/security/events", params={"severity": "SEVERE"})
        bad_time = c.get("/security/events", params={"start_time": "yesterday"})
        bad_user = c.get("/security/events", params={"user_id": "x" * 1001})
    assert response.status_code == 422
    (item,) = response.json()["detail"]
    assert item["loc"] == ["query", "severity"]
    assert "LOW, MEDIUM, HIGH, CRITICAL, EMERGENCY" in item["msg"]
    assert bad_time.json()["detail"][0]["loc"] == ["query", "start_time"]
    assert bad_user.json()["detail"][0]["loc"] == ["query", "user_id"]


def test_every_read_is_audited_with_the_token_name(events: LiveServer) -> None:
    """Each call (even an empty answer) writes an audit record naming the token, the
    filters and the count."""
    with events.client("security") as c:
        _events(c, severity="HIGH", user_id="mallory")
        _events(c, user_id="nobody")
    query = LogQuery(categories=("audit",), where=(("metadata.resource", "security/events"),))
    events.wait_for(2, query)
    records = events.state.store.query(query).entries
    assert len(records) == 2
    for record in records:
        meta = record["metadata"]
        assert meta["action"] == "read"
        assert meta["outcome"] == "success"
        assert meta["details"]["token_name"] == "test-security"
        assert meta["actor"]["role"] == "security"
    counts = {r["metadata"]["details"]["filters"]["user_id"]: r for r in records}
    assert counts["mallory"]["metadata"]["details"]["count"] == 2
    assert counts["mallory"]["metadata"]["details"]["filters"]["severity"] == "HIGH"
    assert counts["nobody"]["metadata"]["details"]["count"] == 0
    assert all(r["metadata"]["actor"]["token_name"] == "test-security" for r in records)


def test_reads_are_audited_even_with_the_apps_audit_trail_off(live_server: LiveServer) -> None:
    """The server's access audit does not depend on the application's audit_enabled."""
    configure_logging(directory=live_server.directory, console_enabled=False, audit_enabled=False)
    get_audit_logger().log("app", "update", "x", "success")  # the app's own: off
    with live_server.client("security") as c:
        _events(c)
    with live_server.client("admin") as c:
        assert c.post("/export", json={"format": "ndjson"}).status_code == 200
    query = LogQuery(categories=("audit",))
    live_server.wait_for(2, query)
    found = {r["metadata"]["resource"] for r in live_server.state.store.query(query).entries}
    assert found == {"security/events", "logs/export"}
