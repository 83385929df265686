"""Attacks on the keys, the ladder and the set of files (found in review), each detected."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging.integrity import verify_directory
from plexichat.core.logging.integrity._keys import HostKeys
from plexichat.core.logging.integrity._sealer import IntegrityOptions, Sealer

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


def _stream_of(log_dir: Path) -> str:
    return segments(log_dir)[0].name.split(".")[1]


def _reseal(log_dir: Path, sealer: Sealer, change: bytes, to: bytes) -> None:
    """Rewrite every segment of the directory with ``sealer``'s keys, one text changed: what
    a host attacker can do with the current host key."""
    for path in segments(log_dir):
        out = []
        for line in read_lines(path):
            body = line[: line.rindex(b',"tag":"')]
            out.append(sealer.seal(body.replace(change, to)))
        write_lines(path, out)


def test_restarting_an_old_stream_on_the_ladder_is_rejected(tmp_path: Path) -> None:
    """A second ladder link for an existing stream (which the current host key could sign,
    giving fresh keys for an old stream) is reported, and a re-sealed stream fails."""
    log_dir, key = sealed_dir(tmp_path, 12, rotation=None)
    stream = _stream_of(log_dir)
    forger = Sealer(log_dir, stream, IntegrityOptions())
    _reseal(log_dir, forger, b"record 0003", b"record 9999")
    for public_only in (False, True):
        report = verify(log_dir, None if public_only else key, **_public(tmp_path, key))
        assert "BAD_SIGNATURE" in kinds(report)
        assert any("started a second time" in f.detail for f in report.findings)
        assert not report.ok


def _public(tmp_path: Path, key: Path) -> dict[str, Path]:
    return {"public_key_file": public_key_file(tmp_path, key)}


def test_a_prune_naming_file_zero_is_malformed(tmp_path: Path) -> None:
    """A signed prune link with an impossible file number stops the ladder walk."""
    log_dir, key = sealed_dir(tmp_path, 5, rotation=None)
    HostKeys(log_dir).record_prune(_stream_of(log_dir), 0, 0, "00" * 32, 0, "")
    report = verify(log_dir, key)
    assert kinds(report)[0] == "BAD_SIGNATURE"
    assert "malformed" in report.findings[0].detail


def test_deleting_a_stream_behind_an_inflated_prune_shows_against_the_witness(
    tmp_path: Path,
) -> None:
    """Pruning a stream 'to the end' with a made-up epoch does not hide it from a witness."""
    witness = tmp_path / "witness"
    log_dir, key = sealed_dir(tmp_path, 20, integrity_witness=str(witness))
    stream = _stream_of(log_dir)
    last = segments(log_dir)[-1]
    number = int(last.name.split(".")[2])
    HostKeys(log_dir).record_prune(stream, number, 20, "00" * 32, 10**6, "")
    for path in segments(log_dir):
        path.unlink()
    report = verify_directory(log_dir, key_file=key, witness=witness)
    assert kinds(report) == ["GAP"]
    assert "witness" in report.findings[0].detail


def test_a_stream_whose_files_all_vanished_is_a_gap(tmp_path: Path) -> None:
    """Renaming away every file of a stream on the ladder is found, with no witness."""
    log_dir, key = sealed_dir(tmp_path, 8)
    for path in segments(log_dir):
        path.rename(path.with_name(path.name + ".bak"))
    report = verify(log_dir, key)
    assert kinds(report) == ["GAP"]
    assert "has no segment files" in report.findings[0].detail


def test_a_shadow_copy_under_another_prefix_is_reported(tmp_path: Path) -> None:
    """Readers read the stream's own prefix: a copy under another prefix is not silently
    chosen by the verifier; it is INSERTED, and the edited real file is MODIFIED."""
    log_dir, key = sealed_dir(tmp_path, 20, compress="gzip")
    real = segments(log_dir)[0]
    original = gzip.decompress(real.read_bytes())
    shadow = log_dir / real.name.replace("plexichat.", "aaa.").removesuffix(".gz")
    shadow.write_bytes(original)
    write_lines(real, [line.replace(b"record 0001", b"FORGED 0001") for line in read_lines(real)])
    found = kinds(verify(log_dir, key))
    assert "INSERTED" in found
    assert "MODIFIED" in found


def test_a_segment_kept_by_retention_is_still_verified(tmp_path: Path) -> None:
    """Files pruned out of order (a longer rule keeps an older one) leave the kept file
    verified: an edit there is found, and pruning it later is not a gap."""
    from plexichat.core.logging.integrity import announce_prune

    log_dir, key = sealed_dir(tmp_path, 40, offline_key=False)
    files = segments(log_dir)
    for path in files[1:3]:
        assert announce_prune(log_dir, path)
        path.unlink()
    assert verify(log_dir, key).ok
    kept = files[0]
    lines = read_lines(kept)
    write_lines(kept, [lines[0], lines[1].replace(b"record 0000", b"record 7777"), *lines[2:]])
    assert kinds(verify(log_dir, key)) == ["MODIFIED"]
    write_lines(kept, lines)
    assert announce_prune(log_dir, kept)
    kept.unlink()
    report = verify(log_dir, key)
    assert report.ok, report.findings


def test_a_segment_another_process_pruned_first_is_passed_over_quietly(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Two processes' retention race for one segment: the loser finds it gone. That is no
    failure to report (the winner announced it), and the directory still verifies."""
    from plexichat.core.logging.integrity import announce_prune

    log_dir, key = sealed_dir(tmp_path, 40, offline_key=False)
    first = segments(log_dir)[0]
    assert announce_prune(log_dir, first)  # the winner
    first.unlink()
    capfd.readouterr()
    assert not announce_prune(log_dir, first)  # the loser
    assert "prune" not in capfd.readouterr().err
    assert verify(log_dir, key).ok


