"""The indexer against hostile and failing input: damaged compressed segments, read errors,
FIFOs and symlinks named like segments, endless lines, records without a seq, a store that
fails a pass, and a reindex of one directory in a shared store."""

from __future__ import annotations

import errno
import gzip
import os
import socket
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexichat.core.logging.sinks import segments
from plexichat.core.logging.sinks.segments import (
    OversizedLine,
    iter_lines,
    list_segments,
    open_segment,
    scan_segments,
)
from plexichat.core.logging.sinks.writer import SegmentWriter
from plexichat.core.logging.store import LogQuery, LogStore, StoredRecord, open_store
from plexichat.core.logging.store import indexer as indexer_module
from plexichat.core.logging.store.base import record_from_event
from plexichat.core.logging.store.indexer import DONE, SETTLE, Indexer, IndexReport

zstandard = pytest.importorskip("zstandard")

STREAM = "ext-1-abc"
_HYPOTHESIS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[LogStore]:
    """An embedded store in a temporary directory."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


def _line(seq: int, message: str | None = None, **extra: object) -> bytes:
    event: dict[str, object] = {
        "timestamp": f"2024-01-15T10:{seq // 60 % 60:02d}:{seq % 60:02d}.000Z",
        "level": "INFO",
        "message": message if message is not None else f"m{seq}",
        "logger": "hostile",
        "seq": seq,
    }
    event.update(extra)
    return orjson.dumps(event) + b"\n"


def _content(count: int) -> bytes:
    return b"".join(_line(seq) for seq in range(1, count + 1))


def _segment(
    logs: Path, data: bytes, *, stream: str = STREAM, index: int = 1, comp: str = ""
) -> Path:
    """Write a segment file of ``stream`` (``comp``: "", ".gz" or ".zst", data compressed)."""
    logs.mkdir(parents=True, exist_ok=True)
    if comp == ".gz":
        data = gzip.compress(data)
    elif comp == ".zst":
        data = zstandard.ZstdCompressor(level=3).compress(data)
    path = logs / f"plexichat.{stream}.{index:06d}.jsonl{comp}"
    path.write_bytes(data)
    return path


def _age(path: Path, seconds: float) -> None:
    """Make the file look unchanged for ``seconds``."""
    st_ = path.stat()
    os.utime(path, (st_.st_atime - seconds, st_.st_mtime - seconds))


def _messages(store: LogStore, stream: str | None = None) -> list[str]:
    return [
        r.message
        for r in store.iter_records(LogQuery(order="asc"))
        if stream is None or r.stream == stream
    ]


# --- 1. damaged zstd data --------------------------------------------------------------


def test_random_bytes_named_zst_do_not_stop_other_streams(
    tmp_path: Path, sqlite_store: LogStore
) -> None:
    """A .zst segment of random bytes is reported, and every other stream is indexed; once
    the file has stopped changing it is marked done and never read again."""
    logs = tmp_path / "logs"
    _segment(logs, _content(20))
    bad = logs / "plexichat.aaa-1-abc.000001.jsonl.zst"
    bad.write_bytes(os.urandom(300))
    indexer = Indexer(logs, sqlite_store)
    report = indexer.run_once()
    assert report.records == 20
    assert any(bad.name in e and "damaged" in e for e in report.errors)
    assert "plexichat.aaa-1-abc.000001" + DONE not in sqlite_store.positions()
    _age(bad, SETTLE * 2)
    report = indexer.run_once()
    assert report.records == 0
    assert "plexichat.aaa-1-abc.000001" + DONE in sqlite_store.positions()
    assert indexer.run_once().errors == []


def test_zst_cut_in_half_raises_eof_after_its_complete_lines(tmp_path: Path) -> None:
    """A .zst segment cut off mid-frame yields the complete lines before the cut, then raises
    EOFError (it used to end silently, as if the segment were complete)."""
    data = _content(20000)  # many zstd blocks: the cut leaves complete ones before it
    path = _segment(tmp_path, data, comp=".zst")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    got: list[bytes] = []
    lines = iter_lines(path)
    with pytest.raises(EOFError, match="cut off"):
        got.extend(raw for _, raw in lines)
    assert got
    assert b"".join(got) == data[: len(b"".join(got))]


@pytest.mark.parametrize("comp", [".gz", ".zst"])
@_HYPOTHESIS
@given(cut=st.floats(min_value=0.0, max_value=1.0), count=st.integers(1, 300))
def test_cut_compressed_segment_yields_a_prefix_then_eof(
    tmp_path: Path, comp: str, cut: float, count: int
) -> None:
    """Cut anywhere, a compressed segment yields a prefix of its lines with exact offsets,
    and raises EOFError exactly when something was cut off (never another error type)."""
    data = _content(count)
    path = _segment(tmp_path, data, comp=comp)
    whole = path.read_bytes()
    size = round(len(whole) * cut)
    path.write_bytes(whole[:size])
    got: list[tuple[int, bytes]] = []
    try:
        got.extend(iter_lines(path))
    except EOFError:
        assert size < len(whole)
    except OSError:  # a gzip header itself cut off reads as not-gzip
        assert comp == ".gz"
        assert size < len(whole)
    else:
        assert size in (0, len(whole))
    text = b"".join(raw for _, raw in got)
    assert text == data[: len(text)]
    assert [end for end, _ in got] == [
        sum(len(raw) for _, raw in got[: n + 1]) for n in range(len(got))
    ]
    if size == len(whole):
        assert text == data


@_HYPOTHESIS
@given(junk=st.binary(min_size=1, max_size=400), comp=st.sampled_from([".gz", ".zst"]))
def test_garbage_compressed_data_raises_only_eof_or_oserror(
    tmp_path: Path, junk: bytes, comp: str
) -> None:
    """Any bytes in a compressed segment read as lines, EOFError or OSError: the errors the
    indexer, the reader and the CLI handle (zstd's own error type used to escape)."""
    path = tmp_path / f"plexichat.{STREAM}.000001.jsonl{comp}"
    path.write_bytes(junk)
    lines: list[tuple[int, bytes]] = []
    error: Exception | None = None
    try:
        lines.extend(iter_lines(path))
    except (EOFError, OSError) as exc:
        error = exc
    assert error is None or str(error)
    assert all(raw.endswith(b"\n") for _, raw in lines)


# --- 2. read errors: retried, or marked done when the data is damaged ------------------


def test_read_error_saves_progress_and_retries(
    tmp_path: Path, sqlite_store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A closed segment that fails with EMFILE/EACCES keeps the records read before the
    error and is read again at the next pass, not marked done."""
    logs = tmp_path / "logs"
    path = _segment(logs, _content(30), comp=".gz")
    real = segments.iter_lines

    def failing(p: Path, offset: int = 0, **kw: int) -> Iterator[tuple[int, bytes]]:
        for n, item in enumerate(real(p, offset, **kw)):
            if n == 10:
                raise OSError(errno.EMFILE, "Too many open files")
            yield item

    monkeypatch.setattr(indexer_module, "iter_lines", failing)
    indexer = Indexer(logs, sqlite_store)
    report = indexer.run_once()
    assert report.records == 10
    assert any(path.name in e and "Too many open files" in e for e in report.errors)
    key = f"plexichat.{STREAM}.000001"
    assert key in sqlite_store.positions()
    assert key + DONE not in sqlite_store.positions()
    monkeypatch.setattr(indexer_module, "iter_lines", real)
    assert indexer.run_once().records == 20
    assert key + DONE in sqlite_store.positions()
    assert _messages(sqlite_store) == [f"m{n}" for n in range(1, 31)]


def test_unreadable_segment_writes_nothing_until_readable(
    tmp_path: Path, sqlite_store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A segment that cannot be opened at all saves no position and is indexed once it can."""
    logs = tmp_path / "logs"
    _segment(logs, _content(5), comp=".gz")
    real = segments.iter_lines

    def denied(p: Path, offset: int = 0, **kw: int) -> Iterator[tuple[int, bytes]]:
        raise PermissionError(errno.EACCES, "Permission denied", str(p))

    monkeypatch.setattr(indexer_module, "iter_lines", denied)
    indexer = Indexer(logs, sqlite_store)
    report = indexer.run_once()
    assert report.records == 0
    assert any("Permission denied" in e for e in report.errors)
    assert sqlite_store.positions() == {}
    monkeypatch.setattr(indexer_module, "iter_lines", real)
    assert indexer.run_once().records == 5


def test_partial_copy_of_gz_is_finished_once_complete(
    tmp_path: Path, sqlite_store: LogStore
) -> None:
    """A .gz seen half copied in keeps its complete records and is read on once the copy
    ends (it used to be marked done at the cut)."""
    logs = tmp_path / "logs"
    path = _segment(logs, _content(3000), comp=".gz")
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    indexer = Indexer(logs, sqlite_store)
    first = indexer.run_once()
    assert 0 < first.records < 3000
    assert first.errors
    path.write_bytes(whole)
    second = indexer.run_once()
    assert first.records + second.records == 3000
    assert second.errors == []
    assert _messages(sqlite_store) == [f"m{n}" for n in range(1, 3001)]


def test_damaged_settled_segment_keeps_records_and_is_done(
    tmp_path: Path, sqlite_store: LogStore
) -> None:
    """A compressed segment cut off long ago keeps its records before the cut and is marked
    done with the error reported: retrying damaged data forever would be useless."""
    logs = tmp_path / "logs"
    path = _segment(logs, _content(3000), comp=".zst")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _age(path, SETTLE * 2)
    report = Indexer(logs, sqlite_store).run_once()
    assert 0 < report.records < 3000
    assert any(path.name in e and "skipped" in e for e in report.errors)
    assert f"plexichat.{STREAM}.000001{DONE}" in sqlite_store.positions()
    assert _messages(sqlite_store) == [f"m{n}" for n in range(1, report.records + 1)]


# --- 3. FIFOs, symlinks, devices; endless lines ------------------------------------------


def test_only_regular_files_are_listed(tmp_path: Path) -> None:
    """A FIFO, a socket, a symlink (to /dev/zero or to a real segment) and a directory
    named like segments are not listed: reading them could hang or never end."""
    logs = tmp_path / "logs"
    real = _segment(logs, _content(2))
    os.mkfifo(logs / "plexichat.fifo-1-abc.000001.jsonl")
    (logs / "plexichat.zero-1-abc.000001.jsonl").symlink_to("/dev/zero")
    (logs / "plexichat.link-1-abc.000001.jsonl").symlink_to(real)
    (logs / "plexichat.dir-1-abc.000001.jsonl").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(logs / "plexichat.sock-1-abc.000001.jsonl"))
    except OSError:  # a path too long for AF_UNIX here: the other kinds still count
        pass
    try:
        assert [s.path for s in scan_segments(logs)] == [real]
        assert list(list_segments(logs)) == [STREAM]
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["fifo", "symlink", "dev-symlink"])
def test_strict_open_refuses_what_is_not_a_regular_file(tmp_path: Path, kind: str) -> None:
    """open_segment(strict=True) fails at once with an OSError for a FIFO (no blocking open
    waiting for a writer) and for any symlink (followed by nothing)."""
    path = tmp_path / f"plexichat.{STREAM}.000001.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        path.symlink_to(_segment(tmp_path / "elsewhere", _content(1)))
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(OSError) as info:
        open_segment(path, strict=True)
    assert info.value.errno in (errno.ELOOP, errno.EINVAL, errno.EMLINK)


