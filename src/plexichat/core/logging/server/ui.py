"""(being written) ui."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()


def mount_root(app: object) -> None:
    """(being written) serve the viewer at ``/`` of a standalone app."""
