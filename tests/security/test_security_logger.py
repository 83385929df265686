"""The security logger: record layout, lenient input, configuration, detection wiring."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import configure_logging, flush_logging, get_logging_stats
from plexichat.core.logging._core.errors import error_reporter
from plexichat.core.logging.security_logger import (
    SecurityEvent,
    SecurityEventType,
    SecurityLogger,
    SecuritySeverity,
    ThreatAlert,
    ThreatDetector,
    get_security_logger,
    get_threat_detector,
)
from plexichat.core.logging.store.base import record_from_event
from plexichat.core.logging.testing import capture_logs, read_log_records

from .conftest import FakeClock

QUIET: dict[str, Any] = {"console_enabled": False, "compression_enabled": False}


@pytest.fixture
def files(log_dir: Path) -> Path:
    """Logging configured to write only files, in log_dir."""
    configure_logging(directory=log_dir, **QUIET)
    return log_dir


def _security(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("level") == "SECURITY"]


def _spec_event(**overrides: Any) -> SecurityEvent:
    fields: dict[str, Any] = {
        "event_type": SecurityEventType.LOGIN_FAILURE,
        "severity": SecuritySeverity.MEDIUM,
        "timestamp": datetime(2024, 1, 15, 10, 30, 45, 123000, tzinfo=UTC),
        "user_id": "user123",
        "ip_address": "192.168.1.100",
        "details": {"reason": "invalid_password", "attempts": 3},
    }
    fields.update(overrides)
    return SecurityEvent(**fields)


def test_record_layout(files: Path) -> None:
    """A SECURITY record in category security: who in context, what in metadata, the
    caller's module, function and line."""
    get_security_logger().log_security_event(_spec_event())
    line = sys._getframe().f_lineno - 1
    flush_logging()
    (record,) = _security(read_log_records(files))
    assert record["level"] == "SECURITY"
    assert record["category"] == "security"
    assert record["logger"] == "plexichat.security"
    assert record["message"] == "Security event login_failure (MEDIUM)"
    assert (record["module"], record["function"], record["line"]) == (
        "test_security_logger", "test_record_layout", line,
    )  # fmt: skip
    assert record["context"] == {"user_id": "user123", "ip_address": "192.168.1.100"}
    assert record["metadata"] == {
        "event_type": "login_failure",
        "severity": "MEDIUM",
        "event_time": "2024-01-15T10:30:45.123Z",
        "details": {"reason": "invalid_password", "attempts": 3},
    }


def test_optional_fields_land_in_context_and_metadata(files: Path) -> None:
    """Session, agent and correlation id are context; the rest metadata, in a fixed order."""
    get_security_logger().log_security_event(
        _spec_event(
            source="auth_service", resource="/admin", session_id="s1", user_agent="curl/8",
            endpoint="/login", action="login", result="failure", threat_indicators=["tor"],
            mitigation_actions=["captcha"], correlation_id="c1",
        )
    )  # fmt: skip
    flush_logging()
    (record,) = _security(read_log_records(files))
    assert record["context"] == {
        "user_id": "user123",
        "ip_address": "192.168.1.100",
        "session_id": "s1",
        "user_agent": "curl/8",
        "correlation_id": "c1",
    }
    assert list(record["metadata"]) == [
        "event_type", "severity", "event_time", "source", "resource", "endpoint", "action",
        "result", "details", "threat_indicators", "mitigation_actions",
    ]  # fmt: skip
    assert record["metadata"]["threat_indicators"] == ["tor"]


def test_store_reads_event_type_and_severity(files: Path) -> None:
    """The store indexes the written record's event type and severity (security filters)."""
    logger = get_security_logger()
    logger.log_security_event(_spec_event(severity="critical"))
    logger.log_security_event(_spec_event(event_type="logout", severity=None))
    flush_logging()
    stored = [record_from_event(r) for r in _security(read_log_records(files))]
    assert [(s.event_type, s.security_severity, s.category) for s in stored] == [
        ("login_failure", 3, "security"),
        ("logout", 0, "security"),
    ]


