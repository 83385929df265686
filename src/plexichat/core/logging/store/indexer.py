"""The indexer: follows a log directory and appends its records to a store.

Every stream, every segment (rotated and compressed ones too) is read in order from the
position saved for it; records and the new positions are saved in one transaction, so a
restart (or a crash) neither skips nor repeats a record. A segment read to its end after it
was closed is marked done and never opened again. A pass that finds nothing new writes
nothing: a store written 20 times a second for nothing would make every reader drop its
page cache (a write changes the database) and grow the write-ahead log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..integrity._format import CONTROL_PREFIX
from ..sinks.segments import Segment, compressed_successor, iter_lines, list_segments
from .base import LogStore, StoredRecord, record_from_line

__all__ = ["IndexReport", "Indexer", "segment_key"]

BATCH = 5000
MAX_LINE = 10 * 1024 * 1024
DONE = "!done"
"""Appended to a segment's key once the closed segment has been read to its end."""


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
        report.segments += 1
        batch: list[StoredRecord] = []
        end = offset
        try:
            lines = iter_lines(seg.path, offset)
            for end, raw in lines:
                if raw.startswith(CONTROL_PREFIX):  # integrity header or checkpoint
                    continue
                if len(raw) > MAX_LINE:
                    report.oversized += 1
                    continue
                record = record_from_line(raw, stream=seg.stream)
                if record is None:
                    report.malformed += 1
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
        except (OSError, EOFError) as exc:
            report.errors.append(f"{seg.path.name}: {exc}")
        if batch or closed or end != offset:  # nothing new: write nothing (see above)
            self._flush(batch, {key + DONE: end} if closed else {key: end}, report)

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
        """Index passes every ``interval`` seconds until ``stop()`` is true."""
        while not stop():
            report = self.run_once()
            if on_pass is not None:
                on_pass(report)
            time.sleep(interval)

    def reindex(self) -> IndexReport:
        """Rebuild the store from the files: clear it, then index everything."""
        self.store.clear()
        return self.run_once()
