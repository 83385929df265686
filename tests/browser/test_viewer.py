"""The web viewer in a real browser (Chromium via Playwright) against a real log server.

The test process logs with ``get_logger`` into the directory the ``live_server`` serves; the
page reads everything through the API with a token, as a user would. Each test leaves a
screenshot in ``artifacts/screenshots/<test name>.png``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import PageErrors, require_browser, sign_in

require_browser()

from playwright.sync_api import Dialog, Locator, Page, WebSocketRoute, expect  # noqa: E402

from plexichat.core.logging import configure_logging, flush_logging, get_logger  # noqa: E402
from plexichat.core.logging.metrics.history import HISTORY_LOGGER  # noqa: E402
from plexichat.core.logging.performance_logger import performance_logger  # noqa: E402
from plexichat.core.logging.security.encryption import write_key_file  # noqa: E402
from plexichat.core.logging.security.logger import get_security_logger  # noqa: E402
from plexichat.core.logging.server.auth import TokenStore  # noqa: E402
from plexichat.core.logging.store.base import LogQuery  # noqa: E402
from plexichat.core.logging.store.metrics import metric_history  # noqa: E402
from tests.server.conftest import LiveServer  # noqa: E402

LIVE_TIMEOUT_MS = 2000
"""A record logged after the page loaded must show in the live tail within this time."""


def unique(prefix: str) -> str:
    """A message no other test logs."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def reconfigure(live: LiveServer, **overrides: Any) -> None:
    """Configure logging again for the live server's directory, with ``overrides``."""
    configure_logging(directory=live.directory, console_enabled=False, level="DEBUG", **overrides)


def tail_row(page: Page, text: str) -> Locator:
    """The live-tail rows whose message contains ``text``."""
    return page.locator("#tail-list li.rec").filter(has=page.locator(".rec-msg", has_text=text))


def block(scope: Locator, title: str) -> Locator:
    """The detail section titled ``title`` (Context, Metadata, Performance data...)."""
    return scope.locator(".detail-block").filter(
        has=scope.page.get_by_role("heading", name=title, exact=True)
    )


# --- live tail ------------------------------------------------------------------------------


def test_a_record_logged_after_page_load_appears_in_the_live_tail(
    page: Page, live_server: LiveServer
) -> None:
    """The record shows within 2 s; the token never appears in a URL the page opens."""
    urls: list[str] = []
    page.on("websocket", lambda ws: urls.append(ws.url))
    page.on("request", lambda request: urls.append(request.url))
    sign_in(page, live_server)
    message = unique("live-tail")
    get_logger("app.browser").warning(message, user_id="u-42")
    row = tail_row(page, message)
    expect(row).to_be_visible(timeout=LIVE_TIMEOUT_MS)
    expect(row.locator(".lvl")).to_have_text("WARNING")
    expect(row.locator(".lvl")).to_have_class(re.compile(r"\blvl-warning\b"))
    expect(row.locator(".rec-logger")).to_have_text("app.browser")
    expect(page.locator("#role-badge")).to_have_text("role: admin")
    assert any("/stream" in url for url in urls)
    assert not any(live_server.tokens["admin"] in url for url in urls)


def test_changing_the_level_filter_changes_the_stream(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server)
    log = get_logger("app.filter")
    before = unique("info-before")
    log.info(before)
    expect(tail_row(page, before)).to_be_visible()

    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.locator("#tail-level").select_option("ERROR")
    expect(page.locator("#tail-list .notice-filter").first).to_contain_text("level ≥ ERROR")

    info, error = unique("info-after"), unique("error-after")
    log.info(info)
    log.error(error)
    expect(tail_row(page, error)).to_be_visible()
    flush_logging()
    expect(tail_row(page, info)).to_have_count(0)
    assert sockets == [], "a filter change must not open a new WebSocket"
    expect(page.locator("#tail-status")).to_have_attribute("data-state", "live")


