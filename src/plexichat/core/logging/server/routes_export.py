"""(being written) routes_export."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
