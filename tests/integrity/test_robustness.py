"""Damaged input never crashes the verifier, and honest failures never look like tampering."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging import configure_logging, get_logger, shutdown_logging
from plexichat.core.logging._core.clock import iso_utc
from plexichat.core.logging.integrity import verify_directory
from plexichat.core.logging.integrity._keys import HostKeys
from plexichat.core.logging.integrity._sealer import IntegrityOptions
from plexichat.core.logging.sinks.writer import SegmentWriter

from ._util import QUIET, kinds, read_lines, sealed_dir, segments, verify, write_lines


def _event(i: int) -> bytes:
    # dated now: a record dated well before its stream started is BACKDATED
    return orjson.dumps({"timestamp": iso_utc(time.time()), "message": f"m{i}"})


def test_a_header_with_a_wrong_file_type_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    """A header claiming file "x" is reported (the verifier never raises)."""
    log_dir, key = sealed_dir(tmp_path, 10, rotation=None)
    path = segments(log_dir)[0]
    lines = read_lines(path)
    write_lines(path, [lines[0].replace(b'"file":1,', b'"file":"x",'), *lines[1:]])
    assert kinds(verify(log_dir, key)) == ["MODIFIED"]


@pytest.mark.parametrize("method", ["gzip", "zstd"])
def test_a_corrupt_compressed_segment_is_a_finding(tmp_path: Path, method: str) -> None:
    """Damaged compressed data is a finding in that file, never a zlib/zstd traceback: the
    decompressor fails (TRUNCATED) or yields garbage lines (MODIFIED, TORN or INSERTED,
    depending on the bytes; zstd frames carry no checksum here)."""
    log_dir, key = sealed_dir(tmp_path, 40, compress=method)
    path = next(p for p in segments(log_dir) if p.name.endswith((".gz", ".zst")))
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 40):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    report = verify(log_dir, key)
    assert not report.ok
    assert report.findings[0].kind in ("TRUNCATED", "MODIFIED", "TORN", "INSERTED")
    assert Path(report.findings[0].file).name == path.name


def test_bad_witness_lines_are_noted_and_ignored(tmp_path: Path) -> None:
    """A witness line with a null epoch is skipped with a note."""
    log_dir, key = sealed_dir(tmp_path, 5)
    witness = tmp_path / "w.jsonl"
    witness.write_bytes(b'{"stream":"x","epoch":null}\nnot json\n')
    report = verify_directory(log_dir, key_file=key, witness=witness)
    assert report.ok
    assert any("malformed" in note for note in report.notes)


def test_a_line_longer_than_any_record_is_inserted(tmp_path: Path) -> None:
    """A huge appended line is read with a bounded buffer and reported as planted."""
    from plexichat.core.logging.integrity import _format

    log_dir, key = sealed_dir(tmp_path, 5, rotation=None)
    path = segments(log_dir)[-1]
    with open(path, "ab") as fh:
        fh.write(b"x" * (_format.MAX_LINE + 10))
    assert kinds(verify(log_dir, key)) == ["INSERTED"]


def test_disk_full_while_writing_a_header_leaves_no_headerless_segment(tmp_path: Path) -> None:
    """ENOSPC on a header: the header is written when writing works again, before any
    record; the stream verifies."""
    w = SegmentWriter(tmp_path, integrity=IntegrityOptions(), rotation_size=2000)
    real = os.write
    fail_headers = {"left": 2}

    def faulty(fd: int, data: bytes | memoryview) -> int:
        if fail_headers["left"] and bytes(data[:22]) == b'{"$integrity":"header"':
            fail_headers["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    w.os_write = faulty
    for i in range(30):
        w.write_one(20, _event(i))
        w._retry_at = 0.0
        w.flush_pending()
    w.close()
    for path in sorted(tmp_path.glob("*.jsonl")):
        assert path.read_bytes().startswith(b'{"$integrity":"header"')
    report = verify_directory(tmp_path)
    assert report.ok, report.findings
    assert report.records == 30


def test_a_short_write_completed_later_is_not_a_deletion(tmp_path: Path) -> None:
    """A line written in two parts is counted once, and the checkpoint covers it."""
    w = SegmentWriter(tmp_path, integrity=IntegrityOptions())
    real = os.write
    short = {"left": 1}

    def partial(fd: int, data: bytes | memoryview) -> int:
        if short["left"] and b'"m3"' in bytes(data):
            short["left"] -= 1
            return real(fd, data[:10])
        return real(fd, data)

    w.os_write = partial
    for i in range(6):
        w.write_one(20, _event(i))
    w.close()
    report = verify_directory(tmp_path)
    assert report.ok, report.findings


def test_a_torn_ladder_line_is_repaired_at_the_next_start(tmp_path: Path) -> None:
    """A ladder link cut by a crash is cut off at the next stream start; streams verify."""
    log_dir, _ = sealed_dir(tmp_path, 3, offline_key=False)
    ladder = log_dir / "keys" / "ladder.jsonl"
    state = orjson.loads((log_dir / "keys" / "host.state").read_bytes())
    with open(ladder, "ab") as fh:  # a crash after the state was saved, mid-append
        fh.write(state["pending"].encode()[:50])
    report = verify_directory(log_dir)
    assert report.ok, report.findings
    assert any("incomplete link" in note for note in report.notes)
    sealed_dir(tmp_path, 3, offline_key=False)  # the same directory again: a new stream
    report = verify_directory(log_dir)
    assert report.ok, report.findings
    assert report.streams == 2


def test_a_crash_between_saving_the_state_and_appending_is_recovered(tmp_path: Path) -> None:
    """If the link never reached the ladder, the next start appends it first."""
    log_dir, _ = sealed_dir(tmp_path, 3, offline_key=False)
    ladder = log_dir / "keys" / "ladder.jsonl"
    lines = ladder.read_bytes().splitlines(keepends=True)
    ladder.write_bytes(b"".join(lines[:-1]))  # the last link is lost
    HostKeys(log_dir).start_stream("host0000000-1-aaaaaa")
    assert len(ladder.read_bytes().splitlines()) == len(lines) + 1
    report = verify_directory(log_dir)  # the ladder verifies; only the fake stream is empty
    assert [(f.kind, f.stream) for f in report.findings] == [("GAP", "host0000000-1-aaaaaa")]


def test_key_material_never_appears_in_errors(tmp_path: Path) -> None:
    """A damaged auditor key or host state is reported without echoing the key."""
    log_dir, key = sealed_dir(tmp_path, 3)
    data = orjson.loads(key.read_bytes())
    secret = data["mac_key"]
    data["mac_key"] = secret[:20] + "!" + secret[21:]
    key.write_bytes(orjson.dumps(data))
    with pytest.raises(ValueError) as caught:
        verify_directory(log_dir, key_file=key)
    assert secret[:20] not in str(caught.value)
    state_path = log_dir / "keys" / "host.state"
    state = orjson.loads(state_path.read_bytes())
    host_secret = state["mac"]
    state["mac"] = host_secret[:20] + "!"
    state_path.write_bytes(orjson.dumps(state))
    with pytest.raises(ValueError, match="damaged") as caught:
        HostKeys(log_dir).start_stream("host0000000-1-bbbbbb")
    assert host_secret[:20] not in str(caught.value)


def test_a_damaged_host_state_is_reported_and_the_stream_written_unsealed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A host state of the wrong shape: every record is still written, and stderr says the
    stream has no tamper evidence."""
    log_dir, _ = sealed_dir(tmp_path, 1, offline_key=False)
    state_path = log_dir / "keys" / "host.state"
    state = orjson.loads(state_path.read_bytes())
    state["n"] = None
    state_path.write_bytes(orjson.dumps(state))
    configure_logging(directory=log_dir, **QUIET)
    for i in range(3):
        get_logger("s").info("after %d", i)
    shutdown_logging()
    assert "WITHOUT tamper evidence" in capfd.readouterr().err
    texts = b"".join(b"".join(read_lines(p)) for p in segments(log_dir))
    assert all(b"after %d" % i in texts for i in range(3))


def test_verifying_a_live_stream_that_rotates_raises_no_false_alarm(tmp_path: Path) -> None:
    """While a writer rotates several times a second, verification reports nothing."""
    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, rotation_size="16 KB", **QUIET)
    get_logger("busy").info("first")
    stop = threading.Event()

    def write() -> None:
        log = get_logger("busy")
        i = 0
        while not stop.is_set():
            log.info("busy %d", i, pad="x" * 100)
            i += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        reports = [verify_directory(log_dir) for _ in range(5)]
    finally:
        stop.set()
        thread.join()
    assert [f for r in reports for f in r.findings] == []
    assert all(r.live_streams == 1 for r in reports)


def test_an_http_witness_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    """verify cannot read an HTTP witness back: exit 2 instead of a silent OK."""
    from plexichat.core.logging.cli import main

    log_dir, key = sealed_dir(tmp_path, 3)
    code = main(
        ["verify", str(log_dir), "--key-file", str(key), "--witness", "http://127.0.0.1:9/w"]
    )
    assert code == 2
