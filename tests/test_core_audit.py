"""Regression tests of the core audit: implicit configuration, context, logger and config
loading problems (one test group per finding)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest

from plexichat.core.logging import (
    configure_logging,
    flush_logging,
    get_logger,
    log_context,
    shutdown_logging,
)
from plexichat.core.logging._core.errors import ConfigError
from plexichat.core.logging.config import get_logging_config, validate_config_file
from plexichat.core.logging.testing import capture_logs, read_log_records
from tests.helpers import only_plexi_handler


def _records(log_dir: Path) -> list[dict[str, Any]]:
    flush_logging()
    return list(read_log_records(log_dir))


# --- 1. one bad setting keeps every valid one -------------------------------------------


def test_bad_env_value_keeps_redaction_and_other_env_settings(
    monkeypatch: pytest.MonkeyPatch, log_dir: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A typo in one variable falls back for that setting only: the operator's extra secret
    keys still mask their values and CONSOLE_ENABLED=false still holds."""
    monkeypatch.setenv("PLEXICHAT_LOG_DIRECTORY", str(log_dir))
    monkeypatch.setenv("PLEXICHAT_LOG_REDACT_KEYS", "ssn,card_pin")
    monkeypatch.setenv("PLEXICHAT_LOG_CONSOLE_ENABLED", "false")
    monkeypatch.setenv("PLEXICHAT_LOG_QUEUE_SIZE", "10k")
    get_logger("app").warning("payment", ssn="078-05-1120", card_pin="4321")
    [record] = _records(log_dir)
    assert record["context"] == {"ssn": "[REDACTED]", "card_pin": "[REDACTED]"}
    cfg = get_logging_config()
    assert cfg.console_enabled is False
    assert cfg.queue_size == 10_000
    err = capfd.readouterr().err
    assert "queue_size='10k' (from env PLEXICHAT_LOG_QUEUE_SIZE)" in err
    assert "using the defaults for queue_size" in err
    assert "payment" not in err  # the console stayed off


def test_bad_redaction_setting_fails_closed(monkeypatch: pytest.MonkeyPatch, log_dir: Path) -> None:
    """When a redaction setting itself is invalid, context and metadata are withheld."""
    monkeypatch.setenv("PLEXICHAT_LOG_DIRECTORY", str(log_dir))
    monkeypatch.setenv("PLEXICHAT_LOG_CONSOLE_ENABLED", "false")
    monkeypatch.setenv("PLEXICHAT_LOG_REDACT_PATTERNS", "jwt,no_such_pattern")
    get_logger("app").warning("payment", ssn="078-05-1120")
    [record] = _records(log_dir)
    assert "078-05-1120" not in str(record)
    assert get_logging_config().console_enabled is False


# --- 2. an empty REDACT_PATTERNS means the default ---------------------------------------


@pytest.mark.parametrize("value", ["", "  ", "None", "null", "[]"])
def test_empty_redact_patterns_env_keeps_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """An unset-looking value is the default pattern set, so secrets stay masked."""
    monkeypatch.setenv("PLEXICHAT_LOG_REDACT_PATTERNS", value)
    cfg = configure_logging(file_enabled=False, console_enabled=False)
    assert "bearer" in cfg.redact_patterns
    with capture_logs() as events:
        get_logger("app").warning("call Authorization: Bearer abcdefghijklmnop1234")
    assert "abcdefghijklmnop1234" not in events[0]["message"]