def test_a_record_expands_to_its_context_metadata_and_exception(
    page: Page, live_server: LiveServer
) -> None:
    sign_in(page, live_server)
    message = unique("details")
    lookup: dict[str, int] = {}
    try:
        lookup["missing"]  # raise a real KeyError, with a traceback
    except KeyError:
        get_logger("app.details").exception(
            message,
            extra={
                "context": {"user_id": "u-7", "cart": {"items": [1, 2], "total": 9.5}},
                "metadata": {"request_id": "req-123"},
                "performance_data": {"duration_ms": 12.5},
            },
        )
    row = tail_row(page, message)
    expect(row).to_be_visible()
    summary = row.locator(".rec-summary")
    expect(summary).to_have_attribute("aria-expanded", "false")
    summary.click()
    expect(summary).to_have_attribute("aria-expanded", "true")
    details = row.locator(".rec-details")
    expect(details).to_be_visible()
    context = block(details, "Context")
    expect(context).to_contain_text('"user_id": "u-7"')
    expect(context).to_contain_text('"total": 9.5')
    expect(block(details, "Metadata")).to_contain_text('"request_id": "req-123"')
    expect(block(details, "Performance data")).to_contain_text('"duration_ms": 12.5')
    exception = details.locator(".exception")
    expect(exception.locator(".exc-head")).to_contain_text("KeyError")
    expect(exception).to_contain_text("missing")
    summary.click()
    expect(details).to_be_hidden()
    summary.click()
    expect(details).to_be_visible()


def test_pause_buffers_records_and_resume_shows_them(page: Page, live_server: LiveServer) -> None:
    # a viewer: an admin's tail also carries the audit records of the page's own reads
    sign_in(page, live_server, role="viewer")
    log = get_logger("app.pause")
    ready = unique("ready")  # once it shows, the records of the connection itself (uvicorn's
    log.info(ready)  # "connection open", logged before it) are shown too, not buffered
    expect(tail_row(page, ready)).to_be_visible()
    pause = page.locator("#tail-pause")
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "true")
    messages = [unique("paused") for _ in range(3)]
    for message in messages:
        log.info(message)
    expect(page.locator("#tail-paused")).to_contain_text("3 new records buffered")
    for message in messages:
        expect(tail_row(page, message)).to_have_count(0)
    pause.click()
    expect(pause).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#tail-paused")).to_be_hidden()
    for message in messages:
        expect(tail_row(page, message)).to_have_count(1)


def test_after_a_drop_the_tail_reconnects_and_resumes_without_gaps(
    page: Page, live_server: LiveServer
) -> None:
    """The socket is cut; records logged while it is down arrive after the reconnect
    (``?after=<last cursor>``), none twice; ``dropped`` notices are shown."""
    connections: list[WebSocketRoute] = []
    urls: list[str] = []

    def route(ws: WebSocketRoute) -> None:
        urls.append(ws.url)
        connections.append(ws)
        if len(connections) == 2:  # the first retry fails: a longer gap
            ws.close(code=4000, reason="test: server unreachable")
            return
        ws.connect_to_server()

    page.route_web_socket(re.compile(r".*/api/v2/logs/stream.*"), route)
    sign_in(page, live_server)
    log = get_logger("app.resume")
    first = unique("before-drop")
    log.info(first)
    expect(tail_row(page, first)).to_be_visible()

    connections[0].close(code=4000, reason="test: connection lost")
    expect(page.locator("#tail-status")).to_have_attribute("data-state", "retry")
    missed = [unique("while-down") for _ in range(3)]
    for message in missed:
        log.info(message)
    live_server.wait_for(4, LogQuery(loggers=("app.resume",)))

    expect(page.locator("#tail-status")).to_have_attribute("data-state", "live", timeout=10_000)
    for message in missed:
        expect(tail_row(page, message)).to_have_count(1)
    expect(tail_row(page, first)).to_have_count(1)
    assert len(urls) >= 3
    assert "after=" not in urls[0]
    assert all("after=" in url for url in urls[1:]), urls
    expect(page.locator("#tail-list .notice-warn").first).to_contain_text("Connection lost")

    connections[-1].send(json.dumps({"type": "dropped", "count": 5}))
    expect(page.locator("#tail-list .notice-warn").first).to_contain_text("5 records dropped")


# --- search -----------------------------------------------------------------------------------


