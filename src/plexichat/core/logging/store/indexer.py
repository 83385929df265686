"""The indexer: follows a log directory and appends its records to a store.

Every stream, every segment (rotated and compressed ones too) is read in order from the
position saved for it; records and the new positions are saved in one transaction, so a
restart (or a crash) neither skips nor repeats a record. A segment read to its end after it
was closed is marked done and never opened again; one that cannot be read (permissions,
too many open files) is read again at the next pass, and one with damaged data is marked
done at the damage once it has stopped changing. A pass that finds nothing new writes
nothing: a store written 20 times a second for nothing would make every reader drop its
page cache (a write changes the database) and grow the write-ahead log.
"""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .._core.errors import error_reporter
from ..integrity._format import CONTROL_PREFIX
from ..sinks.segments import (
    OversizedLine,
    Segment,
    compressed_successor,
    iter_lines,
    list_segments,
)
from .base import LogStore, StoredRecord, record_from_line

__all__ = ["IndexReport", "Indexer", "segment_key"]

BATCH = 5000
DONE = "!done"
"""Appended to a segment's key once the closed segment has been read to its end."""
SETTLE = 120.0
"""Seconds a segment with damaged data must stay unchanged before it is marked done at the
damage: a compressed file still being copied in reads as cut off until the copy ends."""
DAMAGED = (EOFError, zlib.error, gzip.BadGzipFile)
"""Errors of damaged or cut-off compressed data (zstd errors arrive as EOFError)."""


def _settled(path: Path) -> bool:
    """Whether the file has not changed for :data:`SETTLE` seconds (gone: not settled)."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return False
    return abs(age) >= SETTLE


def segment_key(seg: Segment) -> str:
    """The position key of a segment: the same before and after it is compressed."""
    return f"{seg.prefix}.{seg.stream}.{seg.index:06d}"


@dataclass
class IndexReport:
    """What one pass indexed, and what it had to skip."""

    records: int = 0
    duplicates: int = 0
    malformed: int = 0
    oversized: int = 0
    segments: int = 0
    errors: list[str] = field(default_factory=list)


class Indexer:
    """Indexes one log directory into one store (one indexer per directory and store).

    Args:
        directory: the log directory.
        store: the store to fill.
        prefix: only segments with this file prefix (default: all).
        on_records: called with each batch appended (the live-tail hub of the server).
    """

    def __init__(
        self,
        directory: Path,
        store: LogStore,
        *,
        prefix: str | None = None,
        on_records: Callable[[list[StoredRecord]], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.store = store
        self.prefix = prefix
        self.on_records = on_records

    def run_once(self) -> IndexReport:
        """Index everything written since the last pass."""
        report = IndexReport()
        positions = self.store.positions()
        for segs in list_segments(self.directory, self.prefix).values():
            newest = segs[-1].index
            for seg in segs:
                key = segment_key(seg)
                if key + DONE in positions:
                    continue
                offset = positions.get(key, 0)
                closed = seg.compression is not None or seg.index != newest
                self._index_segment(seg, key, offset, closed, report)
        return report

    def _index_segment(
        self, seg: Segment, key: str, offset: int, closed: bool, report: IndexReport
    ) -> None:
        """Index one segment from ``offset``; what was read is saved even when reading fails.

        A closed segment read to its end is marked done. Damaged data (corrupt or cut-off
        compressed data) marks it done at the damage once the file has stayed unchanged for
        :data:`SETTLE` seconds; any other read error (permissions, too many open files, I/O)
        saves the progress only, and the segment is read again at the next pass.
        """
        report.segments += 1
        batch: list[StoredRecord] = []
        end = offset
        done = closed
        try:
            for end, raw in iter_lines(seg.path, offset):
                record = self._record(raw, seg, report)
                if record is None:
                    continue
                batch.append(record)
                if len(batch) >= BATCH:
                    self._flush(batch, {key: end}, report)
                    batch = []
        except FileNotFoundError:  # compressed meanwhile: continue from the compressed file
            alt = compressed_successor(seg)
            if alt is not None:
                if batch:
                    self._flush(batch, {key: end}, report)
                self._index_segment(alt, key, end, True, report)
                report.segments -= 1
                return
        except DAMAGED as exc:
            settled = _settled(seg.path)
            done = closed and settled
            report.errors.append(
                f"{seg.path.name}: damaged data after byte {end} of its content ({exc}); "
                + (
                    "the records before it are indexed, the rest is skipped"
                    if done
                    else "read again at the next pass (the file may still be arriving)"
                )
            )
        except OSError as exc:
            done = False
            report.errors.append(
                f"{seg.path.name}: cannot be read ({exc.strerror or exc}); "
                "read again at the next pass"
            )
        if batch or done or end != offset:  # nothing new: write nothing (see above)
            self._flush(batch, {key + DONE: end} if done else {key: end}, report)

    @staticmethod
    def _record(raw: bytes, seg: Segment, report: IndexReport) -> StoredRecord | None:
        """The record of a line, or None for a line that is not one (counted in ``report``).

        A record needs a positive integer ``seq``: records are kept once per (stream, seq),
        so lines without one would all collapse into a single record.
        """
        if raw.startswith(CONTROL_PREFIX):  # integrity header or checkpoint
            return None
        if isinstance(raw, OversizedLine):  # over segments.MAX_LINE: read past, never held
            report.oversized += 1
            return None
        record = record_from_line(raw, stream=seg.stream)
        if record is None or record.seq <= 0:
            report.malformed += 1
            return None
        return record

    def _flush(
        self, batch: list[StoredRecord], positions: dict[str, int], report: IndexReport
    ) -> None:
        inserted = self.store.append(batch, positions)
        report.records += inserted
        report.duplicates += len(batch) - inserted
        if batch and self.on_records is not None:
            self.on_records(batch)

    def follow(
        self,
        *,
        interval: float = 1.0,
        stop: Callable[[], bool] = lambda: False,
        on_pass: Callable[[IndexReport], None] | None = None,
    ) -> None:
        """Index passes every ``interval`` seconds until ``stop()`` is true.

        A pass that fails (a store locked for too long, a database gone away) does not end
        it: the failure is put in that pass's report (``errors``), reported once through the
        error hook, and the next pass runs after ``interval``. KeyboardInterrupt ends it.

        Args:
            interval: seconds between passes.
            stop: called before each pass; True ends the loop.
            on_pass: called with each pass's report, failed passes too.
        """
        failing = False
        while not stop():
            try:
                report = self.run_once()
            except Exception as exc:  # noqa: BLE001 - retried at the next pass
                report = IndexReport(errors=[f"index pass failed: {exc!r}; retried"])
                error_reporter.report(
                    "indexer-pass", f"indexing {self.directory} failed: {exc!r}; retrying"
                )
                failing = True
            else:
                if failing:
                    error_reporter.resolved(
                        "indexer-pass", f"indexing {self.directory} works again"
                    )
                failing = False
            if on_pass is not None:
                on_pass(report)
            time.sleep(interval)

    def reindex(self) -> IndexReport:
        """Rebuild this directory's records from its files: delete the records and positions
        of the streams whose segments are in the directory, then index everything.

        Records of other streams are kept: imported files, other directories and other
        hosts sharing the store (a stream whose files are all gone is kept too).
        """
        streams = set(list_segments(self.directory, self.prefix))
        self.store.delete_streams(sorted(streams))
        return self.run_once()
