"""The audit trail: AUDIT records with masked before/after, never dropped, never sampled."""

from __future__ import annotations

import enum
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import configure_logging, flush_logging, get_logger, get_logging_stats
from plexichat.core.logging.security.audit import changed_keys
from plexichat.core.logging.security_logger import AuditLogger, get_audit_logger
from plexichat.core.logging.testing import read_log_records

QUIET: dict[str, Any] = {"console_enabled": False, "compression_enabled": False}


def _audit(directory: Path) -> list[dict[str, Any]]:
    flush_logging()
    return [r for r in read_log_records(directory) if r.get("level") == "AUDIT"]


def test_audit_record_layout(log_dir: Path) -> None:
    """An AUDIT record in category audit with actor, action, resource, outcome, reason."""
    configure_logging(directory=log_dir, **QUIET)
    get_audit_logger().log("admin", "delete", "user:42", "success", reason="GDPR request 17")
    line = sys._getframe().f_lineno - 1
    (record,) = _audit(log_dir)
    assert record["level"] == "AUDIT"
    assert record["category"] == "audit"
    assert record["logger"] == "plexichat.audit"
    assert record["message"] == "delete user:42: success"
    assert record["metadata"] == {
        "actor": "admin",
        "action": "delete",
        "resource": "user:42",
        "outcome": "success",
        "reason": "GDPR request 17",
    }
    assert (record["function"], record["line"]) == ("test_audit_record_layout", line)


def test_configuration_change_masks_secrets_and_lists_changes(log_dir: Path) -> None:
    """before/after are written with secret values masked; changed names what differs."""
    configure_logging(directory=log_dir, **QUIET)
    before: dict[str, Any] = {
        "level": "INFO",
        "db": {"url": "postgres://x", "password": "old"},
        "api_key": "k1",
    }
    after = {"level": "DEBUG", "db": {"url": "postgres://x", "password": "new"}, "api_key": "k1",
             "retention": "7 days"}  # fmt: skip
    get_audit_logger().log("ops@example.com", "configuration_change", "logging", "success",
                           before=before, after=after)  # fmt: skip
    (record,) = _audit(log_dir)
    meta = record["metadata"]
    assert meta["before"] == {
        "level": "INFO", "db": {"url": "postgres://x", "password": "[REDACTED]"},
        "api_key": "[REDACTED]",
    }  # fmt: skip
    assert meta["after"]["db"]["password"] == "[REDACTED]"
    assert meta["after"]["retention"] == "7 days"
    assert meta["changed"] == ["level", "db", "retention"]
    assert before["db"]["password"] == "old"  # the caller's objects are untouched


def test_before_and_after_of_any_type(log_dir: Path) -> None:
    """Non-mapping states are kept (no changed list); enums are written as their values."""

    class Outcome(enum.Enum):
        DENIED = "denied"

    configure_logging(directory=log_dir, **QUIET)
    actor = {"user_id": "u1", "ip_address": "10.0.0.5"}
    get_audit_logger().log(actor, "set_role", "user:7", Outcome.DENIED, before=["viewer"],
                           after=["admin"])  # fmt: skip
    (record,) = _audit(log_dir)
    assert record["metadata"]["actor"] == actor
    assert record["metadata"]["outcome"] == "denied"
    assert record["metadata"]["before"] == ["viewer"]
    assert "changed" not in record["metadata"]


def test_changed_keys_survives_hostile_values() -> None:
    """Values whose comparison raises give no key list instead of an error."""

    class Grumpy:
        def __eq__(self, other: object) -> bool:
            raise RuntimeError("no")

        __hash__ = object.__hash__

    assert changed_keys({"a": Grumpy()}, {"a": 1}) is None
    assert changed_keys({"a": 1, 2: "x"}, {"a": 1, 2: "y"}) == ["2"]
    assert changed_keys("x", {"a": 1}) is None


def test_audit_disabled(log_dir: Path) -> None:
    """audit_enabled=False turns the audit trail off."""
    configure_logging(directory=log_dir, audit_enabled=False, **QUIET)
    get_audit_logger().log("admin", "delete", "user:1", "success")
    assert _audit(log_dir) == []


def test_audit_never_raises(log_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Objects that cannot be printed or compared still give a record."""

    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        __str__ = __repr__

    configure_logging(directory=log_dir, **QUIET)
    get_audit_logger().log(Unprintable(), Unprintable(), "r", "success", before=Unprintable())
    (record,) = _audit(log_dir)
    assert record["message"].endswith("r: success")
    assert "unrepresentable" in record["message"]


def test_long_values_are_cut_in_the_message_only(log_dir: Path) -> None:
    """The message stays short; metadata keeps the full value."""
    configure_logging(directory=log_dir, **QUIET)
    get_audit_logger().log("a", "export", "x" * 1000, "success")
    (record,) = _audit(log_dir)
    assert len(record["message"]) < 300
    assert record["metadata"]["resource"] == "x" * 1000


def test_a_named_audit_logger() -> None:
    """AuditLogger(name) writes under that logger name."""
    assert AuditLogger("billing.audit").name == "billing.audit"
    assert get_audit_logger() is get_audit_logger()


def test_full_queue_never_drops_audit_records(
    log_dir: Path, stalled_writer: threading.Event
) -> None:
    """With the writer stalled and a 16-record queue full, audit records wait; none is lost,
    while INFO records are dropped and counted."""
    configure_logging(directory=log_dir, queue_size=16, flush_interval=0.01, **QUIET)
    for i in range(200):
        get_logger("noise").info("info %d", i)

    def burst() -> None:
        for i in range(50):
            get_audit_logger().log("svc", "read", f"doc:{i}", "success")

    thread = threading.Thread(target=burst)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive()  # blocked waiting for room, not dropping
    stalled_writer.set()
    thread.join(10)
    assert flush_logging(10)
    assert [r["metadata"]["resource"] for r in _audit(log_dir)] == [f"doc:{i}" for i in range(50)]
    stats = get_logging_stats()
    assert "AUDIT" not in stats["dropped"]
    assert stats["dropped"].get("INFO", 0) > 0


def test_an_internal_failure_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Whatever breaks inside the audit logger stays inside it."""
    from plexichat.core.logging.security import audit as module

    def broken(value: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(module, "mask_secrets", broken)
    get_audit_logger().log("a", "b", "c", "d", before={})
    assert "could not write an audit record: RuntimeError('boom')" in capfd.readouterr().err