def test_search_pages_with_load_more(page: Page, live_server: LiveServer) -> None:
    log = get_logger("app.paging")
    for number in range(30):
        log.info("paging item %02d", number, batch="b1")
    live_server.wait_for(30, LogQuery(loggers=("app.paging",)))
    sign_in(page, live_server)
    page.get_by_role("tab", name="Search").click()
    form = page.locator("#search-form")
    form.get_by_label("Logger").fill("app.paging")
    form.get_by_label("Context").fill("batch=b1")
    form.get_by_label("Page").select_option("25")
    form.get_by_label("Order").select_option("asc")
    form.get_by_role("button", name="Search").click()
    rows = page.locator("#search-list li.rec")
    expect(rows).to_have_count(25)
    expect(rows.first.locator(".rec-msg")).to_have_text("paging item 00")
    more = page.get_by_role("button", name="Load more")
    expect(more).to_be_visible()
    more.click()
    expect(rows).to_have_count(30)
    expect(rows.last.locator(".rec-msg")).to_have_text("paging item 29")
    expect(more).to_be_hidden()
    expect(page.locator("#search-summary")).to_have_text("30 records shown")


def test_an_admin_exports_the_searched_records(page: Page, live_server: LiveServer) -> None:
    log = get_logger("app.export")
    for number in range(3):
        log.info("exported line %d", number, shop="s1")
    log.info("not exported", shop="s2")
    live_server.wait_for(4, LogQuery(loggers=("app.export",)))
    sign_in(page, live_server, role="admin")
    page.get_by_role("tab", name="Search").click()
    form = page.locator("#search-form")
    form.get_by_label("Logger").fill("app.export")
    form.get_by_label("Context").fill("shop=s1")
    form.get_by_label("Export as").select_option("ndjson")
    with page.expect_download() as download_info:
        form.get_by_role("button", name="Export").click()
    download = download_info.value
    lines = [json.loads(line) for line in Path(download.path()).read_text().splitlines()]
    assert sorted(line["message"] for line in lines) == [f"exported line {n}" for n in range(3)]
    expect(page.locator("#search-error")).to_be_hidden()


def test_export_needs_the_admin_role(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, role="security")
    page.get_by_role("tab", name="Search").click()
    page.locator("#search-form").get_by_role("button", name="Export").click()
    expect(page.locator("#search-error")).to_contain_text("Export needs a token with role admin")


def test_search_reports_a_bad_query(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server)
    page.get_by_role("tab", name="Search").click()
    page.locator("#search-form").get_by_label("Search").fill('"unclosed')
    page.locator("#search-form").get_by_role("button", name="Search").click()
    expect(page.locator("#search-error")).to_be_visible()
    expect(page.locator("#search-error")).to_contain_text("search_query")


# --- escaping -------------------------------------------------------------------------------


def test_markup_in_records_renders_as_text(page: Page, live_server: LiveServer) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in(page, live_server)
    payload = "<img src=x onerror=alert(1)>"
    marker = unique("xss")
    get_logger("app.<b>xss</b>").error(
        f"{payload} {marker}",
        extra={"context": {"<svg onload=alert(2)>": "<script>alert(3)</script>"}},
    )
    row = tail_row(page, marker)
    expect(row).to_be_visible()
    expect(row.locator(".rec-msg")).to_have_text(f"{payload} {marker}")
    expect(row.locator(".rec-logger")).to_have_text("app.<b>xss</b>")
    row.locator(".rec-summary").click()
    expect(row.locator(".rec-details")).to_contain_text("<script>alert(3)</script>")
    expect(row.locator(".rec-details")).to_contain_text("<svg onload=alert(2)>")
    # Nothing from the record became markup: no element but the viewer's own.
    for tag in ("img", "script", "b"):
        assert page.locator(f"#tail-list {tag}").count() == 0, tag
    assert page.locator("#tail-list svg:not(.icon)").count() == 0
    html = row.locator(".rec-msg").evaluate("el => el.innerHTML")
    assert html.startswith("&lt;img src=x onerror=alert(1)&gt;")
    page.get_by_role("tab", name="Search").click()
    expect(page.locator("#search-list .rec-msg", has_text=marker)).to_have_text(
        f"{payload} {marker}"
    )
    assert page.locator("#search-list img").count() == 0
    assert dialogs == []


# --- encrypted fields -----------------------------------------------------------------------


