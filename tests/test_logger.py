"""The logger: a stdlib subclass with extra levels, keyword fields and stdlib interop."""

from __future__ import annotations

import logging
import logging.config
from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import (
    LogCategory,
    LogLevel,
    PlexiLogger,
    configure_logging,
    flush_logging,
    get_logger,
    get_logging_manager,
)
from plexichat.core.logging.testing import capture_logs, read_log_records
from tests.helpers import only_plexi_handler


def _quiet(directory: Path, **kw: Any) -> None:
    configure_logging(directory=directory, console_enabled=False, **kw)


def test_get_logger_returns_stdlib_logger_subclass() -> None:
    """get_logger gives a logging.Logger subclass, the same object stdlib returns."""
    logger = get_logger("svc.auth")
    assert isinstance(logger, logging.Logger)
    assert isinstance(logger, PlexiLogger)
    assert logging.getLogger("svc.auth") is logger


def test_levels_registered_both_ways() -> None:
    """TRACE, SECURITY and AUDIT are known to stdlib by name and by number."""
    assert logging.getLevelName("TRACE") == 5
    assert logging.getLevelName(60) == "SECURITY"
    assert logging.getLevelName("AUDIT") == 70
    assert [int(m) for m in LogLevel] == [5, 10, 20, 30, 40, 50, 60, 70]


def test_security_and_audit_pass_a_critical_threshold(log_dir: Path) -> None:
    """SECURITY and AUDIT rank above CRITICAL, so the highest threshold keeps them."""
    _quiet(log_dir, level="CRITICAL")
    logger = get_logger("sec")
    logger.error("dropped")
    logger.security("kept security")
    logger.audit("kept audit")
    flush_logging()
    assert [r["message"] for r in read_log_records(log_dir)] == ["kept security", "kept audit"]


def test_trace_method_below_debug(log_dir: Path) -> None:
    """logger.trace writes at TRACE only when the level allows it."""
    _quiet(log_dir, level="DEBUG")
    get_logger("t").trace("hidden")
    configure_logging(level="TRACE")
    get_logger("t").trace("shown")
    flush_logging()
    records = read_log_records(log_dir)
    assert [(r["level"], r["message"]) for r in records] == [("TRACE", "shown")]


def test_keyword_fields_go_to_context() -> None:
    """Unknown keywords land in context; category is the top-level field."""
    with capture_logs() as events:
        get_logger("kw").info("User login", category=LogCategory.SECURITY, user_id="u1")
    assert events[0]["category"] == "security"
    assert events[0]["context"] == {"user_id": "u1"}


def test_unknown_category_kept_as_given() -> None:
    """A category string outside the enum is kept verbatim."""
    with capture_logs() as events:
        get_logger("c").info("x", extra={"category": "billing"})
    assert events[0]["category"] == "billing"


def test_caplog_sees_records_with_fields(caplog: pytest.LogCaptureFixture) -> None:
    """pytest's caplog captures PlexiChat records with their structured attributes."""
    caplog.set_level(logging.INFO)
    get_logger("cap").info("hello %s", "you", category=LogCategory.API, request_id="r1")
    (record,) = [r for r in caplog.records if r.name == "cap"]
    assert record.getMessage() == "hello you"
    assert getattr(record, "category") == LogCategory.API  # noqa: B009
    assert getattr(record, "context") == {"request_id": "r1"}  # noqa: B009


def test_third_party_logger_flows_through_handler(log_dir: Path) -> None:
    """A plain stdlib logger's records reach the PlexiChat files."""
    _quiet(log_dir)
    logging.getLogger("some.library").warning("library says %d", 3)
    flush_logging()
    (record,) = read_log_records(log_dir)
    assert record["logger"] == "some.library"
    assert record["message"] == "library says 3"
    assert record["level"] == "WARNING"


def test_dictconfig_handler_receives_plexichat_records(log_dir: Path, tmp_path: Path) -> None:
    """A handler added with dictConfig sees the same records as the PlexiChat files."""
    _quiet(log_dir)
    out = tmp_path / "plain.log"
    logging.config.dictConfig(
        {
            "version": 1,
            "incremental": False,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
            "handlers": {
                "plain": {
                    "class": "logging.FileHandler",
                    "filename": str(out),
                    "formatter": "plain",
                }
            },
            "loggers": {"dc": {"handlers": ["plain"], "level": "INFO"}},
        }
    )
    logger = get_logger("dc")
    logger.info("to both", user="u")
    logger.security("sec event")
    for handler in logging.getLogger("dc").handlers:
        handler.close()
    flush_logging()
    assert out.read_text().splitlines() == ["INFO dc to both", "SECURITY dc sec event"]
    assert [r["message"] for r in read_log_records(log_dir)] == ["to both", "sec event"]
    logging.getLogger("dc").handlers.clear()


def test_logger_filter_respected_on_fast_path() -> None:
    """A filter on the logger forces the stdlib path and can drop records."""
    logger = get_logger("filtered")
    logger.addFilter(lambda record: "secret" not in record.getMessage())
    try:
        with capture_logs() as events, only_plexi_handler():
            logger.info("public")
            logger.info("a secret")
        assert [e["message"] for e in events] == ["public"]
    finally:
        logger.filters.clear()


def test_disabled_logger_writes_nothing() -> None:
    """logger.disabled is honored on the fast path."""
    logger = get_logger("off")
    logger.disabled = True
    try:
        with capture_logs() as events, only_plexi_handler():
            logger.error("nothing")
        assert events == []
    finally:
        logger.disabled = False


def test_adopts_existing_plain_and_custom_loggers() -> None:
    """Loggers created before (plain or a custom subclass) gain the PlexiChat methods."""

    class Custom(logging.Logger):
        def special(self) -> str:
            return "kept"

    plain = logging.getLogger("pre.plain")
    custom = Custom("pre.custom")
    logging.Logger.manager.loggerDict["pre.custom"] = custom
    custom.parent = logging.getLogger()
    assert get_logger("pre.plain") is plain
    adopted = get_logger("pre.custom")
    assert id(adopted) == id(custom)
    assert getattr(adopted, "special")() == "kept"  # noqa: B009
    with capture_logs() as events:
        adopted.security("works")
    assert events[0]["level"] == "SECURITY"


def test_log_with_enum_level_and_bad_level() -> None:
    """logger.log accepts LogLevel; a non-integer level is a TypeError like stdlib's."""
    with capture_logs() as events:
        get_logger("lv").log(LogLevel.AUDIT, "audited")
    assert events[0]["level"] == "AUDIT"
    with pytest.raises(TypeError, match="level must be an integer"):
        get_logger("lv").log("INFO", "x")  # type: ignore[arg-type]


def test_manager_is_single_owner() -> None:
    """get_logging_manager returns the one manager; its handler sits on the root logger."""
    get_logger("m")
    manager = get_logging_manager()
    assert manager is get_logging_manager()
    assert manager.configured
    assert manager.handler in logging.getLogger().handlers
