"""What verification finds: the finding classes, one finding, and the whole report."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["FINDING_KINDS", "Finding", "VerifyReport"]

FINDING_KINDS = (
    "MODIFIED",
    "DELETED",
    "INSERTED",
    "DUPLICATE",
    "REORDERED",
    "TRUNCATED",
    "UNSEALED",
    "TORN",
    "BAD_SIGNATURE",
    "GAP",
    "BACKDATED",
    "RENAMED",
)
"""Every class of problem the verifier reports.

MODIFIED: a line's bytes changed. DELETED: records missing (a sequence gap). INSERTED: a line
that was never written by the stream's writer. DUPLICATE: a record repeated. REORDERED:
records out of order. TRUNCATED: a segment or the stream lost its end (or the directory is
older than its witness). UNSEALED: the stream ended without its closing checkpoint (a crash or
a cut), or was written with integrity off. TORN: an incomplete last line (a crash mid-write,
not tampering). BAD_SIGNATURE: a checkpoint or key-ladder signature does not verify (e.g.
re-signed with another key). GAP: whole segment files missing. BACKDATED: a record, header
or checkpoint dated more than ``BACKDATE_SKEW`` (10 minutes) before its stream started on the
key ladder. RENAMED: a segment file whose name's number differs from the file number in its
header (readers, which go by name, would show its records out of order).
"""


@dataclass(frozen=True)
class Finding:
    """One problem: its class, where it is, and what exactly was seen."""

    kind: str
    file: str
    line: int | None
    seq: int | None
    stream: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``kind, file, line, seq, stream, detail``)."""
        return asdict(self)


@dataclass
class VerifyReport:
    """The result of verifying a log directory.

    ``ok`` is true only when every stream verified with no finding at all.
    """

    records: int = 0
    files: int = 0
    streams: int = 0
    findings: list[Finding] = field(default_factory=list)
    checkpoints: int = 0
    key: str = ""
    """Which key was used and what kind it is."""
    notes: list[str] = field(default_factory=list)
    live_streams: int = 0
    """Streams still being written (their unsealed tail is not a finding)."""
    key_on_host: bool = False
    """The key was found in the host's key folder (proves less than one kept offline)."""

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``plexichat-logs verify --json``."""
        return {
            "ok": self.ok,
            "records": self.records,
            "files": self.files,
            "streams": self.streams,
            "findings": [f.to_dict() for f in self.findings],
            "checkpoints": self.checkpoints,
            "live_streams": self.live_streams,
            "key": self.key,
            "key_on_host": self.key_on_host,
            "notes": list(self.notes),
        }
