"""(being written) routes_entries."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