def test_an_encrypted_field_decrypts_with_the_pasted_key(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    key_file = tmp_path / "field.key"
    key = write_key_file(key_file)
    key_text = key_file.read_text().strip()
    reconfigure(
        live_server,
        encrypt_fields=["context.card_holder", "metadata.*"],
        encryption_key_file=key_file,
    )
    requests: list[str] = []
    frames: list[str] = []
    page.on("request", lambda r: requests.append(f"{r.url} {r.post_data or ''}"))
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: frames.append(str(f))))
    sign_in(page, live_server)

    marker = unique("payment")
    get_logger("app.pay").info(
        marker,
        extra={
            "context": {"card_holder": "Ada Lovelace", "order_id": 7},
            "metadata": {"note": {"vip": True, "tier": "gold"}},
        },
    )
    row = tail_row(page, marker)
    expect(row).to_be_visible()
    row.locator(".rec-summary").click()
    context = block(row, "Context")
    chip = context.locator('.enc[data-path="context.card_holder"]')
    expect(chip).to_have_attribute("data-state", "locked")
    expect(chip).to_contain_text(f"encrypted (key {key.kid})")
    expect(context).to_contain_text('"order_id": 7')
    expect(row).not_to_contain_text("Ada Lovelace")

    # What the server holds is the envelope, not the plaintext.
    with live_server.client("admin") as client:
        entries = client.get("/entries", params={"search_query": marker}).json()["entries"]
    assert entries[0]["context"]["card_holder"]["$enc"] == "aes256gcm"
    assert "Ada Lovelace" not in json.dumps(entries)

    page.get_by_role("button", name="Decryption key").click()
    page.locator("#key-input").fill(key_text)
    page.locator("#key-form").get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_contain_text(key.kid)
    expect(chip).to_have_attribute("data-state", "decrypted")
    expect(chip).to_contain_text('"Ada Lovelace"')
    metadata = block(row, "Metadata")
    expect(metadata.locator('.enc[data-path="metadata.note"]')).to_contain_text('"tier": "gold"')
    expect(page.locator("#key-input")).to_have_value("")

    # The key was never sent anywhere, nor stored.
    assert not [r for r in requests if key_text in r]
    assert not [f for f in frames if key_text in f]
    stored = page.evaluate(
        "() => JSON.stringify([Object.entries(sessionStorage), Object.entries(localStorage)])"
    )
    assert key_text not in stored

    page.get_by_role("button", name="Forget key").click()
    expect(chip).to_have_attribute("data-state", "locked")
    expect(row).not_to_contain_text("Ada Lovelace")
    page.locator("#key-input").fill(key_text)
    page.locator("#key-input").press("Enter")
    expect(chip).to_have_attribute("data-state", "decrypted")


