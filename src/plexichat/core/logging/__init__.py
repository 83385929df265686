"""PlexiChat Logging: structured, fast, stdlib-compatible logging.

Example:
    >>> from plexichat.core.logging import get_logger, LogCategory
    >>> logger = get_logger("my_module")
    >>> logger.info("User login", extra={"category": LogCategory.SECURITY,
    ...                                  "context": {"user_id": "user123"}})
"""

from __future__ import annotations

from typing import Any

from ._config.model import LoggingConfig
from ._core.context import (
    bind_context,
    clear_context,
    context_executor,
    current_context,
    log_context,
    run_in_context,
    unbind_context,
)
from ._core.errors import ConfigError, PlexiLoggingError
from ._core.handler import PlexiHandler
from ._core.levels import LogCategory, LogLevel
from ._core.logger import PlexiLogger, plexi_logger
from ._core.manager import LoggingManager, get_logging_manager

__all__ = [
    "ConfigError",
    "LogCategory",
    "LogLevel",
    "LoggingConfig",
    "LoggingManager",
    "PlexiHandler",
    "PlexiLogger",
    "PlexiLoggingError",
    "bind_context",
    "clear_context",
    "configure_logging",
    "context_executor",
    "current_context",
    "flush_logging",
    "get_logger",
    "get_logging_manager",
    "get_logging_stats",
    "log_context",
    "run_in_context",
    "shutdown_logging",
    "unbind_context",
]

__version__ = "0.1.0"

_manager = get_logging_manager()


def get_logger(name: str | None = None) -> PlexiLogger:
    """Return the logger called ``name`` (a :class:`logging.Logger` subclass).

    The first call configures logging from the defaults, ``PLEXICHAT_LOG_*`` environment
    variables and ``PLEXICHAT_LOG_CONFIG_FILE`` unless :func:`configure_logging` ran before.

    Args:
        name: dotted logger name, usually ``__name__``; None gives the root logger.
    """
    _manager.ensure_configured()
    return plexi_logger(name)


def configure_logging(config: LoggingConfig | None = None, **overrides: Any) -> LoggingConfig:
    """(Re)configure logging at any time without losing records.

    Args:
        config: a ``LoggingConfig``; the fields given to it take precedence over file and
            environment.
        **overrides: individual settings, e.g. ``level="DEBUG"``, ``directory="var/log"``.

    Returns:
        The effective configuration.

    Raises:
        ConfigError: naming the bad field, value, source and what is allowed; the previous
            configuration stays active.
    """
    return _manager.configure(config, **overrides)


def flush_logging(timeout: float | None = 5.0) -> bool:
    """Block until every record accepted so far is written; False on timeout."""
    return _manager.flush(timeout)


def shutdown_logging(timeout: float | None = 5.0) -> None:
    """Flush and close all sinks and detach from the root logger (re-configurable later)."""
    _manager.shutdown(timeout)


def get_logging_stats() -> dict[str, Any]:
    """Counts per level, drops, queue depth and capacity, bytes written, errors."""
    return _manager.stats()
