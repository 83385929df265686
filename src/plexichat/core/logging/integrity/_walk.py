"""Which files make up each stream: every segment file of the directory, whatever its prefix,
ordered by the file number in its header; copies and strays are findings.

Readers pick one file per (stream, index) and only their configured prefix, so a second copy
under another prefix could show the verifier one thing and readers another: every extra
claimant of a stream's segment is reported instead of silently skipped.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from ..sinks.segments import Segment, open_segment, scan_segments
from ._format import CONTROL_PREFIX, MAX_LINE, control_fields, split_line
from ._report import Finding

__all__ = ["all_segments", "header_of", "stream_files"]


def all_segments(directory: Path) -> dict[str, list[Segment]]:
    """Every structured segment file of a directory, by stream (no de-duplication)."""
    streams: dict[str, list[Segment]] = {}
    for seg in scan_segments(directory):
        if seg.structured:
            streams.setdefault(seg.stream, []).append(seg)
    return streams


def header_of(seg: Segment) -> dict[str, Any] | None:
    """The parsed header line of a segment, or None (missing, damaged, unreadable)."""
    try:
        with open_segment(seg.path) as fh:
            first = fh.readline(MAX_LINE)
    except Exception:  # noqa: BLE001 - any damage (OSError, zlib/zstd errors): no header
        return None
    if not first.startswith(CONTROL_PREFIX):
        return None
    parts = split_line(first)
    value = control_fields(parts[0]) if parts else None
    return value if value is not None and value["$integrity"] == "header" else None


def _number(seg: Segment, cache: dict[Path, int] | None) -> int:
    if cache is not None and seg.path in cache:
        return cache[seg.path]
    header = header_of(seg)
    file = header.get("file") if header else None
    number = file if type(file) is int and file > 0 else seg.index
    if cache is not None and header is not None:  # a header never changes once written
        cache[seg.path] = number
    return number


def stream_files(
    stream: str, segs: list[Segment], prefix: str, cache: dict[Path, int] | None = None
) -> tuple[list[tuple[int, Segment]], list[Finding]]:
    """The files of one stream in header order, and findings for copies and strays.

    A plain file and its compressed twin under the stream's own prefix are one segment
    (compression finishing): the plain one is read, as readers do. ``cache`` keeps the header
    numbers already read (listing a live stream again reads only its new files).
    """
    findings: list[Finding] = []
    by_index: dict[int, list[Segment]] = {}
    for seg in segs:
        if prefix and seg.prefix != prefix:
            findings.append(
                Finding(
                    "INSERTED",
                    str(seg.path),
                    None,
                    None,
                    stream,
                    f"a file of this stream under the prefix {seg.prefix!r}; the stream writes "
                    f"{prefix!r} files (a copy readers would not show, or a planted one)",
                )
            )
            continue
        by_index.setdefault(seg.index, []).append(seg)
    chosen: list[Segment] = []
    for index, group in sorted(by_index.items()):
        plain = [s for s in group if s.compression is None]
        if len(group) > 2 or len(plain) > 1 or (len(group) == 2 and len(plain) != 1):
            names = ", ".join(sorted(s.path.name for s in group))
            findings.append(
                Finding(
                    "DUPLICATE", str(group[0].path), None, None, stream,
                    f"several files claim segment {index}: {names}",
                )
            )  # fmt: skip
        chosen.append(plain[0] if plain else group[0])
    numbered = sorted(((_number(s, cache), s) for s in chosen), key=lambda p: (p[0], p[1].index))
    for number, seg in numbered:
        if number != seg.index and (cache is None or seg.path in cache):  # a header says so
            findings.append(
                Finding(
                    "RENAMED", str(seg.path), 1, None, stream,
                    f"{seg.path.name} holds segment {number} (its header says so) but is named "
                    f"as segment {seg.index}: readers, which go by name, would show its "
                    "records out of order",
                )
            )  # fmt: skip
    for (a, first), (b, second) in itertools.pairwise(numbered):
        if a == b:
            findings.append(
                Finding(
                    "DUPLICATE", str(second.path), 1, None, stream,
                    f"{first.path.name} and {second.path.name} both carry the header of "
                    f"segment {a}",
                )
            )  # fmt: skip
    return numbered, findings
