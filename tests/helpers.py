"""Helpers shared by the tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from plexichat.core.logging._core.handler import PlexiHandler


@contextmanager
def only_plexi_handler() -> Iterator[None]:
    """Detach every non-PlexiChat handler (pytest's capture handlers) from the root logger.

    With only the PlexiChat handler on the chain, PlexiChat loggers take their fast path
    (no LogRecord); with pytest's handlers present they take the stdlib path. Use it inside
    the test body: pytest adds its handlers after fixtures have run.
    """
    root = logging.getLogger()
    others = [h for h in root.handlers if not isinstance(h, PlexiHandler)]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield
    finally:
        for handler in others:
            root.addHandler(handler)
