"""Helpers for the integrity tests: sealed directories and surgical tampering."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

from plexichat.core.logging import configure_logging, get_logger, shutdown_logging
from plexichat.core.logging.integrity import VerifyReport, verify_directory
from plexichat.core.logging.sinks.maintenance import compress_segment

QUIET: dict[str, Any] = {
    "console_enabled": False,
    "compression_enabled": False,
    "retention_age": None,
    "non_blocking": False,
}


def sealed_dir(
    root: Path,
    records: int = 40,
    *,
    rotation: str | None = "3 KB",
    compress: str | None = None,
    offline_key: bool = True,
    **options: Any,
) -> tuple[Path, Path]:
    """Write ``records`` records into ``root/logs`` with integrity on, close it and return
    (log directory, auditor key file). With ``offline_key`` the auditor key is moved out of
    the directory, as the docs tell users to do."""
    log_dir = root / "logs"
    configure_logging(directory=log_dir, rotation_size=rotation, **{**QUIET, **options})
    log = get_logger("integrity.test")
    for i in range(records):
        log.info("record %04d", i, n=i)
    shutdown_logging()
    if compress:
        for path in segments(log_dir)[:-1]:
            compress_segment(path, compress)
    key = log_dir / "keys" / "auditor.key"
    if offline_key:
        moved = root / "offline-auditor.key"
        shutil.move(key, moved)
        key = moved
    return log_dir, key


def public_key_file(root: Path, auditor_key: Path) -> Path:
    """A public key file (``ed25519:<base64>``) made from an auditor key, in ``root``."""
    from plexichat.core.logging.integrity._keys import public_key_text, read_verification_key

    path = root / "public.key"
    path.write_text(public_key_text(read_verification_key(auditor_key).public_key))
    return path


def segments(log_dir: Path) -> list[Path]:
    """Segment files of a directory, in file-number order."""
    return sorted(p for p in log_dir.iterdir() if ".jsonl" in p.name)


def read_lines(path: Path) -> list[bytes]:
    """The (decompressed) lines of a segment, newlines kept."""
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        data: bytes = fh.read()
    return data.splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    """Replace a segment's content (compressing again when it is a .gz file)."""
    data = b"".join(lines)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def record_index(lines: list[bytes], seq: int) -> int:
    """The index in ``lines`` of the record with sequence number ``seq``."""
    needle = b',"seq":%d,"tag"' % seq
    return next(i for i, line in enumerate(lines) if needle in line)


def find_segment(log_dir: Path, seq: int) -> tuple[Path, list[bytes], int]:
    """The segment holding record ``seq``, its lines and the record's index."""
    for path in segments(log_dir):
        lines = read_lines(path)
        try:
            return path, lines, record_index(lines, seq)
        except StopIteration:
            continue
    raise LookupError(seq)


def verify(log_dir: Path, key: Path | None, **kw: Any) -> VerifyReport:
    """verify_directory with the auditor key (or public-key only when ``key`` is None)."""
    return verify_directory(log_dir, key_file=key, **kw)


def kinds(report: VerifyReport) -> list[str]:
    """The finding classes of a report."""
    return [f.kind for f in report.findings]
