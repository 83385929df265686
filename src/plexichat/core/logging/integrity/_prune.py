"""Signed prune announcements: retention may delete sealed segments without breaking
verification, because a ladder link says where the chain continues."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .._core.errors import error_reporter
from ..sinks.segments import Segment, open_segment
from ._format import CONTROL_PREFIX, MAX_LINE, control_fields, seq_of, split_line
from ._keys import HOST_FILE, HostKeys, key_directory

__all__ = ["announce_prune"]


def _walk(path: Path) -> tuple[int, int, bytes, int, str] | None:
    """(file, last seq, chain value after the last line, epoch after it, signing key); the
    key is empty when the segment ends with the stream's closing checkpoint (nothing follows,
    and the verifier then knows the stream ended in the pruned segment)."""
    file = seq = epoch = 0
    head = b""
    public = ""
    closed = False
    with open_segment(path) as fh:
        for number, raw in enumerate(iter(lambda: fh.readline(MAX_LINE), b""), 1):
            if not raw.endswith(b"\n"):
                break
            parts = split_line(raw)
            if parts is None:
                continue
            body = parts[0]
            closed = False
            if raw.startswith(CONTROL_PREFIX):
                fields = control_fields(body) or {}
                kind = fields.get("$integrity")
                if number == 1 and kind == "header":
                    file, seq, epoch = fields["file"], fields["first_seq"] - 1, fields["epoch"]
                    head = bytes.fromhex(fields["prev_head"])
                elif kind == "checkpoint":
                    epoch, public = fields["epoch"] + 1, fields["next"]
                    closed = fields.get("reason") == "close"
            elif number == 1:
                return None  # not a sealed segment
            else:
                seq = seq_of(body) or seq
            head = hashlib.sha256(head + body).digest()
    return (file, seq, head, epoch, "" if closed else public) if file else None


def announce_prune(log_dir: Path, path: Path, key_dir: Path | None = None) -> bool:
    """Before retention deletes ``path``: sign a prune link for its stream in the ladder.

    Returns True when a link was written (False for unsealed segments or a directory
    without keys). Never raises: a failure is reported and the deletion proceeds, which the
    verifier will then report as a GAP.
    """
    seg = Segment.parse(Path(path))
    kdir = key_directory(Path(log_dir), key_dir)
    if seg is None or not seg.structured or not (kdir / HOST_FILE).exists():
        return False
    try:
        walked = _walk(Path(path))
        if walked is None:
            return False
        file, seq, head, epoch, public = walked
        HostKeys(Path(log_dir), key_dir).record_prune(
            seg.stream, file, seq, head.hex(), epoch, public
        )
    except FileNotFoundError:  # deleted meanwhile by another process's retention, which
        return False  # announced it (it held the segment's claim while it did)
    except Exception as exc:  # noqa: BLE001 - any damage (zlib/zstd too): report, go on
        error_reporter.report(
            "prune", f"cannot sign the prune announcement for {Path(path).name}: {exc}"
        )
        return False
    return True
