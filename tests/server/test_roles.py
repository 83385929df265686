"""Who may call what: the role matrix, the viewer's blind spot, servers without tokens,
``insecure_no_auth`` and the rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from plexichat.core.logging import get_logger
from plexichat.core.logging.log_api import ServerSettings, create_app
from plexichat.core.logging.security_logger import get_audit_logger, get_security_logger
from plexichat.core.logging.server.auth import TokenStore
from plexichat.core.logging.store.base import LogQuery, is_sensitive
from tests.integrations.servers import serve_asgi
from tests.server.conftest import API, LiveServer

EXPORT_BODY = {"format": "ndjson", "level": "CRITICAL"}
ENDPOINTS: list[tuple[str, str, str | None]] = [
    ("GET", "/health", None),
    ("GET", "/entries", "viewer"),
    ("GET", "/performance/metrics", "viewer"),
    ("GET", "/stats", "viewer"),
    ("GET", "/metrics", "viewer"),
    ("GET", "/whoami", "viewer"),
    ("GET", "/security/events", "security"),
    ("POST", "/export", "admin"),
    ("GET", "/integrity", "admin"),
    ("GET", "/config", "admin"),
]
RANK = {"viewer": 0, "security": 1, "admin": 2}
CALLERS = ["none", "bad", "revoked", "viewer", "security", "admin"]


def _call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    if method == "POST":
        return client.post(path, json=EXPORT_BODY)
    return client.get(path)


def _expected(caller: str, needed: str | None) -> int:
    if needed is None:
        return 200
    if caller in ("none", "bad", "revoked"):
        return 401
    return 200 if RANK[caller] >= RANK[needed] else 403


@pytest.fixture
def clients(live_server: LiveServer) -> Iterator[dict[str, httpx.Client]]:
    """One client per caller kind: no token, a bad one, a revoked one and each role."""
    store = TokenStore.for_directory(live_server.directory)
    revoked, _ = store.create("admin", name="revoked-admin")
    store.revoke("revoked-admin")
    headers = {
        "bad": {"Authorization": "Bearer plx_not-a-real-token"},
        "revoked": {"Authorization": f"Bearer {revoked}"},
        **{r: {"Authorization": f"Bearer {live_server.tokens[r]}"} for r in RANK},
    }
    out = {
        name: httpx.Client(base_url=live_server.api, headers=headers.get(name, {}), timeout=30)
        for name in CALLERS
    }
    yield out
    for client in out.values():
        client.close()


def test_role_matrix(clients: dict[str, httpx.Client]) -> None:
    """Every caller kind against every endpoint gets exactly the expected status; 401s say
    what to do and carry WWW-Authenticate, 403s name the role needed."""
    failures = []
    for method, path, needed in ENDPOINTS:
        for caller in CALLERS:
            response = _call(clients[caller], method, path)
            expected = _expected(caller, needed)
            if response.status_code != expected:
                failures.append(f"{caller} {method} {path}: {response.status_code} != {expected}")
                continue
            if expected == 401:
                assert response.headers["www-authenticate"] == "Bearer"
                detail = response.json()["detail"]
                assert ("missing API token" if caller == "none" else "unknown or revoked") in detail
            if expected == 403:
                assert f"this needs {needed!r}" in response.json()["detail"]
    assert failures == []


@pytest.fixture
def sensitive(live_server: LiveServer) -> LiveServer:
    """Security events and audit records whose words also appear in ordinary records."""
    security = get_security_logger()
    security.log_login_attempt("secret-user", "10.9.9.9", success=False)
    security.log_event("privilege_escalation", "CRITICAL", user_id="secret-user")
    get_audit_logger().log({"user_id": "secret-user"}, "delete", "user:42", "success")
    get_logger("app").warning("login failure page shown", user_id="secret-user")
    live_server.wait_for(2, LogQuery(categories=("security",)))
    live_server.wait_for(1, LogQuery(categories=("audit",)))
    live_server.wait_for(1, LogQuery(loggers=("app",)))
    return live_server


VIEWER_PROBES: list[dict[str, Any]] = [
    {},
    {"category": "security"},
    {"category": "audit"},
    {"category": "security,audit,system"},
    {"levels": "SECURITY,AUDIT"},
    {"level": "SECURITY"},
    {"logger": ["plexichat.security", "plexichat.audit"]},
    {"logger": "plexichat.*"},
    {"search_query": "login_failure"},
    {"search_query": "Security event"},
    {"search_query": "login OR failure OR escalation OR delete"},
    {"search_query": '"privilege_escalation"'},
    {"context.user_id": "secret-user"},
    {"metadata.event_type": "login_failure"},
    {"metadata.action": "delete"},
    {"order": "asc", "limit": 1000},
]


@pytest.mark.parametrize("params", VIEWER_PROBES)
def test_viewer_never_sees_security_or_audit_records(
    sensitive: LiveServer, params: dict[str, Any]
) -> None:
    """Whatever the filter, the viewer's entries hold no security or audit record, while
    the admin's (same filter) show they exist where the filter matches them."""
    with sensitive.client("viewer") as viewer, sensitive.client("admin") as admin:
        seen = viewer.get("/entries", params=params)
        full = admin.get("/entries", params=params)
    assert seen.status_code == 200
    assert full.status_code == 200
    entries = seen.json()["entries"]
    assert not [e for e in entries if is_sensitive(e)]
    for entry in entries:
        assert entry["category"] not in ("security", "audit")
        assert not str(entry["message"]).startswith("Security event")
        assert "event_type" not in entry.get("metadata", {})
    hidden = [e for e in full.json()["entries"] if is_sensitive(e)]
    assert len(entries) == len(full.json()["entries"]) - len(hidden)


