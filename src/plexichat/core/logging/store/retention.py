"""Retention: how long records are kept, by age, by total size and per level or category.

* ``max_age`` (setting ``retention_age``) is the **default**, for records no rule names.
* A **level rule** (``"DEBUG": "3 days"``) or **category rule** (``"category:security":
  "1 year"``) replaces the default for the records it names: ``DEBUG: 3 days`` deletes debug
  records early, ``AUDIT: 7 years`` keeps audit records past a 30-day default. When a
  record's level and category both have a rule, the **longest wins**. ``"off"`` keeps forever.
* ``max_total_bytes`` (setting ``retention_size``) caps the store's record bytes (the stored
  lines; indexes come on top): after the age rules, the oldest records go first whatever
  their rule, **except** records at level SECURITY or AUDIT (or above) or in category
  ``security`` or ``audit``: a size limit never deletes those.

The store (``LogStore.apply_retention``, :func:`run_retention`) applies every rule per
record. SQLite deletes in short transactions (~25 ms of work, then a pause at least as long
and >= 30 ms, in which a waiting writer's busy-retry lands); PostgreSQL first drops the
monthly partitions wholly before the longest rule's cut-off (everything in them has
expired), then deletes in batches.

Segment files are whole: :func:`files_retention` deletes a closed segment only when the
default age/size policy of :func:`~plexichat.core.logging.sinks.maintenance.apply_retention`
says so **and** no record in it falls under a level or category rule longer than the
segment's age (counted from its last write). Shorter rules never delete a segment early.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from .._config.model import LoggingConfig, check_retention_rules
from .._config.units import format_duration, parse_duration, parse_size
from .._core.errors import ConfigError
from ..integrity._format import CONTROL_PREFIX
from ..integrity._prune import announce_prune
from ..sinks.maintenance import RetentionPolicy, apply_retention
from ..sinks.segments import Segment, claim_segment, iter_lines

__all__ = [
    "PROTECTED_CATEGORIES",
    "FilesReport",
    "RetentionRules",
    "Rule",
    "StoreOps",
    "describe_age",
    "files_retention",
    "postgres_ops",
    "run_retention",
    "sqlite_ops",
]

PROTECTED_CATEGORIES = ("security", "audit")
"""Categories a size limit never deletes (nor levels SECURITY and AUDIT)."""

_PROTECTED_LEVELNO = 60  # SECURITY; AUDIT is 70
_NEVER = -(2**62)  # a cut-off no time is below (kept forever); a bigint literal in SQL
_YEAR = 31_536_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SCAN = 2000  # rows read per step of a walk
_PAUSE_TARGET_S = 0.025  # work per SQLite write transaction
_PAUSE_MIN_S = 0.03  # > the 25 ms busy-retry step of a waiting SQLite writer


def describe_age(seconds: float | None) -> str:
    """``"7 years"``, ``"3 days"``; ``"forever"`` for None."""
    if seconds is None:
        return "forever"
    if seconds >= _YEAR and seconds % _YEAR == 0:
        years = int(seconds // _YEAR)
        return f"{years} year{'s' if years != 1 else ''}"
    return format_duration(seconds)


@dataclass(frozen=True, slots=True)
class Rule:
    """One retention rule: ``key`` is a level name, ``category:NAME`` or ``default``.

    ``max_age`` is in seconds; None keeps the records it governs forever.
    """

    key: str
    max_age: float | None

    @property
    def label(self) -> str:
        """``"DEBUG (3 days)"``."""
        return f"{self.key} ({describe_age(self.max_age)})"

    def names(self, level: str, category: str) -> bool:
        """Whether this rule names a record of ``level`` and ``category`` (default: none)."""
        kind, sep, name = self.key.partition(":")
        if sep:
            return category.lower() == name
        return kind != "default" and level.upper() == kind


def _precedence(rule: Rule) -> tuple[int, float, str]:
    return (0 if rule.max_age is None else 1, -(rule.max_age or 0.0), rule.key)


@dataclass(frozen=True, slots=True)
class RetentionRules:
    """The retention policy: the default age (seconds; None keeps forever), the size limit
    (bytes; None: none) and the level/category rules, kept longest first.

    Example:
        >>> rules = RetentionRules.from_mapping({"AUDIT": "7 years"}, max_age="30 days")
        >>> rules.governing("AUDIT", "audit").label
        'AUDIT (7 years)'
    """

    max_age: float | None = None
    max_total_bytes: int | None = None
    rules: tuple[Rule, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(sorted(self.rules, key=_precedence)))

    @classmethod
    def from_mapping(
        cls, rules: Mapping[str, object], *, max_age: object = None, max_total_bytes: object = None
    ) -> RetentionRules:
        """Rules from setting values: ``{"DEBUG": "3 days", "category:security": "1 year"}``.

        Raises:
            ConfigError: naming the bad key or value and what is allowed.
        """
        try:
            checked = check_retention_rules(dict(rules))
            age, size = parse_duration(max_age), parse_size(max_total_bytes)
        except ValueError as exc:
            raise ConfigError(f"invalid retention policy: {exc}") from None
        parsed = tuple(Rule(key, parse_duration(value)) for key, value in checked.items())
        return cls(age, size, parsed)

    @classmethod
    def from_config(cls, config: LoggingConfig) -> RetentionRules:
        """The rules of a configuration: ``retention_age``, ``retention_size``,
        ``retention_rules``."""
        age, size = config.retention_age, config.retention_size
        return cls.from_mapping(config.retention_rules, max_age=age, max_total_bytes=size)

    @property
    def default(self) -> Rule:
        """The rule of records no level or category rule names."""
        return Rule("default", self.max_age)

    def governing(self, level: str, category: str) -> Rule:
        """The rule that decides how long a record is kept: the longest rule naming it, or
        the default when none does."""
        for rule in self.rules:
            if rule.names(level, category):
                return rule
        return self.default

    @property
    def longest_age(self) -> float | None:
        """The age after which every record has expired; None when some are kept forever."""
        ages = [rule.max_age for rule in (*self.rules, self.default)]
        return None if None in ages else max(a for a in ages if a is not None)

    def report_keys(self) -> list[str]:
        """The keys of a retention report, in order: rules, ``default``, then ``size``."""
        keys = [rule.key for rule in self.rules] + ["default"]
        return keys + (["size"] if self.max_total_bytes is not None else [])


# -- the store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreOps:
    """What :func:`run_retention` needs of a backend: its parameter marker, record table,
    SQL of a row's bytes, a SELECT runner, a delete of ``(ts, id)`` keys in one transaction
    (returns rows deleted), the largest delete, whether to pace deletes (SQLite: writers wait
    meanwhile) and, for PostgreSQL, the drop of partitions before a time (microseconds)."""

    placeholder: str
    table: str
    octets: str
    fetch: Callable[[str, Sequence[object]], list[tuple[Any, ...]]]
    delete: Callable[[Sequence[tuple[int, int]]], int]
    max_batch: int = 2000
    pace: bool = False
    drop_before: Callable[[int], int] | None = None


_SQLITE_DELETE = """DELETE FROM records WHERE tid IN
    (SELECT tid FROM records WHERE id IN (SELECT value FROM json_each(?)))"""
"""A chunk's rows in one statement, in key order. FTS5 writes its pending changes to a new
segment at every statement savepoint and whenever a row's key is lower than the one before:
one statement per row made a segment per row, whose merge work (~50 ms per 64 pages
written) fell inside the delete transactions and held writers up to 150-200 ms on 1 M
records; one statement in key order writes one segment per transaction."""


def sqlite_ops(
    conn: Callable[[], sqlite3.Connection],
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
) -> StoreOps:
    """The SQLite store's operations: reads on ``conn()``, deletes in ``transaction()``
    (``BEGIN IMMEDIATE``), paced so writers get the lock between transactions."""

    def fetch(stmt: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        return conn().execute(stmt, params).fetchall()

    def delete(keys: Sequence[tuple[int, int]]) -> int:
        with transaction() as db:
            ids = orjson.dumps([row_id for _, row_id in keys])
            done = db.execute(_SQLITE_DELETE, (ids,)).rowcount
        # copy the pages just written into the database now, while writers go on: left to
        # SQLite, the copy (up to hundreds of ms) runs in whichever commit finds the
        # write-ahead log past 1000 pages, often a writer's
        conn().execute("PRAGMA wal_checkpoint(PASSIVE)")
        return int(done)

    return StoreOps("?", "records", "length(CAST(raw AS BLOB))", fetch, delete, pace=True)


def postgres_ops(
    connection: Callable[[], AbstractContextManager[Any]],
    drop_before: Callable[[int], int],
    delete: Callable[[Sequence[tuple[int, int]]], int],
) -> StoreOps:
    """The PostgreSQL store's operations: autocommit statements on pooled connections,
    deletes of 5000 rows by ``delete`` (the store's: records and their field rows), whole
    partitions dropped by ``drop_before``."""

    def fetch(stmt: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        with connection() as conn:
            return list(conn.execute(stmt, list(params)).fetchall())

    return StoreOps(
        "%s", "plexichat_records", "octet_length(raw)", fetch, delete,
        max_batch=5000, drop_before=drop_before,
    )  # fmt: skip


class _Sql:
    """The SQL pieces of a rule set: which rule governs a row, and its cut-off."""

    def __init__(self, rules: RetentionRules, now_us: int, ph: str) -> None:
        self.rules = rules
        whens: list[str] = []
        self.params: list[object] = []
        for rule in rules.rules:
            kind, sep, name = rule.key.partition(":")
            whens.append(f"lower(category) = {ph}" if sep else f"level = {ph}")
            self.params.append(name if sep else kind)
        cutoffs = [_cutoff(rule, now_us) for rule in (*rules.rules, rules.default)]
        self.index = self._case(whens, [str(i) for i in range(len(cutoffs))])
        self.cutoff = self._case(whens, [str(c) for c in cutoffs])
        finite = [c for c in cutoffs if c != _NEVER]
        self.walk_end = max(finite) if finite else None  # nothing younger ever expires

    @staticmethod
    def _case(whens: list[str], values: list[str]) -> str:
        if not whens:
            return values[-1]
        body = " ".join(f"WHEN {w} THEN {v}" for w, v in zip(whens, values, strict=False))
        return f"(CASE {body} ELSE {values[-1]} END)"


def _cutoff(rule: Rule, now_us: int) -> int:
    return _NEVER if rule.max_age is None else now_us - int(rule.max_age * 1_000_000)


def _month_start(ts_us: int) -> int:
    moment = _EPOCH + timedelta(microseconds=ts_us)
    first = datetime(moment.year, moment.month, 1, tzinfo=UTC)
    return (first - _EPOCH) // timedelta(microseconds=1)


class _Deleter:
    """Deletes rows in transactions short enough for writers (when the backend needs it)."""

    def __init__(self, ops: StoreOps) -> None:
        self.ops = ops
        self.size = min(ops.max_batch, 100) if ops.pace else ops.max_batch

    def __call__(self, keys: Sequence[tuple[int, int]]) -> int:
        done = 0
        while keys:
            chunk, keys = keys[: self.size], keys[self.size :]
            started = time.perf_counter()
            done += self.ops.delete(chunk)
            took = time.perf_counter() - started
            if self.ops.pace:  # ~25 ms per transaction, then a pause writers' retries hit
                scale = _PAUSE_TARGET_S / max(took, 1e-4)
                self.size = max(50, min(self.ops.max_batch, int(len(chunk) * min(scale, 2.0))))
                time.sleep(max(took, _PAUSE_MIN_S))
        return done


def run_retention(
    ops: StoreOps, rules: RetentionRules, *, now: float | None = None, dry_run: bool = False
) -> dict[str, int]:
    """Apply ``rules`` to a store: delete (``dry_run``: only count) what they no longer keep.

    Returns:
        Records deleted (or that would be) per rule key, in :meth:`RetentionRules.report_keys`
        order: each level/category rule, ``default``, and ``size`` when a size limit is set.
    """
    now_us = int((time.time() if now is None else now) * 1_000_000)
    sql = _Sql(rules, now_us, ops.placeholder)
    keys = rules.report_keys()
    counts = dict.fromkeys(keys, 0)
    deleter = _Deleter(ops)
    start = _NEVER
    longest = rules.longest_age
    if ops.drop_before is not None and longest is not None:
        start = _month_start(now_us - int(longest * 1_000_000))
        stmt = f"SELECT {sql.index}, count(*) FROM {ops.table} WHERE ts < {start} GROUP BY 1"
        for index, n in ops.fetch(stmt, sql.params):
            counts[keys[index]] += int(n)
        if not dry_run:
            ops.drop_before(start)
    if sql.walk_end is not None:
        _expire_by_age(ops, sql, start, counts, deleter if not dry_run else None)
    if rules.max_total_bytes is not None:
        counts["size"] = _expire_by_size(ops, sql, start, deleter if not dry_run else None)
    return counts


def _expire_by_age(
    ops: StoreOps, sql: _Sql, start: int, counts: dict[str, int], deleter: _Deleter | None
) -> None:
    ph, keys = ops.placeholder, sql.rules.report_keys()
    stmt = (
        f"SELECT id, ts, {sql.index} FROM {ops.table} WHERE ts >= {start} "
        f"AND ts < {sql.walk_end} AND (ts, id) > ({ph}, {ph}) AND ts < {sql.cutoff} "
        f"ORDER BY ts, id LIMIT {_SCAN}"
    )
    after: tuple[int, int] = (_NEVER, _NEVER)
    while True:
        rows = ops.fetch(stmt, [*sql.params, *after, *sql.params])
        groups: dict[int, list[tuple[int, int]]] = {}
        for row_id, ts, index in rows:
            groups.setdefault(int(index), []).append((ts, row_id))
        for index, group in groups.items():
            counts[keys[index]] += len(group) if deleter is None else deleter(group)
        if len(rows) < _SCAN:
            return
        after = (rows[-1][1], rows[-1][0])


def _expire_by_size(ops: StoreOps, sql: _Sql, start: int, deleter: _Deleter | None) -> int:
    """Delete the oldest unprotected records until the rest fit the size limit."""
    limit = sql.rules.max_total_bytes or 0
    live = f"ts >= {start} AND NOT (ts < {sql.cutoff})"  # what the age rules keep
    total = f"SELECT coalesce(sum({ops.octets}), 0) FROM {ops.table} WHERE {live}"
    excess = int(ops.fetch(total, sql.params)[0][0]) - limit
    ph, names = ops.placeholder, ", ".join(f"'{name}'" for name in PROTECTED_CATEGORIES)
    stmt = (
        f"SELECT id, ts, {ops.octets} FROM {ops.table} WHERE {live} AND (ts, id) > ({ph}, {ph}) "
        f"AND levelno < {_PROTECTED_LEVELNO} AND lower(category) NOT IN ({names}) "
        f"ORDER BY ts, id LIMIT {_SCAN}"
    )
    after: tuple[int, int] = (_NEVER, _NEVER)
    removed = 0
    while excess > 0:
        rows = ops.fetch(stmt, [*sql.params, *after])
        doomed: list[tuple[int, int]] = []
        for row_id, ts, size in rows:
            if excess <= 0:
                break
            doomed.append((ts, row_id))
            excess -= int(size)
        removed += len(doomed) if deleter is None else deleter(doomed)
        if len(rows) < _SCAN:
            break
        after = (rows[-1][1], rows[-1][0])
    return removed


# -- segment files ------------------------------------------------------------------------------


@dataclass
class FilesReport:
    """What :func:`files_retention` did (dry run: would do): segments ``deleted`` (oldest
    first) and their ``freed_bytes``; segments the default policy would delete but ``kept``,
    with the key of the rule that still protects a record in them (``"unreadable"``: the
    segment could not be read, so it is kept)."""

    deleted: list[Path] = field(default_factory=list)
    kept: dict[Path, str] = field(default_factory=dict)
    freed_bytes: int = 0


def files_retention(
    directory: Path,
    rules: RetentionRules,
    *,
    prefix: str | None = None,
    now: float | None = None,
    dry_run: bool = False,
    key_dir: Path | None = None,
) -> FilesReport:
    """Delete the closed segments the default age/size policy no longer keeps, except those
    holding a record that a longer level or category rule still protects.

    A segment is read (streaming; gzip and zstd too) only when some rule is longer than its
    age. A text (console-format) segment cannot be checked record by record: it is kept while
    any level or category rule is longer than its age. Segments being written are never
    touched. ``prefix`` limits it to one file prefix; ``now`` (epoch seconds) is for tests.
    """
    now = time.time() if now is None else now
    policy = RetentionPolicy(rules.max_age, rules.max_total_bytes)
    report = FilesReport()
    for path in apply_retention(directory, policy, prefix=prefix, now=now, dry_run=True):
        try:
            st = path.stat()
        except OSError:
            continue
        protector = _protector(path, rules, now - st.st_mtime)
        if protector is not None:
            report.kept[path] = protector
            continue
        if not dry_run:
            with claim_segment(path) as claimed:
                if not claimed:
                    continue  # a writer picked it up again
                announce_prune(directory, path, key_dir)
                try:
                    path.unlink()
                except FileNotFoundError:
                    continue
        report.deleted.append(path)
        report.freed_bytes += st.st_size
    return report


def _protector(path: Path, rules: RetentionRules, age: float) -> str | None:
    """The key of a rule longer than ``age`` that names a record of the segment, if any."""
    longer = [r for r in rules.rules if r.max_age is None or r.max_age > age]
    if not longer:
        return None
    seg = Segment.parse(path)
    if seg is None or not seg.structured:
        return longer[0].key
    try:
        for _, line in iter_lines(path):
            if line.startswith(CONTROL_PREFIX):
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(event, dict):
                continue
            level, category = event.get("level"), event.get("category")
            level = level if isinstance(level, str) else "INFO"
            category = category if isinstance(category, str) else "system"
            for rule in longer:
                if rule.names(level, category):
                    return rule.key
    except Exception:  # noqa: BLE001 - damaged data (OSError, EOFError, ZstdError): cannot tell
        return "unreadable"
    return None
