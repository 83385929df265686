"""``/stats``, ``/integrity``, ``/health``, ``/metrics``, ``/config`` and ``/whoami``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import plexichat.core.logging.integrity as integrity_package
from plexichat.core.logging import configure_logging, get_logger
from plexichat.core.logging.metrics.registry import get_registry
from plexichat.core.logging.security_logger import get_audit_logger, get_security_logger
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import LiveServer


@pytest.fixture
def mixed(live_server: LiveServer) -> LiveServer:
    """Ordinary records, security events and an audit record with telling messages."""
    log = get_logger("web")
    for i in range(4):
        log.error("upstream 502 from node %d", i)
    log.info("started")
    get_security_logger().log_event("key_compromise", "CRITICAL", user_id="root")
    get_audit_logger().log("ops", "rotate", "secret-vault", "success")
    live_server.wait_for(5, LogQuery(loggers=("web",)))
    live_server.wait_for(1, LogQuery(categories=("security",)))
    live_server.wait_for(1, LogQuery(categories=("audit",)))
    return live_server


def _stats(live: LiveServer, role: str, **params: Any) -> dict[str, Any]:
    with live.client(role) as c:
        response = c.get("/stats", params=params or None)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"store", "window", "pipeline", "indexer", "integrity"}
    return body


def test_stats_parts(mixed: LiveServer) -> None:
    """Store counts, window buckets and patterns, pipeline, indexer, integrity not checked."""
    body = _stats(mixed, "admin", window=3600, bucket="minute")
    assert body["store"]["records"] >= 7
    assert body["store"]["levels"]["SECURITY"] == 1
    window = body["window"]
    assert window["bucket"] == "minute"
    assert window["records"] >= 7
    assert sum(window["buckets"].values()) == window["records"]
    assert 0 < window["error_rate"] < 1
    top = {(p["level"], p["pattern"]): p["count"] for p in window["top_patterns"]}
    assert top[("ERROR", "upstream <n> from node <n>")] == 4
    pipeline = body["pipeline"]
    assert pipeline["configured"] is True
    assert pipeline["records_total"] >= 7
    assert {"dropped_total", "queue_depth", "queue_capacity", "bytes_written"} <= set(pipeline)
    assert pipeline["dropped_total"] == 0
    assert body["indexer"]["running"] is True
    assert set(body["indexer"]["last_pass"]) == {
        "records", "duplicates", "malformed", "oversized", "segments", "errors",
    }  # fmt: skip
    assert body["indexer"]["ingestion_lag_seconds"] >= 0
    assert body["integrity"] == {"status": "not_checked"}


def test_stats_for_the_viewer_hide_security_and_audit(mixed: LiveServer) -> None:
    """The viewer's stats hold no security or audit pattern, logger, level, category, count,
    time or indexer figure (a SECURITY record under an ordinary logger and category too);
    the security role's do."""
    get_logger("hr.payroll.fraud").security("payroll diverted")  # category system
    mixed.wait_for(1, LogQuery(loggers=("hr.payroll.fraud",)))
    viewer = _stats(mixed, "viewer")
    text = json.dumps(viewer)
    for word in (
        "key_compromise", "Security event", "rotate", "secret-vault", "plexichat.audit",
        "hr.payroll", "payroll diverted", "SECURITY", "AUDIT", "last_pass",
    ):  # fmt: skip
        assert word not in text, word
    store = mixed.state.store
    visible = store.count(LogQuery(exclude_security=True))
    assert viewer["store"]["records"] == visible < store.count(LogQuery())
    newest_visible = store.query(LogQuery(exclude_security=True, limit=1)).entries[0]
    assert viewer["store"]["last"] == newest_visible["timestamp"]
    assert viewer["window"]["records"] == visible
    assert set(viewer["integrity"]) == {"status"}
    security = _stats(mixed, "security")
    patterns = [p["pattern"] for p in security["window"]["top_patterns"]]
    assert any("key_compromise" in p for p in patterns)
    assert security["store"]["categories"]["audit"] >= 1
    assert security["store"]["loggers"]["hr.payroll.fraud"] == 1
    assert security["pipeline"]["records"]["SECURITY"] >= 1


def test_stats_parameters(live_server: LiveServer) -> None:
    """window is 60..31 days; bucket minute/hour/day; too many buckets is refused."""
    with live_server.client("viewer") as c:
        cases: list[tuple[dict[str, str | int], str]] = [
            ({"window": 10}, "window"),
            ({"bucket": "week"}, "bucket"),
            ({"window": 31 * 86400, "bucket": "minute"}, "window"),
        ]
        for params, loc in cases:
            response = c.get("/stats", params=params)
            assert response.status_code == 422, params
            assert response.json()["detail"][0]["loc"] == ["query", loc]
        assert c.get("/stats", params={"window": 7 * 86400, "bucket": "day"}).status_code == 200


def _first_segment(directory: Path) -> Path:
    (segment,) = sorted(directory.glob("*.jsonl"))[:1]
    return segment


