"""Tamper evidence for segment files: hash chain, forward-secure tags, signed checkpoints.

Every line the file writer writes is chained (``h_i = SHA-256(h_{i-1} ‖ body_i)``) and tagged
with an HMAC under a key that evolves at every checkpoint (the old key is discarded, so a host
compromised today cannot rewrite yesterday). Checkpoints are Ed25519-signed by a key ladder
rooted in the auditor's first public key. :func:`verify_directory` checks it all and names
the first problem of each stream.

Example:
    >>> from plexichat.core.logging.integrity import verify_directory
    >>> report = verify_directory("logs", key_file="auditor.key")  # doctest: +SKIP
    >>> report.ok, [f.kind for f in report.findings]  # doctest: +SKIP
    (True, [])
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._keys import (
    AUDITOR_FILE,
    AuditorKey,
    init_keys,
    key_directory,
    parse_verification_key,
    public_key_text,
    read_verification_key,
)
from ._ladder import Prune, read_ladder
from ._prune import announce_prune
from ._report import FINDING_KINDS, Finding, VerifyReport
from ._verify import verify_stream
from ._walk import all_segments
from ._witness import read_witness

__all__ = [
    "AUDITOR_KEY_ENV",
    "FINDING_KINDS",
    "AuditorKey",
    "Finding",
    "VerifyReport",
    "announce_prune",
    "export_public_key",
    "init_keys",
    "resolve_key",
    "verify_directory",
]

AUDITOR_KEY_ENV = "PLEXICHAT_LOG_AUDITOR_KEY"
"""Environment variable holding the auditor key (its text, or the path of its file)."""


def export_public_key(log_dir: str | os.PathLike[str], key_dir: Path | None = None) -> str:
    """The public verification key of a log directory (``ed25519:<base64>``).

    Raises:
        ValueError: the directory has no keys yet (``plexichat-logs keys init DIR``).
    """
    path = key_directory(Path(log_dir), key_dir) / AUDITOR_FILE
    if not path.exists():
        raise ValueError(
            f"no auditor key at {path}: create the keys with `plexichat-logs keys init "
            f"{log_dir}` (or log once with integrity on); if you moved the auditor key off "
            "the host, export the public key from that copy"
        )
    return public_key_text(read_verification_key(path).public_key)


def resolve_key(
    log_dir: Path,
    *,
    key_file: str | os.PathLike[str] | None = None,
    public_key_file: str | os.PathLike[str] | None = None,
    key_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[AuditorKey, str | None]:
    """The key to verify with, and a warning when it is one found on the host.

    Order: ``key_file``, ``public_key_file``, ``PLEXICHAT_LOG_AUDITOR_KEY`` (key text or a
    path), then the auditor key inside the key directory.

    Raises:
        ValueError: no usable key was found.
    """
    if key_file is not None:
        return read_verification_key(Path(key_file)), None
    if public_key_file is not None:
        return read_verification_key(Path(public_key_file)), None
    value = (os.environ if env is None else env).get(AUDITOR_KEY_ENV, "").strip()
    if value:
        if value.startswith(("{", "ed25519:")):
            return parse_verification_key(value, f"env {AUDITOR_KEY_ENV}"), None
        return read_verification_key(Path(value)), None
    local = key_directory(log_dir, key_dir) / AUDITOR_FILE
    if local.exists():
        return read_verification_key(local), (
            f"verified with the auditor key found on this host ({local}); a key kept beside "
            "the logs proves less than one kept offline: whoever can rewrite the logs can "
            "replace it. Keep a copy off the host and pass it with --key-file."
        )
    raise ValueError(
        f"no verification key: pass --key-file AUDITOR_KEY or --public-key FILE, or set "
        f"{AUDITOR_KEY_ENV}; there is no {AUDITOR_FILE} in {local.parent} either"
    )


def _witness_latest(path: Path, report: VerifyReport) -> dict[str, dict[str, Any]]:
    """The newest checkpoint per stream a witness holds (malformed lines are noted)."""
    latest: dict[str, dict[str, Any]] = {}
    bad = 0
    try:
        for cp in read_witness(path):
            stream, epoch = cp.get("stream"), cp.get("epoch")
            if not isinstance(stream, str) or type(epoch) is not int:
                bad += 1
                continue
            if epoch > latest.get(stream, {}).get("epoch", -1):
                latest[stream] = cp
    except OSError as exc:
        raise ValueError(f"cannot read the witness {str(path)!r}: {exc.strerror or exc}") from None
    if bad:
        report.notes.append(f"the witness {path} has {bad} malformed line(s), ignored")
    return latest


def _fully_pruned(
    stream: str,
    prunes: dict[int, Prune],
    witness: dict[str, Any] | None,
    log_dir: Path,
    report: VerifyReport,
) -> None:
    """A stream whose files are all gone: fine if retention pruned them, unless the witness
    saw the stream go on past the last prune, or the prune claims more than it saw."""
    last = prunes[max(prunes)]
    if witness is None:
        return
    w_epoch = witness["epoch"]
    if w_epoch >= last.epoch or last.epoch > w_epoch + 1:
        report.findings.append(
            Finding(
                "GAP",
                str(log_dir),
                None,
                witness.get("seq") if isinstance(witness.get("seq"), int) else None,
                stream,
                f"the stream's files are gone; its last prune (file {last.file}) ends at "
                f"epoch {last.epoch} but the witness's newest checkpoint is epoch {w_epoch}",
            )
        )


def _ranges(numbers: list[int]) -> str:
    """``1..3, 7`` for [1, 2, 3, 7]."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}..{b}" if a != b else str(a) for a, b in spans)