def test_bound_context_is_kept() -> None:
    """log_context fields (request ids) join the event's context."""
    from plexichat.core.logging import log_context

    configure_logging(**QUIET, file_enabled=False)
    with capture_logs() as events, log_context(request_id="r1"):
        get_security_logger().log_security_event(_spec_event())
    assert events[0]["context"] == {
        "request_id": "r1",
        "user_id": "user123",
        "ip_address": "192.168.1.100",
    }


def test_timestamp_is_optional(files: Path) -> None:
    """timestamp=None means now (UTC)."""
    before = datetime.now(UTC) - timedelta(seconds=1)
    get_security_logger().log_security_event(_spec_event(timestamp=None))
    flush_logging()
    (record,) = _security(read_log_records(files))
    when = datetime.fromisoformat(record["metadata"]["event_time"].replace("Z", "+00:00"))
    assert before <= when <= datetime.now(UTC)


def test_naive_timestamp_is_local_time_converted_and_flagged(files: Path) -> None:
    """A naive datetime is read as local time, written in UTC and flagged; no exception."""
    naive = datetime(2024, 6, 1, 12, 0, 0)
    get_security_logger().log_security_event(_spec_event(timestamp=naive))
    get_security_logger().log_security_event(
        _spec_event(timestamp=datetime(2024, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))))
    )
    flush_logging()
    first, second = _security(read_log_records(files))
    expected = naive.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert first["metadata"]["event_time"] == expected
    assert first["metadata"]["timestamp_assumed_local"] is True
    assert second["metadata"]["event_time"] == "2024-06-01T10:00:00.000Z"
    assert "timestamp_assumed_local" not in second["metadata"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1705314645.5, "2024-01-15T10:30:45.500Z"),
        ("2024-01-15T10:30:45Z", "2024-01-15T10:30:45.000Z"),
        ("2024-01-15T12:30:45+02:00", "2024-01-15T10:30:45.000Z"),
    ],
)
def test_epoch_and_iso_timestamps_are_accepted(files: Path, value: object, expected: str) -> None:
    """Seconds since the epoch and ISO-8601 text are read as times."""
    get_security_logger().log_security_event(_spec_event(timestamp=value))
    flush_logging()
    (record,) = _security(read_log_records(files))
    assert record["metadata"]["event_time"] == expected
    assert "invalid_timestamp" not in record["metadata"]