def test_public_key_mode_rejects_lines_after_the_close(tmp_path: Path) -> None:
    """Lines appended after the closing checkpoint are INSERTED in both modes."""
    log_dir, key = sealed_dir(tmp_path, 6, rotation=None)
    path = segments(log_dir)[-1]
    lines = read_lines(path)
    write_lines(path, [*lines, lines[1].replace(b'"seq":1,', b'"seq":7,')])
    assert kinds(verify(log_dir, key)) == ["INSERTED"]
    assert kinds(verify(log_dir, None, **_public(tmp_path, key))) == ["INSERTED"]


def test_deleting_the_newest_segments_is_a_gap(tmp_path: Path) -> None:
    """When the last file left ends with a rotation, the later files existed: GAP."""
    log_dir, key = sealed_dir(tmp_path, 40)
    segments(log_dir)[-1].unlink()
    report = verify(log_dir, key)
    assert kinds(report) == ["GAP"]


def test_a_forged_line_with_an_old_seq_is_inserted(tmp_path: Path) -> None:
    """A made-up line carrying an old sequence number, pushed between records: INSERTED."""
    log_dir, key = sealed_dir(tmp_path, 20, rotation=None)
    path, lines, i = find_segment(log_dir, 10)
    forged = lines[i].replace(b'"seq":10,', b'"seq":3,').replace(b"record 0009", b"record XXXX")
    write_lines(path, [*lines[: i + 1], forged, *lines[i + 1 :]])
    assert kinds(verify(log_dir, key)) == ["INSERTED"]


def test_re_signing_with_fresh_keys_fails_even_with_host_keys_replaced(tmp_path: Path) -> None:
    """Replacing the whole key folder and re-sealing passes only with the host's (new) key,
    and the report says that key came from the host."""
    log_dir, key = sealed_dir(tmp_path / "real", 5)
    forged, _ = sealed_dir(tmp_path / "forged", 5, offline_key=False)
    shutil.rmtree(log_dir)
    shutil.copytree(forged, log_dir)
    with_host = verify_directory(log_dir)
    assert with_host.key_on_host
    assert not verify(log_dir, key).ok
    time.sleep(0)  # keep the two runs independent of each other's caches
    assert orjson.loads(orjson.dumps(with_host.to_dict()))["key_on_host"] is True