def verify_directory(
    directory: str | os.PathLike[str],
    *,
    key_file: str | os.PathLike[str] | None = None,
    public_key_file: str | os.PathLike[str] | None = None,
    key: AuditorKey | None = None,
    key_dir: str | os.PathLike[str] | None = None,
    witness: str | os.PathLike[str] | None = None,
    prefix: str | None = None,
) -> VerifyReport:
    """Verify every stream of a log directory; the report names the first problem of each.

    Args:
        directory: the log directory.
        key_file: an auditor key file (names the exact record of a problem).
        public_key_file: a public key file (names the checkpoint interval).
        key: an already loaded key (instead of the files).
        key_dir: the key directory when it is not ``DIR/keys``.
        witness: a witness directory (or file of checkpoint lines) to compare against.
        prefix: only segment files with this prefix.

    Raises:
        ValueError: no usable key, or the directory does not exist.
    """
    log_dir = Path(directory)
    if not log_dir.is_dir():
        raise ValueError(f"not a log directory: {str(log_dir)!r} does not exist")
    kdir = key_directory(log_dir, Path(key_dir) if key_dir is not None else None)
    report = VerifyReport()
    if key is None:
        key, warning = resolve_key(
            log_dir, key_file=key_file, public_key_file=public_key_file, key_dir=kdir
        )
        if warning:
            report.notes.append(warning)
            report.key_on_host = True
    kind = "auditor key" if key.mac_key is not None else "public key (checkpoint precision)"
    report.key = f"{kind} from {key.source}"
    ladder = read_ladder(kdir, key)
    report.findings.extend(ladder.findings)
    report.notes.extend(ladder.notes)
    latest = _witness_latest(Path(witness), report) if witness is not None else {}
    streams = all_segments(log_dir)
    own = kdir.resolve() == (log_dir / "keys").resolve()
    here = str(log_dir.resolve())

    def prunes_now(stream: str, key: AuditorKey = key) -> dict[int, Prune]:
        """The stream's prunes in the ladder as it is now (retention may prune meanwhile)."""
        return read_ladder(kdir, key).prunes.get(stream, {})

    for stream in sorted(streams):
        trust = ladder.streams.get(stream)
        if prefix is not None and trust is not None and trust.prefix != prefix:
            continue
        report.streams += 1
        verify_stream(
            stream,
            streams[stream],
            ladder,
            report,
            latest.get(stream),
            relist=lambda s=stream: all_segments(log_dir).get(s, []),  # type: ignore[misc]
            reload=lambda s=stream: prunes_now(s),  # type: ignore[misc]
        )
    elsewhere = 0
    for stream, trust in sorted(ladder.streams.items()):
        if stream in streams or (prefix is not None and trust.prefix != prefix):
            continue
        if not (own or trust.directory == here):
            elsewhere += 1  # another directory sharing the key directory, or a moved copy
            continue
        prunes = ladder.prunes.get(stream, {}) or prunes_now(stream)
        if prunes:
            _fully_pruned(stream, prunes, latest.get(stream), log_dir, report)
            continue
        report.findings.append(
            Finding(
                "GAP",
                str(log_dir),
                None,
                None,
                stream,
                f"the stream started at ladder step {trust.ladder_index} ({trust.time}) has no "
                "segment files: deleted or moved away (or its process died before writing)",
            )
        )
    for stream in sorted(set(latest) - set(ladder.streams)):
        report.findings.append(
            Finding(
                "GAP",
                str(log_dir),
                None,
                None,
                stream,
                "the witness holds checkpoints of a stream the key ladder does not know: the "
                "ladder was cut or the directory replaced",
            )
        )
    if elsewhere:
        report.notes.append(
            f"{elsewhere} stream(s) of the key ladder have no files here and were NOT checked: "
            f"their recorded directory differs from {here} (another directory sharing the "
            "key directory, or this is a copy of the logs at another path; verify the "
            "original path, or check that those streams belong elsewhere)"
        )
    pruned = [
        f"PRUNED: stream {stream}: {len(prunes)} segment(s) deleted with a signed prune "
        f"(files {_ranges(sorted(prunes))}); retention signs these, but so can anyone who held "
        "the host key (keys/host.state) at the time: check that they match your retention "
        "policy"
        for stream, prunes in sorted(ladder.prunes.items())
    ]
    report.notes[:0] = pruned
    if ladder.present is False and streams:
        report.notes.append(f"no key ladder in {kdir}: streams cannot be checked against it")
    return report
