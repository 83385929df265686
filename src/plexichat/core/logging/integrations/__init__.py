"""Framework integrations: FastAPI and Flask request logging, SQLAlchemy query metrics."""

from __future__ import annotations