def test_integrity_report_cache_refresh_and_stats(mixed: LiveServer) -> None:
    """The first call verifies; later calls return the cached report until refresh=true;
    /stats shows the summary; tampering shows up as failed with findings; audited."""
    with mixed.client("admin") as c:
        first = c.get("/integrity").json()
        assert first["status"] == "ok"
        assert first["findings"] == 0
        assert first["report"]["ok"] is True
        assert first["records"] >= 7
        again = c.get("/integrity").json()
        assert again["checked_at"] == first["checked_at"]
        summary = _stats(mixed, "viewer")["integrity"]
        assert summary["status"] == "ok"
        assert "report" not in summary
        segment = _first_segment(mixed.directory)
        data = segment.read_bytes()
        assert b"upstream 502 from node 1" in data
        segment.write_bytes(data.replace(b"upstream 502 from node 1", b"upstream 503 from node 1"))
        tampered = c.get("/integrity", params={"refresh": "true"}).json()
    assert tampered["status"] == "failed"
    assert tampered["findings_by_kind"].get("MODIFIED", 0) >= 1
    assert any(f["kind"] == "MODIFIED" for f in tampered["report"]["findings"])
    assert _stats(mixed, "admin")["integrity"]["status"] == "failed"
    query = LogQuery(categories=("audit",), where=(("metadata.resource", "integrity"),))
    mixed.wait_for(3, query)
    actions = sorted(e["metadata"]["action"] for e in mixed.state.store.query(query).entries)
    assert actions == ["read", "verify", "verify"]


def test_integrity_without_a_key_reports_the_error(live_server: LiveServer) -> None:
    """No key anywhere: status error with the verifier's explanation (still 200)."""
    get_logger("web").info("keys exist once something was written")
    live_server.wait_for(1, LogQuery(loggers=("web",)))
    keys = list((live_server.directory / "keys").glob("auditor*"))
    assert keys
    for key in keys:
        key.unlink()
    with live_server.client("admin") as c:
        body = c.get("/integrity").json()
    assert body["status"] == "error", body
    assert "key" in body["error"]
    assert body["report"] is None


def test_one_verification_at_a_time(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent refreshes never run two verifications at once."""
    running = 0
    most = 0
    lock = threading.Lock()
    real = integrity_package.verify_directory

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(0.05)
            return real(*args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(integrity_package, "verify_directory", counting)
    statuses: list[int] = []

    def call() -> None:
        with live_server.client("admin") as c:
            statuses.append(c.get("/integrity", params={"refresh": "true"}).status_code)

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 6
    assert most == 1


def test_health_needs_no_token_and_tells_nothing_else(live_server: LiveServer) -> None:
    """200 ok with the version and the store's state; 503 degraded when the store fails."""
    from plexichat.core.logging import __version__

    with live_server.client(None) as c:
        response = c.get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "version": __version__, "store": "ok"}
        store = live_server.state.store

        def broken(query: LogQuery) -> Any:
            raise OSError("disk gone")

        store.query = broken  # type: ignore[method-assign]
        try:
            down = c.get("/health")
        finally:
            del store.query
    assert down.status_code == 503
    assert down.json() == {"status": "degraded", "version": __version__, "store": "unavailable"}


def test_prometheus_metrics(live_server: LiveServer) -> None:
    """The text exposition with its content type; recorded metrics appear."""
    get_registry().counter("api_test_hits").inc(3)
    try:
        with live_server.client("viewer") as c:
            response = c.get("/metrics")
    finally:
        get_registry().clear()
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE api_test_hits" in response.text
    assert "api_test_hits_total 3.0" in response.text


def test_config_masks_secrets_and_is_audited(live_server: LiveServer) -> None:
    """Secrets are masked, every setting has its source, no token hash is shown."""
    configure_logging(
        alert_smtp_password="hunter2-very-secret",
        alert_webhook_url="https://hooks.example.com/T000/secret-path",
    )
    with live_server.client("admin") as c:
        response = c.get("/config")
    assert response.status_code == 200
    text = response.text
    assert "hunter2-very-secret" not in text
    assert "secret-path" not in text
    body = response.json()
    logging = body["logging"]
    assert logging["alert_smtp_password"] == {"value": "**********", "source": "code"}
    assert logging["level"] == {"value": "DEBUG", "source": "code"}
    assert body["server"]["directory"] == str(live_server.directory)
    assert {t["name"] for t in body["server"]["tokens"]} >= {"test-viewer", "test-admin"}
    stored = json.loads((live_server.directory / "api-tokens.json").read_text())
    for token in stored["tokens"]:
        assert token["hash"] not in text
    for token in live_server.tokens.values():
        assert token not in text
    query = LogQuery(categories=("audit",), where=(("metadata.resource", "config"),))
    live_server.wait_for(1, query)


def test_whoami(live_server: LiveServer) -> None:
    """The token's name and role."""
    for role in ("viewer", "security", "admin"):
        with live_server.client(role) as c:
            assert c.get("/whoami").json() == {"name": f"test-{role}", "role": role}