def test_viewer_probe_data_exists_for_admin(sensitive: LiveServer) -> None:
    """The probes above are meaningful: the admin finds the sensitive records with them."""
    with sensitive.client("admin") as admin:
        found = admin.get("/entries", params={"context.user_id": "secret-user"}).json()
    categories = sorted(e["category"] for e in found["entries"])
    assert categories.count("security") >= 2
    assert "system" in categories


@contextmanager
def _server(directory: Path, **settings: Any) -> Iterator[str]:
    app = create_app(ServerSettings(directory=directory, index_interval=0.05, **settings))
    with serve_asgi(app, lifespan="on") as url:
        yield url + API


def test_server_without_tokens_refuses_everything_but_health(tmp_path: Path) -> None:
    """No token exists: 401 everywhere (with or without a header), saying how to create
    one; /health still answers."""
    with _server(tmp_path / "empty") as api, httpx.Client(base_url=api, timeout=30) as c:
        for method, path, needed in ENDPOINTS:
            for headers in ({}, {"Authorization": "Bearer plx_anything"}):
                if method == "POST":
                    response = c.post(path, json=EXPORT_BODY, headers=headers)
                else:
                    response = c.get(path, headers=headers)
                if needed is None:
                    assert response.status_code == 200
                    continue
                assert response.status_code == 401, path
                assert "plexichat-logs token create" in response.json()["detail"]


def test_insecure_no_auth_admits_anonymously(tmp_path: Path) -> None:
    """``insecure_no_auth`` (loopback only): every route answers without a token, as admin."""
    with (
        _server(tmp_path / "open", insecure_no_auth=True) as api,
        httpx.Client(base_url=api, timeout=30) as c,
    ):
        for method, path, _ in ENDPOINTS:
            assert _call(c, method, path).status_code == 200, path
        assert c.get("/whoami").json()["role"] == "admin"


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    """Over the per-token limit: 429 with Retry-After (seconds) and a message naming it;
    another token has its own budget."""
    directory = tmp_path / "limited"
    store = TokenStore.for_directory(directory)
    first, _ = store.create("viewer", name="busy")
    second, _ = store.create("viewer", name="calm")
    with _server(directory, rate_limit=3) as api:
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {first}"}) as c:
            statuses = [c.get("/whoami").status_code for _ in range(4)]
            limited = c.get("/entries")
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {second}"}) as c:
            other = c.get("/whoami")
    assert statuses == [200, 200, 200, 429]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "rate limit of 3 requests per minute" in limited.json()["detail"]
    assert other.status_code == 200