@pytest.mark.parametrize("value", ["none", "NONE", "off"])
def test_explicit_none_turns_value_patterns_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Only the explicit word turns the value patterns off."""
    monkeypatch.setenv("PLEXICHAT_LOG_REDACT_PATTERNS", value)
    assert configure_logging(file_enabled=False, console_enabled=False).redact_patterns == []


# --- 3. one log_context instance shared by threads and tasks -----------------------------


def test_shared_log_context_instance_in_threads() -> None:
    """The same instance entered by many threads at once never raises and binds in each."""
    configure_logging(file_enabled=False, console_enabled=False)
    shared = log_context(component="worker")
    errors: list[BaseException] = []
    seen: list[Any] = []

    def work(i: int) -> None:
        try:
            for _ in range(50):
                with shared as view:
                    time.sleep(0.0005 * (i % 3))
                    seen.append(view.get("component"))
        except BaseException as exc:  # collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert seen == ["worker"] * 400


def test_shared_log_context_instance_in_asyncio_tasks() -> None:
    """Overlapping asyncio tasks entering one instance exit cleanly, each with its fields."""
    configure_logging(file_enabled=False, console_enabled=False)
    shared = log_context(component="worker")
    log = get_logger("tasks")

    async def handle(i: int) -> None:
        with shared:
            await asyncio.sleep(0.01 * (i + 1))  # the first in is the first out
            log.info("done %s", i)

    async def main() -> list[Any]:
        return await asyncio.gather(*(handle(i) for i in range(3)), return_exceptions=True)

    with capture_logs() as events:
        assert asyncio.run(main()) == [None, None, None]
    assert [e["context"] for e in events] == [{"component": "worker"}] * 3


def test_shared_decorator_used_recursively() -> None:
    """A decorator instance re-entered (recursion) restores each level correctly."""
    configure_logging(file_enabled=False, console_enabled=False)

    @log_context(step="x")
    def recurse(n: int) -> int:
        return 0 if n == 0 else 1 + recurse(n - 1)

    assert recurse(5) == 5
    with log_context(a=1) as view:
        assert dict(view) == {"a": 1}


# --- 4. loggers held across shutdown_logging --------------------------------------------


def test_logger_held_across_shutdown_reconfigures(
    monkeypatch: pytest.MonkeyPatch, log_dir: Path
) -> None:
    """A logger obtained before shutdown_logging reconfigures on its next call."""
    monkeypatch.setenv("PLEXICHAT_LOG_DIRECTORY", str(log_dir))
    monkeypatch.setenv("PLEXICHAT_LOG_CONSOLE_ENABLED", "false")
    log = get_logger("held")
    log.info("one")
    shutdown_logging()
    with only_plexi_handler():
        log.info("two")
        log.error("three")
    assert [r["message"] for r in _records(log_dir)] == ["one", "two", "three"]


# --- 5. a custom LogRecord factory ------------------------------------------------------


def test_record_factory_attributes_reach_plexichat_loggers(log_dir: Path) -> None:
    """With a custom record factory, PlexiChat loggers build LogRecords too."""
    configure_logging(console_enabled=False, directory=log_dir)
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        record.request_id = "req-42"
        return record

    logging.setLogRecordFactory(factory)
    try:
        with only_plexi_handler():
            get_logger("app").info("plexi")
            logging.getLogger("lib").warning("stdlib")
    finally:
        logging.setLogRecordFactory(base)
    records = _records(log_dir)
    assert [(r["logger"], r.get("context")) for r in records] == [
        ("app", {"request_id": "req-42"}),
        ("lib", {"request_id": "req-42"}),
    ]


# --- 6. @log_context on generators ------------------------------------------------------


def test_log_context_decorates_generators() -> None:
    """Generator and async generator functions see the fields in each step (and only
    then), including values sent in, exceptions thrown in and the return value."""
    configure_logging(file_enabled=False, console_enabled=False)
    log = get_logger("gen")

    @log_context(job="export")
    def rows() -> Generator[int, int, None]:
        log.info("row 1")
        got = yield 1
        log.info("row %s", got)
        try:
            yield 2
        except KeyError:
            log.info("thrown")
            yield 3

    @log_context(job="stream")
    async def events() -> AsyncIterator[int]:
        log.info("event")
        yield 1
        log.info("event again")
        yield 2

    async def consume() -> list[int]:
        return [item async for item in events()]

    with capture_logs() as captured:
        gen = rows()
        assert next(gen) == 1
        log.info("between")
        assert gen.send(5) == 2
        assert gen.throw(KeyError("k")) == 3
        gen.close()
        assert asyncio.run(consume()) == [1, 2]
    assert [(e["message"], e.get("context")) for e in captured] == [
        ("row 1", {"job": "export"}),
        ("between", None),
        ("row 5", {"job": "export"}),
        ("thrown", {"job": "export"}),
        ("event", {"job": "stream"}),
        ("event again", {"job": "stream"}),
    ]


# --- 7. an empty directory -------------------------------------------------------------


def test_empty_directory_env_means_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PLEXICHAT_LOG_DIRECTORY="" is the default directory, never the working directory."""
    monkeypatch.setenv("PLEXICHAT_LOG_DIRECTORY", "  ")
    monkeypatch.setenv("PLEXICHAT_LOG_INTEGRITY_KEY_DIRECTORY", "")
    cfg = configure_logging(console_enabled=False)
    assert cfg.directory == Path("logs")
    assert cfg.integrity_key_directory is None
    get_logger("app").warning("hello")
    flush_logging()
    assert not (tmp_path / "keys").exists()
    assert (tmp_path / "logs" / "keys").is_dir()


