"""``query``/``export`` find security events by type and minimum severity."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from plexichat.core.logging import configure_logging, shutdown_logging
from plexichat.core.logging.security_logger import (
    SecurityEvent,
    SecurityEventType,
    SecuritySeverity,
    get_security_logger,
)


def test_query_by_event_type_and_minimum_severity(tmp_path: Path) -> None:
    """--event-type and --min-severity select the matching security records only; a bad
    severity is a usage error naming the allowed values."""
    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, console_enabled=False, non_blocking=False)
    security = get_security_logger()
    for event_type, severity, user in [
        (SecurityEventType.LOGIN_FAILURE, SecuritySeverity.MEDIUM, "u1"),
        (SecurityEventType.LOGIN_FAILURE, SecuritySeverity.HIGH, "u2"),
        (SecurityEventType.PERMISSION_DENIED, SecuritySeverity.CRITICAL, "u3"),
    ]:
        security.log_security_event(
            SecurityEvent(event_type=event_type, severity=severity, user_id=user)
        )
    shutdown_logging()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    env["PLEXICHAT_LOG_DIRECTORY"] = str(log_dir)
    cli = [sys.executable, "-m", "plexichat.core.logging.cli"]
    assert subprocess.run([*cli, "index"], env=env, capture_output=True).returncode == 0

    def users(*flags: str) -> list[str]:
        done = subprocess.run(
            [*cli, "query", "--json", *flags], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return sorted(orjson.loads(line)["context"]["user_id"] for line in done.stdout.splitlines())

    assert users("--event-type", "login_failure") == ["u1", "u2"]
    assert users("--min-severity", "HIGH") == ["u2", "u3"]
    assert users("--event-type", "login_failure", "--min-severity", "high") == ["u2"]
    bad = subprocess.run(
        [*cli, "query", "--min-severity", "SEVERE"], env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2
    assert "EMERGENCY" in bad.stderr
