"""(being written) routes_admin."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