def test_invalid_timestamp_is_flagged_and_reported_once(
    files: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A timestamp that is no time is logged with the current time and flagged."""
    for value in ("yesterday", object(), float("nan")):
        get_security_logger().log_security_event(_spec_event(timestamp=value))
    flush_logging()
    records = _security(read_log_records(files))
    assert len(records) == 3
    assert records[0]["metadata"]["invalid_timestamp"] == "'yesterday'"
    assert "object object" in records[1]["metadata"]["invalid_timestamp"]
    assert error_reporter.counts["security-timestamp"] == 3
    assert capfd.readouterr().err.count("is not a time") == 1


def test_strings_for_enums_are_accepted(files: Path) -> None:
    """event_type="login_failure", severity="high" work like the members."""
    get_security_logger().log_security_event(
        SecurityEvent(event_type="login_failure", severity="high", user_id="u")
    )
    flush_logging()
    (record,) = _security(read_log_records(files))
    assert record["metadata"]["event_type"] == "login_failure"
    assert record["metadata"]["severity"] == "HIGH"
    assert not {"unknown_event_type", "unknown_severity"} & set(record["metadata"])


def test_unknown_values_are_written_flagged_and_reported_once(
    files: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An unknown event type or severity is no exception: written with a flag, one stderr line."""
    logger = get_security_logger()
    logger.log_security_event(SecurityEvent("login_faliure", "severe"))
    logger.log_security_event(SecurityEvent("another_unknown", "worse"))
    event = _spec_event()
    event.severity = 7  # type: ignore[assignment]  # changed after it was built
    logger.log_security_event(event)
    flush_logging()
    first, second, third = _security(read_log_records(files))
    assert first["metadata"]["event_type"] == "login_faliure"
    assert first["metadata"]["unknown_event_type"] is True
    assert first["metadata"]["severity"] == "severe"
    assert first["metadata"]["unknown_severity"] is True
    assert second["metadata"]["event_type"] == "another_unknown"
    assert third["metadata"]["severity"] == "7"
    err = capfd.readouterr().err
    assert err.count("unknown security event type") == 1
    assert err.count("unknown security severity") == 1
    assert "allowed are LOW, MEDIUM, HIGH, CRITICAL, EMERGENCY" in err
    assert error_reporter.counts["security-severity"] == 3


def test_a_mapping_or_any_object_is_accepted(files: Path) -> None:
    """A mapping of fields is an event; another object is logged as an unknown event."""
    logger = get_security_logger()
    logger.log_security_event(
        {"event_type": "logout", "user_id": "u1", "browser": "firefox"}  # type: ignore[arg-type]
    )
    logger.log_security_event("login failed for bob")  # type: ignore[arg-type]
    flush_logging()
    mapped, other = _security(read_log_records(files))
    assert mapped["metadata"]["event_type"] == "logout"
    assert mapped["context"] == {"user_id": "u1"}
    assert mapped["metadata"]["details"] == {"browser": "firefox"}
    assert other["metadata"]["event_type"] == "unknown"
    assert other["metadata"]["details"] == {"value": "'login failed for bob'"}


def test_hostile_details_do_not_lose_the_event(files: Path) -> None:
    """A details mapping whose iteration fails is kept as its repr."""

    class Hostile(dict[str, Any]):
        def keys(self) -> Any:
            raise RuntimeError("no")

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("no")

    get_security_logger().log_security_event(_spec_event(details=Hostile(a=1)))
    flush_logging()
    (record,) = _security(read_log_records(files))
    assert record["metadata"]["event_type"] == "login_failure"


def test_security_disabled_writes_nothing_and_detects_nothing(log_dir: Path) -> None:
    """security_enabled=False turns the security logger off, detection included."""
    configure_logging(directory=log_dir, security_enabled=False, **QUIET)
    alerts: list[ThreatAlert] = []
    get_threat_detector().add_alert_hook(alerts.append)
    for _ in range(10):
        get_security_logger().log_login_attempt("bob", "10.0.0.1", success=False)
    flush_logging()
    assert _security(read_log_records(log_dir)) == []
    assert alerts == []


def test_convenience_methods(files: Path) -> None:
    """log_login_attempt, log_access_denied and log_event build and log events."""
    logger = get_security_logger()
    ok = logger.log_login_attempt("ann", "10.0.0.1", success=True, session_id="s9")
    bad = logger.log_login_attempt("ann", "10.0.0.1", False, attempts=2)
    denied = logger.log_access_denied("ann", "/admin", ip_address="10.0.0.1", reason="role")
    custom = logger.log_event("data_export", "high", user_id="ann", rows=1200)
    assert ok.event_type is SecurityEventType.LOGIN_SUCCESS
    assert bad.details == {"attempts": 2}
    assert denied.severity is SecuritySeverity.MEDIUM
    assert custom.severity is SecuritySeverity.HIGH
    flush_logging()
    records = _security(read_log_records(files))
    assert [(r["metadata"]["event_type"], r["metadata"].get("result")) for r in records] == [
        ("login_success", "success"),
        ("login_failure", "failure"),
        ("permission_denied", "denied"),
        ("data_export", None),
    ]
    assert records[0]["context"] == {"user_id": "ann", "ip_address": "10.0.0.1", "session_id": "s9"}
    assert records[2]["metadata"]["resource"] == "/admin"
    assert records[2]["metadata"]["details"] == {"reason": "role"}
    assert records[3]["metadata"]["details"] == {"rows": 1200}
    assert {r["function"] for r in records} == {"test_convenience_methods"}


def test_stdlib_handlers_and_caplog_see_security_records(caplog: pytest.LogCaptureFixture) -> None:
    """With other handlers attached (caplog), the record takes the stdlib path intact."""
    configure_logging(**QUIET, file_enabled=False)
    with caplog.at_level(logging.INFO):
        get_security_logger().log_security_event(_spec_event())
    (record,) = [r for r in caplog.records if r.name == "plexichat.security"]
    assert record.levelname == "SECURITY"
    assert record.category == "security"  # type: ignore[attr-defined]
    assert record.metadata["event_type"] == "login_failure"  # type: ignore[attr-defined]
    assert record.funcName == "test_stdlib_handlers_and_caplog_see_security_records"


# --- detection wiring -----------------------------------------------------------------------


def _failures(logger: SecurityLogger, n: int, user: str = "bob", ip: str = "10.0.0.1") -> None:
    for _ in range(n):
        logger.log_login_attempt(user, ip, success=False)


def test_detection_writes_derived_events_and_calls_hooks(files: Path) -> None:
    """Five failures for one user: a BRUTE_FORCE_ATTEMPT record and one alert."""
    alerts: list[ThreatAlert] = []
    get_threat_detector().add_alert_hook(alerts.append)
    _failures(get_security_logger(), 5)
    flush_logging()
    records = _security(read_log_records(files))
    assert [r["metadata"]["event_type"] for r in records] == ["login_failure"] * 5 + [
        "brute_force_attempt"
    ]
    derived = records[-1]
    assert derived["metadata"]["severity"] == "HIGH"
    assert derived["metadata"]["source"] == "threat_detection"
    assert derived["metadata"]["derived"] is True
    assert derived["metadata"]["details"]["rule"] == "brute_force"
    assert derived["context"] == {"user_id": "bob", "ip_address": "10.0.0.1"}
    assert [(a.rule, a.key_type, a.key, a.count) for a in alerts] == [
        ("brute_force", "user", "bob", 5)
    ]
    assert alerts[0].event.event_type is SecurityEventType.BRUTE_FORCE_ATTEMPT


def test_a_failing_hook_is_reported_and_others_still_run(
    files: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A hook that raises never affects logging or the other hooks."""
    seen: list[str] = []

    def broken(alert: ThreatAlert) -> None:
        raise RuntimeError("pager down")

    detector = get_threat_detector()
    detector.add_alert_hook(broken)
    detector.add_alert_hook(lambda alert: seen.append(alert.rule))
    _failures(get_security_logger(), 10)
    flush_logging()
    assert seen == ["brute_force", "account_lockout"]
    assert capfd.readouterr().err.count("pager down") == 1
    assert len(_security(read_log_records(files))) == 12


def test_hooks_can_be_removed() -> None:
    """remove_alert_hook stops the calls; removing an unknown hook says so."""
    detector = ThreatDetector({"brute_force": {"threshold": 2}})
    seen: list[ThreatAlert] = []
    assert detector.add_alert_hook(seen.append) == seen.append
    detector.add_alert_hook(seen.append)  # once only
    assert detector.alert_hooks == (seen.append,)
    assert detector.remove_alert_hook(seen.append) is True
    assert detector.remove_alert_hook(seen.append) is False
    assert not detector.alert_hooks


def test_a_hook_that_logs_security_events_causes_no_loop(files: Path) -> None:
    """Events an alert hook logs are written but not analyzed: no detection loop."""
    logger = get_security_logger()
    calls: list[str] = []

    def respond(alert: ThreatAlert) -> None:
        calls.append(alert.rule)
        logger.log_security_event(alert.event)  # re-logging the derived event
        _failures(logger, 20, user="victim")  # more failures, from inside the hook

    get_threat_detector().add_alert_hook(respond)
    _failures(logger, 5)
    flush_logging()
    assert calls == ["brute_force"]
    types = [r["metadata"]["event_type"] for r in _security(read_log_records(files))]
    assert types.count("brute_force_attempt") == 2  # derived + re-logged
    assert types.count("login_failure") == 25


def test_a_derived_event_logged_again_later_is_not_analyzed(files: Path) -> None:
    """Derived events (source threat_detection) never feed the rules, whoever logs them."""
    alerts: list[ThreatAlert] = []
    get_threat_detector().add_alert_hook(alerts.append)
    _failures(get_security_logger(), 5)
    derived = alerts[0].event
    for _ in range(200):
        get_security_logger().log_security_event(derived)
    assert len(alerts) == 1


def test_detection_disabled(files: Path) -> None:
    """threat_detection_enabled=False: events are written, nothing is derived."""
    configure_logging(threat_detection_enabled=False)
    alerts: list[ThreatAlert] = []
    get_threat_detector().add_alert_hook(alerts.append)
    _failures(get_security_logger(), 20)
    flush_logging()
    assert len(_security(read_log_records(files))) == 20
    assert alerts == []


def test_threat_rules_setting_configures_the_process_detector(files: Path) -> None:
    """configure_logging(threat_rules=...) applies to the detector the logger uses."""
    configure_logging(threat_rules={"brute_force": {"threshold": 2, "ip_threshold": 50}})
    alerts: list[ThreatAlert] = []
    get_threat_detector().add_alert_hook(alerts.append)
    _failures(get_security_logger(), 2)
    assert [a.rule for a in alerts] == ["brute_force"]
    assert get_threat_detector().settings["brute_force"]["threshold"] == 2
    configure_logging(threat_rules={"brute_force": {"enabled": False}}, threat_max_tracked_keys=500)
    _failures(get_security_logger(), 4, user="carol")
    assert [a.rule for a in alerts] == ["brute_force"]
    assert get_threat_detector().max_keys == 500
    assert "brute_force" not in get_threat_detector().stats()["rules"]


def test_unrelated_reconfiguration_keeps_detection_state(files: Path) -> None:
    """Changing another setting does not reset the windows (an attacker cannot reset them)."""
    alerts: list[ThreatAlert] = []
    get_threat_detector().add_alert_hook(alerts.append)
    _failures(get_security_logger(), 3)
    configure_logging(level="DEBUG")
    _failures(get_security_logger(), 2)
    assert [a.rule for a in alerts] == ["brute_force"]


def test_a_logger_with_its_own_detector(files: Path, clock: FakeClock) -> None:
    """SecurityLogger(detector=...) uses that detector and leaves the global one alone."""
    detector = ThreatDetector({"brute_force": {"threshold": 3}}, clock=clock)
    logger = SecurityLogger("app.security", detector=detector)
    assert logger.detector is detector
    assert get_security_logger().detector is get_threat_detector()
    _failures(logger, 3)
    flush_logging()
    records = _security(read_log_records(files))
    assert {r["logger"] for r in records} == {"app.security"}
    assert records[-1]["metadata"]["event_type"] == "brute_force_attempt"
    assert get_threat_detector().tracked_keys == 0


def test_full_queue_never_drops_security_events(
    log_dir: Path, stalled_writer: threading.Event
) -> None:
    """With the writer stalled and the queue full, security events wait for room."""
    configure_logging(
        directory=log_dir, queue_size=16, flush_interval=0.01, threat_detection_enabled=False,
        **QUIET,
    )  # fmt: skip
    from plexichat.core.logging import get_logger

    for i in range(100):
        get_logger("noise").info("info %d", i)

    def burst() -> None:
        for i in range(40):
            get_security_logger().log_event("data_access", user_id=f"u{i}")

    thread = threading.Thread(target=burst)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive()  # waiting for room, not dropping
    stalled_writer.set()
    thread.join(10)
    assert flush_logging(10)
    users = [r["context"]["user_id"] for r in _security(read_log_records(log_dir))]
    assert users == [f"u{i}" for i in range(40)]
    assert "SECURITY" not in get_logging_stats()["dropped"]


def test_details_that_are_not_a_mapping(files: Path) -> None:
    """Free-text details are kept; with extra keywords they move under details.details."""
    logger = get_security_logger()
    logger.log_security_event(_spec_event(details="free text"))
    logger.log_event("logout", details="note", browser="firefox")
    flush_logging()
    first, second = _security(read_log_records(files))
    assert first["metadata"]["details"] == "free text"
    assert second["metadata"]["details"] == {"details": "note", "browser": "firefox"}


def test_an_internal_failure_is_reported_not_raised(
    files: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Whatever breaks inside the security logger stays inside it."""
    from plexichat.core.logging.security import logger as module

    def broken(event: SecurityEvent) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "security_record", broken)
    get_security_logger().log_security_event(_spec_event())
    assert "could not log a security event: RuntimeError('boom')" in capfd.readouterr().err
