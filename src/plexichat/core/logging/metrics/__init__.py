"""Metrics internals: registry, sketches, timing, trends, history and exposition.

The public API is :mod:`plexichat.core.logging.performance_logger`; everything here is
private and may change.
"""

from __future__ import annotations
