"""Each class of tampering, made on real sealed files, is found, classified and located."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ._util import (
    find_segment,
    kinds,
    public_key_file,
    read_lines,
    sealed_dir,
    segments,
    verify,
    write_lines,
)

COMPRESSIONS = [None, "gzip"]


@pytest.mark.parametrize("compress", [None, "gzip", "zstd"])
def test_an_untouched_directory_verifies(tmp_path: Path, compress: str | None) -> None:
    """Plain and compressed segments across rotations verify with the auditor key."""
    log_dir, key = sealed_dir(tmp_path, 60, compress=compress)
    report = verify(log_dir, key)
    assert report.ok, report.findings
    assert (report.records, report.streams) == (60, 1)
    assert report.files == len(segments(log_dir)) > 3
    assert report.checkpoints >= report.files  # one per rotation plus the closing one
    assert "auditor key" in report.key


def test_public_key_alone_verifies_an_untouched_directory(tmp_path: Path) -> None:
    """The public key (no MAC key) is enough to check signatures and chain heads."""
    log_dir, key = sealed_dir(tmp_path, 30)
    public = tmp_path / "public.key"
    from plexichat.core.logging.integrity import export_public_key

    shutil.copy(key, log_dir / "keys" / "auditor.key")
    public.write_text(export_public_key(log_dir) + "\n")
    (log_dir / "keys" / "auditor.key").unlink()
    report = verify(log_dir, None, public_key_file=public)
    assert report.ok, report.findings
    assert "public key" in report.key


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_a_modified_record_is_named_exactly(tmp_path: Path, compress: str | None) -> None:
    """Changing one record's text gives MODIFIED with its file, line and seq."""
    log_dir, key = sealed_dir(tmp_path, compress=compress)
    path, lines, i = find_segment(log_dir, 11)
    lines[i] = lines[i].replace(b"record 0010", b"record 0099")
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["MODIFIED"]
    finding = report.findings[0]
    assert (Path(finding.file).name, finding.line, finding.seq) == (path.name, i + 1, 11)


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_a_modified_first_record_after_a_rotation_is_found(
    tmp_path: Path, compress: str | None
) -> None:
    """The chain runs across files: the first record of the second segment is covered."""
    log_dir, key = sealed_dir(tmp_path, compress=compress)
    second = segments(log_dir)[1]
    lines = read_lines(second)
    assert lines[0].startswith(b'{"$integrity":"header"')
    lines[1] = lines[1].replace(b'"level":"INFO"', b'"level":"WARN"')
    write_lines(second, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["MODIFIED"]
    assert (Path(report.findings[0].file).name, report.findings[0].line) == (second.name, 2)


def test_public_key_alone_names_the_checkpoint_interval(tmp_path: Path) -> None:
    """Without the MAC key a change is found at the next checkpoint, named by its interval."""
    log_dir, key = sealed_dir(tmp_path)
    public = public_key_file(tmp_path, key)
    path, lines, i = find_segment(log_dir, 11)
    lines[i] = lines[i].replace(b"record 0010", b"record 0099")
    write_lines(path, lines)
    report = verify(log_dir, None, public_key_file=public)
    assert kinds(report) == ["MODIFIED"]
    finding = report.findings[0]
    assert "between seq" in finding.detail
    assert finding.seq is not None
    assert finding.seq <= 11


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_a_deleted_record_is_reported_with_its_seq(tmp_path: Path, compress: str | None) -> None:
    """Removing a record gives DELETED naming the missing sequence number."""
    log_dir, key = sealed_dir(tmp_path, compress=compress)
    path, lines, i = find_segment(log_dir, 12)
    del lines[i]
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["DELETED"]
    assert report.findings[0].seq == 12
    assert "seq 12 missing" in report.findings[0].detail


def test_a_forged_line_pushed_in_is_inserted(tmp_path: Path) -> None:
    """A line with a plausible seq and a made-up tag before the real one: INSERTED."""
    log_dir, key = sealed_dir(tmp_path)
    path, lines, i = find_segment(log_dir, 12)
    forged = lines[i].replace(b"record 0011", b"record FAKE")
    lines.insert(i, forged)
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["INSERTED"]
    assert (report.findings[0].seq, report.findings[0].line) == (12, i + 1)


def test_a_line_without_a_tag_is_inserted(tmp_path: Path) -> None:
    """A plain JSON line slipped between records: INSERTED."""
    log_dir, key = sealed_dir(tmp_path)
    path, lines, i = find_segment(log_dir, 12)
    lines.insert(i, b'{"timestamp":"2026-01-01T00:00:00.000Z","message":"planted"}\n')
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["INSERTED"]
    assert report.findings[0].line == i + 1


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_a_repeated_record_is_a_duplicate(tmp_path: Path, compress: str | None) -> None:
    """A record copied right after itself: DUPLICATE."""
    log_dir, key = sealed_dir(tmp_path, compress=compress)
    path, lines, i = find_segment(log_dir, 12)
    lines.insert(i + 1, lines[i])
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["DUPLICATE"]
    assert report.findings[0].seq == 12


def test_swapped_records_are_reordered(tmp_path: Path) -> None:
    """Two records swapped: REORDERED."""
    log_dir, key = sealed_dir(tmp_path)
    path, lines, i = find_segment(log_dir, 12)
    assert b'"seq":13,' in lines[i + 1]
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["REORDERED"]


@pytest.mark.parametrize("compress", COMPRESSIONS)
def test_a_segment_cut_short_is_truncated(tmp_path: Path, compress: str | None) -> None:
    """A rotated segment that lost its end (and its closing checkpoint): TRUNCATED."""
    log_dir, key = sealed_dir(tmp_path, compress=compress)
    first = segments(log_dir)[0]
    lines = read_lines(first)
    write_lines(first, lines[:-3])
    report = verify(log_dir, key)
    assert kinds(report) == ["TRUNCATED"]
    assert Path(report.findings[0].file).name == first.name


def test_the_stream_tail_cut_off_is_not_intact(tmp_path: Path) -> None:
    """Cutting the end of the last segment (the closing checkpoint with it) is found."""
    log_dir, key = sealed_dir(tmp_path)
    last = segments(log_dir)[-1]
    lines = read_lines(last)
    write_lines(last, lines[:-2])
    report = verify(log_dir, key)
    assert kinds(report) == ["UNSEALED"]
    assert "without its closing checkpoint" in report.findings[0].detail


def test_deleting_the_newest_checkpoint_is_found(tmp_path: Path) -> None:
    """Removing only the closing checkpoint leaves the stream unsealed."""
    log_dir, key = sealed_dir(tmp_path)
    last = segments(log_dir)[-1]
    lines = read_lines(last)
    assert lines[-1].startswith(b'{"$integrity":"checkpoint"')
    write_lines(last, lines[:-1])
    assert kinds(verify(log_dir, key)) == ["UNSEALED"]


def test_a_missing_segment_file_is_a_gap(tmp_path: Path) -> None:
    """A whole segment deleted from the middle (no prune announcement): GAP."""
    log_dir, key = sealed_dir(tmp_path, 60)
    files = segments(log_dir)
    files[2].unlink()
    report = verify(log_dir, key)
    assert kinds(report) == ["GAP"]
    assert "file 3" in report.findings[0].detail


def test_a_torn_last_line_is_a_crash_not_tampering(tmp_path: Path) -> None:
    """An incomplete last line of a dead stream: TORN (a crash), not MODIFIED."""
    log_dir, key = sealed_dir(tmp_path)
    last = segments(log_dir)[-1]
    lines = read_lines(last)
    write_lines(last, [*lines[:-1], lines[-1][:40]])
    report = verify(log_dir, key)
    assert kinds(report) == ["TORN"]
    assert "mid-write" in report.findings[0].detail


def test_a_forged_checkpoint_signature_is_bad_signature(tmp_path: Path) -> None:
    """A checkpoint whose signature was replaced: BAD_SIGNATURE (public key) / MODIFIED
    (auditor key, whose tag check catches the edit first)."""
    log_dir, key = sealed_dir(tmp_path)
    public = public_key_file(tmp_path, key)
    first = segments(log_dir)[0]
    lines = read_lines(first)
    cp = lines[-1]
    start = cp.index(b'"sig":"') + 7
    lines[-1] = cp[:start] + (b"A" if cp[start : start + 1] != b"A" else b"B") + cp[start + 1 :]
    write_lines(first, lines)
    assert kinds(verify(log_dir, None, public_key_file=public)) == ["BAD_SIGNATURE"]
    assert kinds(verify(log_dir, key)) == ["MODIFIED"]


def test_resealing_everything_with_fresh_keys_is_detected(tmp_path: Path) -> None:
    """An attacker who rewrites the logs and creates new keys cannot pass the offline key."""
    log_dir, key = sealed_dir(tmp_path / "real")
    forged_dir, _ = sealed_dir(tmp_path / "forged")
    shutil.rmtree(log_dir)
    shutil.copytree(forged_dir, log_dir)
    report = verify(log_dir, key)
    assert "BAD_SIGNATURE" in kinds(report)
    assert "key ladder" in report.findings[0].detail


def test_records_of_a_stream_missing_from_the_ladder_are_not_trusted(tmp_path: Path) -> None:
    """Cutting the ladder file leaves the stream without a trusted start: BAD_SIGNATURE."""
    log_dir, key = sealed_dir(tmp_path)
    (log_dir / "keys" / "ladder.jsonl").write_bytes(b"")
    assert kinds(verify(log_dir, key)) == ["BAD_SIGNATURE"]


def test_a_findings_json_shape_is_stable(tmp_path: Path) -> None:
    """The report's JSON form has the documented keys."""
    log_dir, key = sealed_dir(tmp_path)
    path, lines, i = find_segment(log_dir, 5)
    del lines[i]
    write_lines(path, lines)
    data = verify(log_dir, key).to_dict()
    assert {"ok", "records", "files", "streams", "findings"} <= set(data)
    assert data["ok"] is False
    assert set(data["findings"][0]) == {"kind", "file", "line", "seq", "stream", "detail"}


def test_an_older_record_replayed_later_is_a_duplicate(tmp_path: Path) -> None:
    """A copy of an earlier record placed further on: DUPLICATE naming that record's seq."""
    log_dir, key = sealed_dir(tmp_path, 40, rotation=None)
    path, lines, i = find_segment(log_dir, 12)
    _, _, j = find_segment(log_dir, 5)
    lines.insert(i + 1, lines[j])
    write_lines(path, lines)
    report = verify(log_dir, key)
    assert kinds(report) == ["DUPLICATE"]
    assert report.findings[0].seq == 5


def test_every_byte_of_a_record_line_is_covered(tmp_path: Path) -> None:
    """Flipping any single byte of one record line, the tag's frame and the newline
    included, is found at that line."""
    log_dir, key = sealed_dir(tmp_path, 12, rotation=None)
    path, lines, i = find_segment(log_dir, 6)
    original = lines[i]
    for pos in range(len(original)):
        changed = bytearray(original)
        changed[pos] ^= 0x01
        write_lines(path, [*lines[:i], bytes(changed), *lines[i + 1 :]])
        report = verify(log_dir, key)
        assert not report.ok, pos
        assert report.findings[0].line == i + 1, (pos, report.findings[0])