def test_a_wrong_key_leaves_the_field_locked(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    right, wrong = tmp_path / "right.key", tmp_path / "wrong.key"
    write_key_file(right)
    write_key_file(wrong)
    reconfigure(live_server, encrypt_fields=["context.secret_note"], encryption_key_file=right)
    sign_in(page, live_server)
    marker = unique("locked")
    get_logger("app.locked").info(marker, secret_note="the plan")
    row = tail_row(page, marker)
    expect(row).to_be_visible()
    row.locator(".rec-summary").click()
    page.get_by_role("button", name="Decryption key").click()
    page.locator("#key-input").fill("not base64 at all!")
    page.locator("#key-form").get_by_role("button", name="Use key").click()
    expect(page.locator("#key-status")).to_contain_text("not a base64 32-byte key")
    page.locator("#key-input").fill(wrong.read_text().strip())
    page.locator("#key-form").get_by_role("button", name="Use key").click()
    chip = row.locator('.enc[data-path="context.secret_note"]').first
    expect(chip).to_contain_text("no key with id")
    expect(row).not_to_contain_text("the plan")


# --- roles ----------------------------------------------------------------------------------


def test_a_viewer_token_does_not_see_security_records(page: Page, live_server: LiveServer) -> None:
    security = get_security_logger()
    security.log_login_attempt("mallory-before", "203.0.113.9", False)
    visible = unique("viewer-visible")
    get_logger("app.viewer").info(visible)
    live_server.wait_for(1, LogQuery(loggers=("app.viewer",)))
    live_server.wait_for(1, LogQuery(categories=("security",)))

    sign_in(page, live_server, role="viewer")
    expect(page.locator("#role-badge")).to_have_text("role: viewer")
    security.log_login_attempt("mallory-live", "203.0.113.10", False)
    after = unique("viewer-after")
    get_logger("app.viewer").info(after)
    expect(tail_row(page, after)).to_be_visible()
    expect(page.locator("#tail-list")).not_to_contain_text("mallory")
    expect(page.locator("#tail-list .lvl-security")).to_have_count(0)

    page.get_by_role("tab", name="Search").click()
    expect(page.locator("#search-list .rec-msg", has_text=visible)).to_be_visible()
    expect(page.locator("#search-list")).not_to_contain_text("mallory")
    expect(page.locator("#search-list .lvl-security")).to_have_count(0)

    page.get_by_role("tab", name="Security").click()
    denied = page.locator("#security-denied")
    expect(denied).to_be_visible()
    expect(denied).to_contain_text("role security")
    expect(page.locator("#security-form")).to_be_hidden()
    expect(page.locator("#security-list li")).to_have_count(0)


def test_a_security_token_sees_security_events(page: Page, live_server: LiveServer) -> None:
    get_security_logger().log_login_attempt("eve-sec", "198.51.100.4", False)
    live_server.wait_for(1, LogQuery(categories=("security",)))
    sign_in(page, live_server, role="security")
    page.get_by_role("tab", name="Security").click()
    expect(page.locator("#security-denied")).to_be_hidden()
    rows = page.locator("#security-list li.rec")
    expect(rows.first).to_be_visible()
    rows.first.locator(".rec-summary").click()
    expect(rows.first.locator(".rec-details")).to_contain_text("eve-sec")
    expect(rows.first.locator(".rec-details")).to_contain_text("login_failure")


# --- sign-in --------------------------------------------------------------------------------


def test_a_bad_token_shows_the_servers_message_and_sign_out_clears_the_token(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(live_server.url + "/")
    page.locator("#token-input").fill("plx_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#login-error")).to_contain_text("unknown or revoked API token")
    expect(page.locator("#tabs")).to_be_hidden()

    sign_in(page, live_server, role="viewer")
    assert page.evaluate("() => sessionStorage.length") == 1
    page.reload()  # the token is kept for the tab
    expect(page.locator("#tail-status")).to_have_attribute("data-state", "live")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#tabs")).to_be_hidden()
    assert page.evaluate("() => sessionStorage.length") == 0


def test_a_revoked_token_brings_the_sign_in_form_back(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, role="admin")
    TokenStore.for_directory(live_server.directory).revoke("test-admin")
    page.get_by_role("tab", name="Search").click()
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#login-error")).to_contain_text("revoked")
    expect(page.locator("#tail-status")).to_have_attribute("data-state", "off")


# --- metrics and stats ----------------------------------------------------------------------


def _wait_for_history(live: LiveServer, names: list[str], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        flush_logging()
        found = metric_history(live.state.store, names, start=time.time() - 3600)
        if all(found.get(n, {}).get("points") for n in names):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"metric history of {names} not stored after {timeout} s: {sorted(found)}")
        time.sleep(0.1)


def test_metric_charts_are_drawn_as_svg(page: Page, live_server: LiveServer) -> None:
    reconfigure(
        live_server,
        performance_enabled=True,
        performance_interval=0.2,
        metrics_history_interval=0.3,
    )
    for step in range(5):  # a few history intervals, so the lines have several points
        for value in (0.012, 0.020, 0.035, 0.050, 0.180, 0.400):
            performance_logger.record_metric(
                "http_request_duration_seconds", value * (1 + step / 4), "seconds"
            )
        for depth in (3, 7, 12, 5):
            performance_logger.record_metric("queue_depth", depth + step, "count")
        time.sleep(0.5)
    names = ["cpu_usage", "memory_usage", "http_request_duration_seconds", "queue_depth"]
    _wait_for_history(live_server, names)
    live_server.wait_for(4, LogQuery(loggers=(HISTORY_LOGGER,)))

    sign_in(page, live_server)
    page.get_by_role("tab", name="Metrics").click()
    page.locator("#metrics-range").select_option("60")
    for chart in ("#chart-cpu", "#chart-memory", "#chart-latency"):
        expect(page.locator(f"{chart} svg.chart-svg path.line").first).to_be_attached()
    latency = page.locator("#chart-latency svg.chart-svg g.series")
    expect(latency).to_have_count(3)
    assert [latency.nth(i).get_attribute("data-series") for i in range(3)] == ["p50", "p95", "p99"]
    expect(page.locator("#chart-latency .legend")).to_contain_text("p99")
    expect(page.locator("#chart-cpu figcaption")).to_contain_text("cpu_usage")

    custom = page.locator("#metrics-custom")
    expect(custom.locator("option", has_text="queue_depth")).to_be_attached()
    custom.select_option("queue_depth")
    expect(page.locator("#chart-custom svg.chart-svg path.line").first).to_be_attached()
    expect(page.locator("#chart-custom figcaption")).to_contain_text("queue_depth")
    expect(page.locator("#metrics-updated")).to_contain_text("Updated")


def test_stats_overview_and_integrity_badge(page: Page, live_server: LiveServer) -> None:
    log = get_logger("app.stats")
    for number in range(4):
        log.info("checkout %d done", number)
    log.error("payment failed for order 1")
    log.error("payment failed for order 2")
    live_server.wait_for(6, LogQuery(loggers=("app.stats",)))
    with httpx.Client(
        base_url=live_server.api,
        headers={"Authorization": f"Bearer {live_server.tokens['viewer']}"},
    ) as client:
        status = client.get("/stats").json()["integrity"]["status"]

    sign_in(page, live_server, role="viewer", path="/api/v2/logs/ui")
    badge = page.locator("#integrity-badge")
    expect(badge).to_have_attribute("data-status", status)
    expect(badge).to_contain_text("Integrity")
    page.get_by_role("tab", name="Stats").click()
    expect(page.locator("#stats-tiles .tile")).to_have_count(6)
    expect(page.locator("#stats-tiles")).to_contain_text("Error rate")
    expect(page.locator("#stats-levels")).to_contain_text("ERROR")
    expect(page.locator("#stats-categories")).to_contain_text("system")
    expect(page.locator("#stats-buckets svg rect").first).to_be_attached()
    expect(page.locator("#stats-updated")).to_contain_text("Updated")


def test_an_admin_verifies_integrity_from_the_stats_page(
    page: Page, live_server: LiveServer
) -> None:
    get_logger("app.integrity").info("a record to verify")
    live_server.wait_for(1, LogQuery(loggers=("app.integrity",)))
    sign_in(page, live_server, role="admin")
    badge = page.locator("#integrity-badge")
    expect(badge).to_have_attribute("data-status", "not_checked")
    page.get_by_role("tab", name="Stats").click()
    page.get_by_role("button", name="Verify integrity now").click()
    expect(badge).to_have_attribute("data-status", "ok", timeout=30_000)
    expect(badge).to_have_text("Integrity OK")
    expect(badge).to_have_attribute("title", re.compile(r"checked .* 0 findings"))


def test_a_viewer_cannot_start_an_integrity_check(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, role="viewer")
    page.get_by_role("tab", name="Stats").click()
    expect(page.locator("#stats-tiles .tile").first).to_be_visible()
    expect(page.get_by_role("button", name="Verify integrity now")).to_be_hidden()


def test_the_page_is_usable_in_the_dark_theme(
    page: Page, live_server: LiveServer, page_errors: PageErrors
) -> None:
    page.emulate_media(color_scheme="dark")
    sign_in(page, live_server)
    message = unique("dark")
    get_logger("app.dark").error(message, user_id="u-1")
    expect(tail_row(page, message)).to_be_visible()
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 23)"
    theme = page.locator("#theme-toggle")
    expect(theme).to_have_accessible_name(re.compile("Auto"))
    theme.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    light = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert light == "rgb(246, 247, 249)"
    theme.click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.reload()  # the chosen theme is kept (it is not data, so localStorage is fine)
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("#tail-status")).to_have_attribute("data-state", "live")
    page_errors.check()
