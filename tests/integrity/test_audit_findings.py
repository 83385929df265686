"""Findings of the tamper-evidence attack audit: each is classified as documented."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

import plexichat.core.logging.integrity as integrity
from plexichat.core.logging import configure_logging, get_logger, shutdown_logging
from plexichat.core.logging.integrity import announce_prune
from plexichat.core.logging.integrity._format import control_body
from plexichat.core.logging.integrity._sealer import IntegrityOptions
from plexichat.core.logging.sinks.maintenance import compress_segment
from plexichat.core.logging.sinks.writer import SegmentWriter

from ._util import (
    QUIET,
    find_segment,
    kinds,
    public_key_file,
    read_lines,
    record_index,
    sealed_dir,
    segments,
    verify,
    write_lines,
)


def _public(root: Path, key: Path) -> dict[str, Any]:
    return {"public_key_file": public_key_file(root, key)}


def _prune(log_dir: Path, paths: list[Path]) -> None:
    for path in paths:
        assert announce_prune(log_dir, path)
        path.unlink()


# --- B1, B2: retention never looks like tampering --------------------------------------------


def test_pruning_the_newest_segments_of_a_closed_stream_is_no_gap(tmp_path: Path) -> None:
    """Retention keeping old segments (a longer level rule) and pruning the newest ones,
    with signed prunes: intact, and the note names the pruned files first."""
    log_dir, key = sealed_dir(tmp_path, 60)
    files = segments(log_dir)
    _prune(log_dir, files[-2:])
    for report in (verify(log_dir, key), verify(log_dir, None, **_public(tmp_path, key))):
        assert report.ok, report.findings
        assert report.notes[0].startswith("PRUNED: stream ")
        assert f"files {len(files) - 1}..{len(files)}" in report.notes[0]


def test_the_newest_segment_deleted_without_a_prune_is_still_a_gap(tmp_path: Path) -> None:
    """A pruned segment that ended with a rotation does not end the stream: the closing
    segment deleted without a prune after it is a GAP."""
    log_dir, key = sealed_dir(tmp_path, 60)
    files = segments(log_dir)
    _prune(log_dir, files[-2:-1])
    files[-1].unlink()
    report = verify(log_dir, key)
    assert kinds(report) == ["GAP"]
    assert f"segment {len(files)} and any later ones are missing" in report.findings[0].detail


def _during_listing(
    monkeypatch: pytest.MonkeyPatch, action: Callable[[Path], None], *, after: bool
) -> None:
    """Run ``action`` (retention) once, right after the ladder was read: before the
    directory is listed (``after=False``) or just after it (the files then vanish)."""
    real = integrity._walk.all_segments
    done: list[bool] = []

    def listing(directory: Path) -> dict[str, Any]:
        if not done and not after:
            done.append(True)
            action(directory)
        result = real(directory)
        if not done:
            done.append(True)
            action(directory)
        return result

    monkeypatch.setattr(integrity, "all_segments", listing)


@pytest.mark.parametrize("after", [False, True])
def test_retention_pruning_while_verifying_is_no_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: bool
) -> None:
    """Segments pruned (signed) after the verifier read the ladder: the ladder is read
    again, and the stream verifies from the prune."""
    log_dir, key = sealed_dir(tmp_path, 60)
    _during_listing(monkeypatch, lambda d: _prune(d, segments(d)[:2]), after=after)
    report = verify(log_dir, key)
    assert report.ok, report.findings


def test_a_segment_vanishing_without_a_prune_while_verifying_is_a_gap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log_dir, key = sealed_dir(tmp_path, 60)
    _during_listing(monkeypatch, lambda d: segments(d)[1].unlink(), after=True)
    report = verify(log_dir, key)
    assert kinds(report) == ["GAP"]
    assert "no signed prune" in report.findings[0].detail


# --- C1, C2: moved and copied records ----------------------------------------------------------


def test_a_record_swapped_with_one_far_later_is_reordered(tmp_path: Path) -> None:
    log_dir, key = sealed_dir(tmp_path, 80, rotation=None)
    path = segments(log_dir)[0]
    lines = read_lines(path)
    a, b = record_index(lines, 11), record_index(lines, 41)
    lines[a], lines[b] = lines[b], lines[a]
    write_lines(path, lines)
    for report in (verify(log_dir, key), verify(log_dir, None, **_public(tmp_path, key))):
        assert kinds(report) == ["REORDERED"]
        assert report.findings[0].seq == 11
        assert "moved 30 lines down" in report.findings[0].detail


def test_two_lines_claiming_one_seq_are_an_insertion_with_the_public_key(tmp_path: Path) -> None:
    """Public key: a second, different line with the seq just verified (copied from another
    stream or forged) is INSERTED, never "seq N comes after seq N"."""
    log_dir, key = sealed_dir(tmp_path, 40, rotation=None)
    path, lines, i = find_segment(log_dir, 10)
    lines.insert(i + 1, lines[i].replace(b"record 0009", b"record 9999"))
    write_lines(path, lines)
    report = verify(log_dir, None, **_public(tmp_path, key))
    assert kinds(report) == ["INSERTED"]
    assert "two different lines claim seq 10" in report.findings[0].detail
    assert kinds(verify(log_dir, key)) == ["INSERTED"]


# --- C3: fragments are tampering unless the chain goes on --------------------------------------


@pytest.mark.parametrize("fragment", [b"cut", b"replaced"])
def test_a_middle_record_cut_or_replaced_by_a_fragment_is_deleted(
    tmp_path: Path, fragment: bytes
) -> None:
    log_dir, key = sealed_dir(tmp_path, 40)
    path, lines, i = find_segment(log_dir, 12)
    lines[i] = (
        lines[i][:60] + b"\n"
        if fragment == b"cut"
        else b'{"timestamp":"2026-01-01","level":"INFO","message":"nothing"\n'
    )
    write_lines(path, lines)
    for report in (verify(log_dir, key), verify(log_dir, None, **_public(tmp_path, key))):
        assert kinds(report) == ["DELETED"]
        assert report.findings[0].seq == 12


def test_a_fragment_the_chain_goes_on_after_is_torn(tmp_path: Path) -> None:
    """A failed write that left a fragment, with the next line continuing the chain."""
    log_dir, key = sealed_dir(tmp_path, 40)
    path, lines, i = find_segment(log_dir, 12)
    lines.insert(i, lines[i][:50] + b"\n")
    write_lines(path, lines)
    for report in (verify(log_dir, key), verify(log_dir, None, **_public(tmp_path, key))):
        assert kinds(report) == ["TORN"]


def test_an_older_segment_cut_mid_line_is_truncated_not_torn(tmp_path: Path) -> None:
    log_dir, key = sealed_dir(tmp_path, 40)
    path = segments(log_dir)[1]
    lines = read_lines(path)
    write_lines(path, [*lines[:-2], lines[-2][:30]])
    assert kinds(verify(log_dir, key)) == ["TRUNCATED"]


def test_damaged_compressed_data_is_modified_not_torn(tmp_path: Path) -> None:
    """A compressed segment whose data no longer matches its checksum."""
    log_dir, key = sealed_dir(tmp_path, 40, compress="gzip")
    path = next(p for p in segments(log_dir) if p.name.endswith(".gz"))
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # the CRC-32 of the gzip trailer
    path.write_bytes(bytes(data))
    report = verify(log_dir, key)
    assert kinds(report) == ["MODIFIED"]
    assert "compressed data" in report.findings[0].detail


# --- C4: forged loss lines ------------------------------------------------------------------


def test_a_forged_loss_line_is_inserted_or_unvouched(tmp_path: Path) -> None:
    log_dir, key = sealed_dir(tmp_path, 40, rotation=None)
    path, lines, i = find_segment(log_dir, 12)
    stream = orjson.loads(lines[i][: lines[i].rindex(b',"tag"')] + b"}")["stream"]
    fields = {"$integrity": "loss", "v": 1, "stream": stream, "seqs": [[1, 2]], "count": 2}
    lines.insert(
        i, control_body({**fields, "reason": "disk full"}) + b',"tag":"' + b"0" * 32 + b'"}\n'
    )
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["INSERTED"]
    assert "forged loss line" in report.findings[0].detail
    public = verify(log_dir, None, **_public(tmp_path, key))
    assert kinds(public) == ["MODIFIED"]
    assert "the writer announced" not in public.findings[0].detail
    assert "does not vouch" in public.findings[0].detail


# --- C5: a deleted interval checkpoint ------------------------------------------------------


def test_a_deleted_interval_checkpoint_is_deleted(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    configure_logging(
        directory=log_dir, rotation_size=None, integrity_checkpoint_interval="50 ms", **QUIET
    )
    log = get_logger("integrity.test")
    for i in range(12):
        log.info("record %04d", i)
        time.sleep(0.06)  # lets interval checkpoints come between records
    shutdown_logging()
    key = tmp_path / "auditor.key"
    shutil.move(log_dir / "keys" / "auditor.key", key)
    path = segments(log_dir)[0]
    lines = read_lines(path)
    interval = [
        n
        for n, line in enumerate(lines[:-2])
        if b'"reason":"interval"' in line and not lines[n + 1].startswith(b'{"$integrity"')
    ]
    assert interval
    del lines[interval[0]]
    write_lines(path, lines)
    for report in (verify(log_dir, key), verify(log_dir, None, **_public(tmp_path, key))):
        assert kinds(report) == ["DELETED"]
        assert "a checkpoint before this one is missing" in report.findings[0].detail


# --- A4: backdated streams ------------------------------------------------------------------


def test_records_dated_before_their_stream_started_are_backdated(tmp_path: Path) -> None:
    """Whoever holds the host key can start a stream; records dated years before that
    start are reported, so they cannot pass as old history."""
    w = SegmentWriter(tmp_path, integrity=IntegrityOptions())
    for second in range(3):
        event = {"timestamp": f"2020-01-01T00:00:0{second}.000Z", "message": "admin login"}
        w.write_one(20, orjson.dumps(event))
    w.close()
    report = integrity.verify_directory(tmp_path)
    assert kinds(report) == ["BACKDATED"]
    assert report.findings[0].seq == 1
    assert "before its stream started" in report.findings[0].detail


def test_records_dated_a_moment_before_the_start_are_fine(tmp_path: Path) -> None:
    """Within the skew allowance (records queued while the writer started)."""
    w = SegmentWriter(tmp_path, integrity=IntegrityOptions())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 60))
    w.write_one(20, orjson.dumps({"timestamp": stamp, "message": "queued"}))
    w.close()
    report = integrity.verify_directory(tmp_path)
    assert report.ok, report.findings


# --- A5: streams of the ladder not checked ---------------------------------------------------


def test_ladder_streams_recorded_elsewhere_are_named_not_skipped(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    log_dir, _ = sealed_dir(tmp_path, 20, offline_key=False, integrity_key_directory=keys)
    key = tmp_path / "auditor.key"
    shutil.move(keys / "auditor.key", key)
    copy = tmp_path / "copy"
    shutil.copytree(log_dir, copy)
    for path in segments(copy):
        path.unlink()
    report = verify(copy, key, key_dir=keys)
    assert any("1 stream(s) of the key ladder" in n and "NOT checked" in n for n in report.notes)


# --- C6: renamed segments ---------------------------------------------------------------------


@pytest.mark.parametrize("compress", [None, "gzip"])
def test_segments_whose_names_were_swapped_are_renamed(
    tmp_path: Path, compress: str | None
) -> None:
    """The verifier goes by headers, readers by names: a swap is reported."""
    log_dir, key = sealed_dir(tmp_path, 60)
    if compress:
        for path in segments(log_dir)[:-1]:
            compress_segment(path, compress)
    a, b = segments(log_dir)[1:3]
    temp = a.with_name("swap")
    a.rename(temp)
    b.rename(a)
    temp.rename(b)
    report = verify(log_dir, key)
    assert kinds(report) == ["RENAMED", "RENAMED"]
    assert {Path(f.file).name for f in report.findings} == {a.name, b.name}
