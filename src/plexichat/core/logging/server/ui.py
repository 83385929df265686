"""The web viewer: one page and its static assets, served without a token.

The page holds no data: every record, metric and statistic comes from the API with the token
the user enters (kept in the browser tab's ``sessionStorage``). The viewer is served at
``/api/v2/logs/ui`` by :data:`router` (in any app that includes the API router) and at ``/``
of the standalone app (:func:`mount_root`); its assets live under
``/api/v2/logs/ui/static/``. The page learns the API's base path from a ``<meta>`` tag this
module fills in, so it works under both paths and behind a proxy's ``root_path``.

Every response carries a strict Content-Security-Policy (scripts and styles from this
origin only, no inline script, no framing), ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path
from typing import Final

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.routing import NoMatchFound

from .deps import PREFIX

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "SECURITY_HEADERS",
    "STATIC_DIR",
    "UI_PATH",
    "mount_root",
    "router",
]

STATIC_DIR: Final[Path] = Path(__file__).resolve().with_name("static")
"""The directory of the viewer's page and assets (package data)."""

UI_PATH: Final[str] = "/ui"
"""Where the viewer sits below the API prefix (``/api/v2/logs/ui``)."""

_PAGE_ROUTE = "plexichat_logs_ui"
_PAGE_FILE = "index.html"
_CONTENT_TYPES: Final[dict[str, str]] = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_ASSET_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")

CONTENT_SECURITY_POLICY: Final[str] = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",  # 'self' covers the same origin's ws:/wss: (CSP level 3)
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
"""The policy of every viewer response: nothing inline, nothing from another origin."""

SECURITY_HEADERS: Final[dict[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-cache",
}
"""Headers added to the page and every asset."""

router = APIRouter(prefix=PREFIX, include_in_schema=False)
"""The viewer's routes (``/ui`` and ``/ui/static/...``), included under the API prefix."""


def _api_base(request: Request) -> str:
    """The API's base path as the browser sees it (proxy root path included).

    Found from the URL of the router's own page route, wherever the router was included
    (``/api/v2/logs`` unless an app adds a prefix of its own).
    """
    try:
        page = request.url_for(_PAGE_ROUTE).path
    except NoMatchFound:  # the router is not included: the standalone default
        root = str(request.scope.get("root_path") or "").rstrip("/")
        return root + PREFIX
    return page[: -len(UI_PATH)] if page.endswith(UI_PATH) else page.rstrip("/")


@functools.cache
def _template() -> str:
    """The page template (read once: package data does not change while serving)."""
    return (STATIC_DIR / _PAGE_FILE).read_text(encoding="utf-8")


def _render_page(api_base: str) -> HTMLResponse:
    from .. import __version__

    try:
        template = _template()
    except OSError:
        raise HTTPException(404, "the web viewer is not installed (static files missing)") from None
    values = {
        "__API_BASE__": api_base,
        "__STATIC_BASE__": f"{api_base}{UI_PATH}/static",
        "__VERSION__": __version__,
    }
    for marker, value in values.items():
        template = template.replace(marker, html.escape(value, quote=True))
    return HTMLResponse(template, headers=SECURITY_HEADERS)


@router.get(UI_PATH, name=_PAGE_ROUTE, response_class=HTMLResponse)
async def viewer_page(request: Request) -> HTMLResponse:
    """The viewer's page (no token needed: it holds no data)."""
    return _render_page(_api_base(request))


@router.get(UI_PATH + "/static/{name:path}", name="plexichat_logs_ui_static")
def viewer_asset(name: str) -> Response:
    """One asset of the viewer; anything outside the static directory is a 404."""
    path = _asset(name)
    if path is None:
        raise HTTPException(404, f"no viewer asset {name[:100]!r}")
    return FileResponse(
        path, media_type=_CONTENT_TYPES[path.suffix.lower()], headers=SECURITY_HEADERS
    )


def _asset(name: str) -> Path | None:
    """The file ``name`` names directly inside :data:`STATIC_DIR`, or None.

    Only the files the directory holds are served, looked up by name (the request's name
    never becomes a path): plain file names with a known asset suffix, no directories, no
    ``..``, no hidden files, not the page template itself.
    """
    if len(name) > _MAX_ASSET_NAME or not _ASSET_NAME.fullmatch(name):
        return None
    path = _assets().get(name)
    try:
        return path if path is not None and path.is_file() else None
    except OSError:  # removed or unreadable since it was listed
        return None


_MAX_ASSET_NAME: Final = 100
"""The longest asset name looked up (the viewer's are a dozen characters)."""


@functools.cache
def _assets() -> dict[str, Path]:
    """The servable files of :data:`STATIC_DIR` by name (listed once: package data does not
    change while serving; an unreadable directory serves none)."""
    found: dict[str, Path] = {}
    try:
        for path in STATIC_DIR.iterdir():
            if (
                _ASSET_NAME.fullmatch(path.name)
                and path.suffix.lower() in _CONTENT_TYPES
                and not path.is_symlink()
                and path.is_file()
            ):
                found[path.name] = path
    except OSError:
        return {}
    return found


def mount_root(app: FastAPI) -> None:
    """Serve the viewer at ``/`` of a standalone app (its assets stay under the API).

    The page finds the API through the router's own viewer route, so the standalone page
    and ``/api/v2/logs/ui`` talk to the same API.
    """

    async def viewer_root(request: Request) -> HTMLResponse:
        """The viewer's page at the root of the standalone log server."""
        return _render_page(_api_base(request))

    app.add_api_route(
        "/",
        viewer_root,
        methods=["GET"],
        name="plexichat_logs_ui_root",
        include_in_schema=False,
        response_class=HTMLResponse,
    )
