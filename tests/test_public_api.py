"""The public modules export exactly their documented names, sorted, each documented."""

from __future__ import annotations

import importlib
import inspect

import pytest

EXPECTED = {
    "plexichat.core.logging": [
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
    ],
    "plexichat.core.logging.config": [
        "DEFAULT_THIRD_PARTY_LEVELS",
        "ENV_PREFIX",
        "PROFILES",
        "PROFILE_NAMES",
        "ConfigError",
        "LoggingConfig",
        "config_sources",
        "env_name",
        "get_logging_config",
        "load_logging_config",
        "set_logging_profile",
        "validate_config_file",
    ],
    "plexichat.core.logging.security_logger": [
        "DEFAULT_THREAT_RULES",
        "AlertHook",
        "AuditLogger",
        "SecurityEvent",
        "SecurityEventType",
        "SecurityLogger",
        "SecuritySeverity",
        "ThreatAlert",
        "ThreatDetector",
        "get_audit_logger",
        "get_security_logger",
        "get_threat_detector",
    ],
    "plexichat.core.logging.performance_logger": [
        "MetricError",
        "PerformanceAlert",
        "PerformanceLogger",
        "PerformanceMetric",
        "get_performance_logger",
        "performance_logger",
        "record_metric",
        "time_function",
        "timer",
    ],
    "plexichat.core.logging.testing": ["MemorySink", "capture_logs", "read_log_records"],
    "plexichat.core.logging.cli": ["build_parser", "main"],
    "plexichat.core.logging.integrity": [
        "AUDITOR_KEY_ENV",
        "AuditorKey",
        "FINDING_KINDS",
        "Finding",
        "VerifyReport",
        "announce_prune",
        "export_public_key",
        "init_keys",
        "resolve_key",
        "verify_directory",
    ],
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_all_is_exactly_the_public_api(module_name: str) -> None:
    """__all__ equals the documented list (nothing lost, nothing unintended)."""
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(EXPECTED[module_name])
    for name in module.__all__:
        assert hasattr(module, name), name


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_public_callables_have_docstrings(module_name: str) -> None:
    """Every exported class and function has a docstring."""
    module = importlib.import_module(module_name)
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{module_name}.{name} has no docstring"


def test_logger_methods_documented() -> None:
    """The level methods of PlexiLogger carry docstrings."""
    from plexichat.core.logging import PlexiLogger

    for name in ("trace", "debug", "info", "warning", "error", "critical", "security", "audit"):
        assert inspect.getdoc(getattr(PlexiLogger, name))
