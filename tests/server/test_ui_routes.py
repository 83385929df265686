"""The web viewer's routes: the page and its assets at both paths, headers, no traversal."""

from __future__ import annotations

import http.client
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import NoMatchFound

from plexichat.core.logging.log_api import create_app
from plexichat.core.logging.server import ui
from plexichat.core.logging.server.router import router
from tests.integrations.servers import serve_asgi
from tests.server.conftest import LiveServer

PAGE_PATHS = ("/", "/api/v2/logs/ui")
ASSETS = {
    "viewer.js": "text/javascript",
    "api.js": "text/javascript",
    "crypto.js": "text/javascript",
    "charts.js": "text/javascript",
    "viewer.css": "text/css",
    "favicon.svg": "image/svg+xml",
}


def _check_security_headers(response: httpx.Response) -> None:
    csp = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]  # same-origin ws: only
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in csp
    assert "'unsafe-eval'" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_page_is_served_at_both_paths_without_a_token(live_server: LiveServer, path: str) -> None:
    response = httpx.get(live_server.url + path, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    _check_security_headers(response)
    page = response.text
    assert '<meta name="plexichat-api-base" content="/api/v2/logs">' in page
    assert 'src="/api/v2/logs/ui/static/viewer.js?v=' in page
    assert 'href="/api/v2/logs/ui/static/viewer.css?v=' in page
    # No inline script or inline handlers: the CSP would block them anyway.
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert not re.search(r"\son[a-z]+=", page)
    assert "__API_BASE__" not in page
    assert "__STATIC_BASE__" not in page


@pytest.mark.parametrize(("name", "content_type"), sorted(ASSETS.items()))
def test_assets_have_their_content_type_and_headers(
    live_server: LiveServer, name: str, content_type: str
) -> None:
    response = httpx.get(f"{live_server.api}/ui/static/{name}", timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == content_type
    _check_security_headers(response)
    assert response.content == (ui.STATIC_DIR / name).read_bytes()


def test_every_module_the_page_imports_is_served(live_server: LiveServer) -> None:
    """Each ``import ... from "./x.js"`` of every script resolves to a served asset."""
    with httpx.Client(base_url=live_server.api + "/ui/static/", timeout=30) as client:
        pending, seen = ["viewer.js"], set()
        while pending:
            name = pending.pop()
            if name in seen:
                continue
            seen.add(name)
            response = client.get(name)
            assert response.status_code == 200, name
            pending.extend(re.findall(r'from "\./([\w.-]+\.js)"', response.text))
    assert {"viewer.js", "api.js", "dom.js", "crypto.js", "records.js", "tail.js"} <= seen


def _raw_get(url: str, path: str) -> int:
    """GET ``path`` exactly as written (no client-side normalization of ``..``)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.parametrize(
    "tail",
    [
        "../ui.py",
        "../../server/app.py",
        "..%2fui.py",
        "%2e%2e/ui.py",
        "%2e%2e%2f%2e%2e%2fconfig.py",
        "..\\ui.py",
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "index.html",
        ".hidden.js",
        "missing.js",
        "viewer.js/",
        "",
    ],
)
def test_asset_paths_cannot_escape_the_static_directory(live_server: LiveServer, tail: str) -> None:
    assert _raw_get(live_server.url, f"/api/v2/logs/ui/static/{tail}") == 404


def test_traversal_through_httpx_is_a_404(live_server: LiveServer) -> None:
    for tail in ("..%2F..%2F__init__.py", "%2E%2E%2Fui.py", "....//ui.py"):
        response = httpx.get(f"{live_server.api}/ui/static/{tail}", timeout=30)
        assert response.status_code == 404, tail
        assert b"from __future__" not in response.content


def test_the_asset_lookup_refuses_names_outside_the_directory() -> None:
    assert ui._asset("viewer.js") == ui.STATIC_DIR / "viewer.js"
    for name in ("../ui.py", "..", ".", "index.html", "a/b.js", "viewer.js\x00", "", "x.py"):
        assert ui._asset(name) is None, name


def test_the_page_follows_the_proxy_root_path() -> None:
    """Behind a proxy (``root_path``) the page's API base and assets carry the prefix."""
    app = FastAPI()
    app.include_router(router)

    async def behind_proxy(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # What uvicorn --root-path does: the root path, and the full path, in the scope.
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": "/logs-proxy", "path": "/logs-proxy" + scope["path"]}
        await app(scope, receive, send)

    with serve_asgi(behind_proxy) as url:
        response = httpx.get(url + "/api/v2/logs/ui", timeout=30)
    assert response.status_code == 200
    assert 'content="/logs-proxy/api/v2/logs"' in response.text
    assert 'src="/logs-proxy/api/v2/logs/ui/static/viewer.js?v=' in response.text


def test_the_root_page_is_only_in_the_standalone_app(tmp_path: Path) -> None:
    app = FastAPI()
    app.include_router(router)
    assert app.url_path_for("plexichat_logs_ui") == "/api/v2/logs/ui"
    with pytest.raises(NoMatchFound):
        app.url_path_for("plexichat_logs_ui_root")
    standalone = create_app(directory=str(tmp_path), run_indexer=False)
    assert standalone.url_path_for("plexichat_logs_ui_root") == "/"
    assert standalone.url_path_for("plexichat_logs_ui") == "/api/v2/logs/ui"


def test_the_viewer_is_not_in_the_openapi_schema(live_server: LiveServer) -> None:
    with live_server.client("viewer") as c:
        schema = c.get("/openapi.json").json()
    assert not [p for p in schema["paths"] if p == "/" or p.startswith("/api/v2/logs/ui")]


def test_browser_tests_skip_without_chromium_but_fail_in_ci(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The gate of tests/browser: a printed skip locally, a failure when CI=true."""
    from tests.browser import conftest as browser

    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium is missing"):
        browser.require_browser()
    assert "SKIPPED browser tests:" in capsys.readouterr().out
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="mandatory"):
        browser.require_browser()
