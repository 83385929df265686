"""The four presets: development, testing, production, debug."""

from __future__ import annotations

from typing import Any

__all__ = ["PROFILES"]

PROFILES: dict[str, dict[str, Any]] = {
    "development": {
        "level": "DEBUG",
        "console_enabled": True,
        "console_colors": True,
        "console_show_context": True,
        "file_enabled": True,
        "compression_enabled": False,
        "retention_age": "7 days",
        "performance_enabled": True,
        "alerts_enabled": False,
    },
    "testing": {
        "level": "WARNING",
        "console_enabled": True,
        "console_colors": False,
        "console_show_context": True,
        "file_enabled": False,
        "compression_enabled": False,
        "performance_enabled": False,
        "alerts_enabled": False,
    },
    "production": {
        "level": "INFO",
        "console_enabled": True,
        "console_colors": False,
        "console_show_context": False,
        "file_enabled": True,
        "non_blocking": True,
        "rotation_size": "100 MB",
        "rotation_interval": "1 day",
        "compression_enabled": True,
        "retention_age": "30 days",
        "performance_enabled": True,
        "security_enabled": True,
        "audit_enabled": True,
        "alerts_enabled": True,
    },
    "debug": {
        "level": "TRACE",
        "console_enabled": True,
        "console_colors": True,
        "console_show_context": True,
        "file_enabled": True,
        "non_blocking": False,
        "compression_enabled": False,
        "performance_enabled": True,
    },
}
"""Values each profile sets; everything else keeps its default."""
