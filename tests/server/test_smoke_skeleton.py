"""Temporary: the skeleton serves and authenticates (replaced by the real suites)."""

from __future__ import annotations

from tests.server.conftest import LiveServer


def test_openapi_needs_nothing_and_unknown_route_404(live_server: LiveServer) -> None:
    """The server starts with its lifespan and answers over a real connection."""
    with live_server.client() as c:
        assert c.get(live_server.url + "/openapi.json").status_code == 200
        assert c.get("/nope").status_code == 404