def test_endless_line_is_skipped_in_bounded_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A line longer than the limit is read in limit-sized pieces and yielded as an
    OversizedLine (its head and its size), and the lines after it keep their offsets."""
    reads: list[int] = []
    real_open = segments.open_segment

    class Spy:
        def __init__(self, fh: object) -> None:
            self.fh = fh

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()  # type: ignore[attr-defined]

        def seek(self, offset: int) -> int:
            return int(self.fh.seek(offset))  # type: ignore[attr-defined]

        def readline(self, limit: int = -1) -> bytes:
            reads.append(limit)
            return bytes(self.fh.readline(limit))  # type: ignore[attr-defined]

    monkeypatch.setattr(segments, "open_segment", lambda p, **kw: Spy(real_open(p, **kw)))
    first, second = _line(1), _line(3)
    big = _line(2, "x" * 5000)
    path = _segment(tmp_path, first + big + second)
    got = list(iter_lines(path, max_line=1000))
    assert all(0 < limit <= 1000 for limit in reads)
    assert [raw for _, raw in got] == [first, big[:256], second]
    assert isinstance(got[1][1], OversizedLine)
    assert got[1][1].size == len(big)
    assert [end for end, _ in got] == [
        len(first),
        len(first + big),
        len(first + big + second),
    ]


@_HYPOTHESIS
@given(
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=30),
    limit=st.integers(2, 120),
    torn=st.integers(0, 200),
    comp=st.sampled_from(["", ".gz", ".zst"]),
)
def test_lines_longer_than_the_limit_are_marked_not_lost(
    tmp_path: Path, sizes: list[int], limit: int, torn: int, comp: str
) -> None:
    """For any line lengths and limit: short lines come back whole, long ones as
    OversizedLine of the right size, offsets add up, and a torn last line is never yielded."""
    lines = [b"a" * (size - 1) + b"\n" for size in sizes]
    path = _segment(tmp_path, b"".join(lines) + b"t" * torn, comp=comp)
    got = list(iter_lines(path, max_line=limit))
    assert len(got) == len(lines)
    end = 0
    for (offset, raw), line in zip(got, lines, strict=True):
        end += len(line)
        assert offset == end
        if len(line) <= limit:
            assert raw == line
            assert not isinstance(raw, OversizedLine)
        else:
            assert isinstance(raw, OversizedLine)
            assert raw.size == len(line)
            assert len(raw) <= 256


# --- 4. records without a usable seq ------------------------------------------------------


def test_lines_without_a_usable_seq_are_malformed(tmp_path: Path, sqlite_store: LogStore) -> None:
    """Lines whose seq is missing, not an int, zero or negative are counted malformed
    instead of collapsing into one stored record; good lines around them are kept."""
    logs = tmp_path / "logs"
    seqs: list[dict[str, object]] = [{}, {}, {}, {"seq": 0}, {"seq": -5}]
    seqs += [{"seq": "7"}, {"seq": True}, {"seq": 1.5}, {"seq": None}, {"seq": 2**63}]
    bad = [
        orjson.dumps({"timestamp": "2024-01-15T10:00:00Z", "message": f"bad {n}", **seq}) + b"\n"
        for n, seq in enumerate(seqs)
    ]
    _segment(logs, _line(1, "ok1") + b"".join(bad) + _line(2, "ok2"))
    report = Indexer(logs, sqlite_store).run_once()
    assert report.records == 2
    assert report.malformed == len(bad)
    assert _messages(sqlite_store) == ["ok1", "ok2"]


# --- 5. follow survives a failing pass --------------------------------------------------


class _LockedOnce:
    """A store whose first ``fail`` position reads raise, as a store locked for too long."""

    def __init__(self, inner: LogStore, error: BaseException, fail: int = 1) -> None:
        self.inner = inner
        self.error = error
        self.fail = fail
        self.url = inner.url

    def positions(self) -> dict[str, int]:
        if self.fail > 0:
            self.fail -= 1
            raise self.error
        return self.inner.positions()

    def append(
        self, records: Sequence[StoredRecord], positions: Mapping[str, int] | None = None
    ) -> int:
        return self.inner.append(records, positions)


def test_follow_reports_a_failed_pass_and_goes_on(tmp_path: Path, sqlite_store: LogStore) -> None:
    """A pass that raises (database is locked) is put in that pass's report and the next
    pass indexes; follow no longer exits with a traceback."""
    logs = tmp_path / "logs"
    _segment(logs, _content(7))
    store = _LockedOnce(sqlite_store, sqlite3.OperationalError("database is locked"))
    reports: list[IndexReport] = []
    indexer = Indexer(logs, store)  # type: ignore[arg-type]
    indexer.follow(interval=0, stop=lambda: len(reports) >= 2, on_pass=reports.append)
    assert "database is locked" in reports[0].errors[0]
    assert reports[0].records == 0
    assert reports[1].records == 7
    assert reports[1].errors == []


def test_follow_still_ends_on_keyboard_interrupt(tmp_path: Path, sqlite_store: LogStore) -> None:
    """Ctrl-C during a pass ends follow (it is not an error to retry)."""
    store = _LockedOnce(sqlite_store, KeyboardInterrupt())
    indexer = Indexer(tmp_path, store)  # type: ignore[arg-type]
    passes: list[IndexReport] = []
    with pytest.raises(KeyboardInterrupt):
        indexer.follow(interval=0, stop=lambda: len(passes) > 3, on_pass=passes.append)
    assert passes == []


# --- 6. reindex keeps other streams ----------------------------------------------------


def test_reindex_keeps_other_directories_and_imports(
    tmp_path: Path, sqlite_store: LogStore
) -> None:
    """reindex of one directory rebuilds its own streams only: another directory's records
    and imported records in the same store are kept (clear() used to wipe them)."""
    mine, other = tmp_path / "mine", tmp_path / "other"
    for directory, count in ((mine, 6), (other, 4)):
        writer = SegmentWriter(directory)
        for n in range(count):  # the writer adds the stream and the seq
            event = {"timestamp": "2024-01-15T10:00:00Z", "message": f"{directory.name}{n}"}
            writer.write_one(20, orjson.dumps(event))
        writer.close()
    imported = [
        record_from_event(
            {"timestamp": "2024-01-15T09:00:00Z", "message": f"imp{n}"},
            stream="import-0123456789ab",
            seq=n + 1,
        )
        for n in range(3)
    ]
    assert sqlite_store.append(imported) == 3
    indexer = Indexer(mine, sqlite_store)
    assert indexer.run_once().records == 6
    assert Indexer(other, sqlite_store).run_once().records == 4
    report = indexer.reindex()
    assert report.records == 6
    assert report.duplicates == 0
    assert sqlite_store.count(LogQuery()) == 13
    messages = set(_messages(sqlite_store))
    assert {f"other{n}" for n in range(4)} <= messages
    assert {f"imp{n}" for n in range(3)} <= messages
    assert {f"mine{n}" for n in range(6)} <= messages
    (other_stream,) = list_segments(other)
    assert any(other_stream in key for key in sqlite_store.positions())
