"""The console sink: the spec's format byte for byte, colors only when wanted."""

from __future__ import annotations

import io
import re

import pytest

from plexichat.core.logging import configure_logging, get_logger
from plexichat.core.logging.config import set_logging_profile
from plexichat.core.logging.sinks.console import ConsoleRenderer, use_color

SPEC_EVENT = {
    "timestamp": "2024-01-15T10:30:45.123Z",
    "level": "INFO",
    "logger": "auth_service",
    "message": "User authenticated successfully",
}


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_spec_console_format_byte_for_byte() -> None:
    """The three lines of the spec's console example render exactly."""
    r = ConsoleRenderer(utc=True)
    lines = [
        r.render(SPEC_EVENT),
        r.render(
            {
                "timestamp": "2024-01-15T10:30:46.001Z",
                "level": "WARNING",
                "logger": "database",
                "message": "Connection pool exhausted, creating new connection",
            }
        ),
        r.render(
            {
                "timestamp": "2024-01-15T10:30:47.999Z",
                "level": "ERROR",
                "logger": "api_handler",
                "message": "Request validation failed: missing required field 'email'",
            }
        ),
    ]
    assert lines == [
        "[2024-01-15 10:30:45] [INFO    ] auth_service: User authenticated successfully",
        "[2024-01-15 10:30:46] [WARNING ] database: Connection pool exhausted, "
        "creating new connection",
        "[2024-01-15 10:30:47] [ERROR   ] api_handler: Request validation failed: "
        "missing required field 'email'",
    ]


def test_console_sink_writes_spec_format_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """A real logging call prints one spec-format line on stderr, no colors off a TTY."""
    configure_logging(file_enabled=False, console_utc=True)
    get_logger("auth_service").info("User authenticated successfully")
    err = capsys.readouterr().err
    pattern = r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] \[INFO    \] auth_service: User authenticated successfully\n$"  # noqa: E501
    assert re.match(pattern, err), err


def test_colors_only_on_tty(monkeypatch: pytest.MonkeyPatch) -> None:
    """Colors on a TTY; none on a pipe; NO_COLOR disables and FORCE_COLOR forces."""
    assert use_color(_TTY()) is True
    assert use_color(io.StringIO()) is False
    assert use_color(_TTY(), configured=False) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_color(_TTY()) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert use_color(io.StringIO()) is True


def test_colored_line_keeps_layout() -> None:
    """With colors the text is the same once ANSI codes are removed."""
    colored = ConsoleRenderer(color=True, utc=True).render(SPEC_EVENT)
    assert "\x1b[" in colored
    assert re.sub(r"\x1b\[[0-9;]*m", "", colored) == ConsoleRenderer(utc=True).render(SPEC_EVENT)


def test_development_profile_shows_context(capsys: pytest.CaptureFixture[str]) -> None:
    """The development profile appends bound context compactly after the message."""
    set_logging_profile("development")
    configure_logging(file_enabled=False)
    get_logger("dev").info("Request done", request_id="req_1", user="a b")
    err = capsys.readouterr().err
    assert err.rstrip("\n").endswith("dev: Request done  request_id=req_1 user='a b'")


def test_exception_traceback_follows_line(capsys: pytest.CaptureFixture[str]) -> None:
    """An exception's traceback is printed under the record's line."""
    configure_logging(file_enabled=False)
    try:
        raise ValueError("bad value")
    except ValueError:
        get_logger("exc").exception("failed")
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("exc: failed")
    assert err[1] == "Traceback (most recent call last):"
    assert err[-1] == "ValueError: bad value"


def test_console_level_separate_from_file_level(capsys: pytest.CaptureFixture[str]) -> None:
    """console_level filters the console without affecting other sinks."""
    configure_logging(file_enabled=False, level="DEBUG", console_level="WARNING")
    logger = get_logger("lvl")
    logger.info("quiet")
    logger.warning("loud")
    err = capsys.readouterr().err
    assert "quiet" not in err
    assert "loud" in err


def test_stdout_stream_option(capsys: pytest.CaptureFixture[str]) -> None:
    """console_stream=stdout prints to stdout instead of stderr."""
    configure_logging(file_enabled=False, console_stream="stdout")
    get_logger("out").info("to stdout")
    captured = capsys.readouterr()
    assert "to stdout" in captured.out
    assert "to stdout" not in captured.err


def test_an_encrypted_context_value_shows_as_a_lock() -> None:
    """A field encrypted on the client shows as a lock with its key id, never ciphertext."""
    from plexichat.core.logging.sinks.console import ConsoleRenderer

    envelope = {"$enc": "aes256gcm", "kid": "0123456789abcdef", "nonce": "n", "ct": "SECRETCT"}
    event = {
        "timestamp": "2024-01-15T10:30:45.123Z",
        "level": "INFO",
        "logger": "app",
        "message": "login",
        "context": {"ip_address": envelope, "user": "u1"},
    }
    text = ConsoleRenderer(color=False, show_context=True, utc=True).render(event)
    assert "ip_address=🔒01234567" in text
    assert "SECRETCT" not in text