# --- 8. hostile YAML files --------------------------------------------------------------


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    """Nested aliases are refused at once with a short message."""
    lines = ["third_party_levels:", '  k: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"  k{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="expands to more than") as info:
        validate_config_file(path)
    assert time.monotonic() - started < 2.0
    assert len(str(info.value)) < 2000


def test_small_yaml_aliases_still_work(tmp_path: Path) -> None:
    """An ordinary anchor and alias is fine."""
    path = tmp_path / "anchor.yaml"
    path.write_text("level: &l DEBUG\nconsole_level: *l\n", encoding="utf-8")
    assert validate_config_file(path).console_level == "DEBUG"


def test_oversized_config_file_is_refused(tmp_path: Path) -> None:
    """A file over 1 MiB is refused with a clear error."""
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * (1024 * 1024) + "\nlevel: INFO\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="larger than 1024 KiB"):
        validate_config_file(path)


def test_error_message_of_a_huge_value_is_bounded() -> None:
    """An invalid huge value is shown abridged."""
    with pytest.raises(ConfigError) as info:
        configure_logging(third_party_levels={"x": ["y" * 10_000] * 1000})
    assert len(str(info.value)) < 3000


# --- 9. a bad stacklevel ----------------------------------------------------------------


@pytest.mark.parametrize("stacklevel", ["2", "bad", None, 1.5])
def test_bad_stacklevel_counts_as_one(log_dir: Path, stacklevel: Any) -> None:
    """A stacklevel that is not a whole number neither drops the record nor raises."""
    configure_logging(console_enabled=False, directory=log_dir)
    log = get_logger("stack")
    with only_plexi_handler():  # the fast path
        log.info("fast", stacklevel=stacklevel)
        log.warn("warn", stacklevel=stacklevel)
    log.info("slow", stacklevel=stacklevel)  # pytest's handlers: the stdlib path
    records = _records(log_dir)
    assert [r["message"] for r in records] == ["fast", "warn", "slow"]
    assert {r["function"] for r in records} == {"test_bad_stacklevel_counts_as_one"}


# --- 10. intervals with units, duplicate rule keys --------------------------------------


def test_intervals_accept_durations_with_units() -> None:
    """The four interval settings take the same duration syntax as the others."""
    cfg = configure_logging(
        file_enabled=False,
        console_enabled=False,
        flush_interval="100 ms",
        performance_interval="30s",
        alert_timeout="5 sec",
        metrics_history_interval="2 min",
    )
    assert (cfg.flush_interval, cfg.performance_interval) == (0.1, 30.0)
    assert (cfg.alert_timeout, cfg.metrics_history_interval) == (5.0, 120.0)
    with pytest.raises(ConfigError, match="cannot be turned off"):
        configure_logging(flush_interval="off")
    with pytest.raises(ConfigError, match="less than or equal to 60"):
        configure_logging(flush_interval="2 min")


def test_duplicate_retention_rule_keys_in_env_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DEBUG=3 days,DEBUG=4 days names the repeated key instead of keeping one silently."""
    monkeypatch.setenv("PLEXICHAT_LOG_RETENTION_RULES", "DEBUG=3 days,DEBUG=4 days")
    with pytest.raises(ConfigError, match="'DEBUG' is given twice"):
        configure_logging(file_enabled=False)
