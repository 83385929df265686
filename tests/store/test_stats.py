"""Window statistics: buckets, error rate, normalized patterns and ingestion lag."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from plexichat.core.logging._core.clock import iso_utc
from plexichat.core.logging.store import LogStore, open_store
from plexichat.core.logging.store.base import record_from_event
from plexichat.core.logging.store.stats import normalize_message, window_stats

NOW = 1_705_320_000.0  # 2024-01-15T12:00:00Z


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LogStore]:
    """An embedded store with records spread over the last three hours."""
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    events = []
    for i in range(30):
        level = "ERROR" if i % 10 == 0 else "INFO"
        events.append(
            {
                "timestamp": iso_utc(NOW - 3 * 3600 + i * 360 + 1),
                "level": level,
                "category": "database" if level == "ERROR" else "api",
                "message": f"request {i} for user u{i % 3} took {i * 1.5} ms"
                if level == "INFO"
                else f"db timeout after {i}s",
                "logger": "svc",
                "stream": "s1",
                "seq": i + 1,
            }
        )
    s.append([record_from_event(e) for e in events])
    yield s
    s.close()


def test_masks_numbers_ids_ips_and_uuids() -> None:
    """Records of one kind share one pattern whatever their numbers and ids."""
    assert normalize_message("user u42 failed 3 times from 10.0.0.7") == (
        "user <id> failed <n> times from <ip>"
    )
    assert normalize_message("req 550e8400-e29b-41d4-a716-446655440000 in 45.2ms") == (
        "req <uuid> in <n>ms"
    )


def test_window_counts_buckets_and_error_rate(store: LogStore) -> None:
    """The last two hours: counts per level and hour, and the share of errors."""
    stats = window_stats(store, window=2 * 3600, bucket="hour", now=NOW)
    assert stats.records == 20
    assert stats.levels == {"INFO": 18, "ERROR": 2}
    assert stats.error_rate == pytest.approx(0.1)
    assert sum(stats.buckets.values()) == 20
    assert list(stats.buckets) == sorted(stats.buckets)
    assert stats.categories == {"api": 18, "database": 2}


def test_security_and_audit_records_are_not_errors(store: LogStore) -> None:
    """SECURITY and AUDIT rank above CRITICAL but are events, not failures: the API's own
    audit records of reads must not raise the error rate; CRITICAL counts."""
    extra = [
        {"timestamp": iso_utc(NOW - 60), "level": level, "message": level, "stream": "s2", "seq": n}
        for n, level in enumerate(("SECURITY", "AUDIT", "AUDIT", "CRITICAL"), 1)
    ]
    store.append([record_from_event(e) for e in extra])
    stats = window_stats(store, window=2 * 3600, bucket="hour", now=NOW)
    assert stats.records == 24
    assert stats.errors == 3  # the two ERROR records and the CRITICAL one
    assert stats.error_rate == pytest.approx(3 / 24)


def test_top_patterns_group_similar_messages(store: LogStore) -> None:
    """Thirty different messages collapse into two patterns, most frequent first."""
    stats = window_stats(store, window=4 * 3600, now=NOW)
    assert stats.top_patterns == [
        {"level": "INFO", "pattern": "request <n> for user <id> took <n> ms", "count": 27},
        {"level": "ERROR", "pattern": "db timeout after <n>s", "count": 3},
    ]


def test_ingestion_lag_is_distance_to_newest_record(store: LogStore) -> None:
    """The lag is how far the newest stored record is behind now."""
    stats = window_stats(store, window=4 * 3600, now=NOW)
    assert stats.newest == iso_utc(NOW - 3 * 3600 + 29 * 360 + 1)
    assert stats.ingestion_lag_seconds == pytest.approx(3 * 3600 - 29 * 360 - 1, abs=0.01)


def test_empty_window_and_bad_arguments(store: LogStore) -> None:
    """An empty window has no lag; an unknown bucket or a bad window is refused."""
    empty = window_stats(store, window=60, now=NOW + 86400)
    assert (empty.records, empty.error_rate, empty.ingestion_lag_seconds) == (0, 0.0, None)
    with pytest.raises(ValueError, match="allowed are minute, hour, day"):
        window_stats(store, bucket="week")
    with pytest.raises(ValueError, match="> 0"):
        window_stats(store, window=0)


def test_cli_stats_json(tmp_path: Path) -> None:
    """`plexichat-logs stats --json` reports all-time counts and the recent window."""
    now = iso_utc(__import__("time").time() - 5)
    app = tmp_path / "app.jsonl"
    app.write_bytes(
        orjson.dumps({"timestamp": now, "level": "ERROR", "message": "db timeout 5"}) + b"\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    env["PLEXICHAT_LOG_DIRECTORY"] = str(tmp_path / "logs")
    cli = [sys.executable, "-m", "plexichat.core.logging.cli"]
    assert subprocess.run([*cli, "import", str(app)], env=env, capture_output=True).returncode == 0
    done = subprocess.run([*cli, "stats", "--json"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    doc = orjson.loads(done.stdout)
    assert doc["all_time"]["records"] == 1
    assert doc["window"]["error_rate"] == 1.0
    assert doc["window"]["top_patterns"][0]["pattern"] == "db timeout <n>"
    bad = subprocess.run([*cli, "stats", "--window", "soon"], env=env, capture_output=True)
    assert bad.returncode == 2


def test_cli_stats_verify_reports_the_integrity_status(tmp_path: Path) -> None:
    """`stats --verify` adds the segment files' verification: intact, then the finding after
    a record is changed; without any key it says why the status is unknown."""
    from plexichat.core.logging import configure_logging, get_logger, shutdown_logging

    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, console_enabled=False, non_blocking=False)
    for i in range(5):
        get_logger("svc").info("request %d", i)
    shutdown_logging()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    env["PLEXICHAT_LOG_DIRECTORY"] = str(log_dir)
    cli = [sys.executable, "-m", "plexichat.core.logging.cli"]

    def stats() -> dict[str, Any]:
        done = subprocess.run(
            [*cli, "stats", "--verify", "--json"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        status: dict[str, Any] = orjson.loads(done.stdout)["integrity"]
        return status

    assert stats()["ok"] is True
    segment = next(log_dir.glob("*.jsonl"))
    segment.write_bytes(segment.read_bytes().replace(b"request 3", b"request 9"))
    status = stats()
    assert status["ok"] is False
    assert status["findings"][0]["kind"] == "MODIFIED"
    (log_dir / "keys" / "auditor.key").unlink()
    assert stats()["status"] == "unknown"
