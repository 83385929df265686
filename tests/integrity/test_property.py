"""Property: one flipped byte anywhere in 10,000 sealed records is always found, at its line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ._util import read_lines, sealed_dir, segments, verify, write_lines

RECORDS = 10_000


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[Path]]:
    """One 10,000-record sealed directory (several segments), written once."""
    root = tmp_path_factory.mktemp("property")
    from plexichat.core.logging import shutdown_logging

    log_dir, key = sealed_dir(root, RECORDS, rotation="512 KB")
    shutdown_logging()
    return log_dir, key, segments(log_dir)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seq=st.integers(1, RECORDS), where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
@example(seq=5_000, where=0.99999, bit=0)  # the newline: two lines glued into one
@example(seq=1, where=0.0, bit=1)  # the first byte of the first record
@example(seq=RECORDS, where=0.99, bit=3)  # inside the tag of the last record
def test_a_flipped_byte_is_found_at_its_record(
    sealed: tuple[Path, Path, list[Path]],
    tmp_path_factory: pytest.TempPathFactory,
    seq: int,
    where: float,
    bit: int,
) -> None:
    """Whatever record and byte: verification fails, and the first finding is in the
    tampered file at the tampered line."""
    log_dir, key, _files = sealed
    copy = tmp_path_factory.mktemp("flip") / "logs"
    shutil.copytree(log_dir, copy)
    for path in segments(copy):
        lines = read_lines(path)
        needle = b',"seq":%d,"tag"' % seq
        hits = [i for i, line in enumerate(lines) if needle in line]
        if hits:
            i = hits[0]
            line = bytearray(lines[i])
            pos = int(where * len(line))
            line[pos] ^= 1 << bit
            lines[i] = bytes(line)
            write_lines(path, lines)
            break
    else:
        raise AssertionError(f"seq {seq} not found")
    report = verify(copy, key)
    assert not report.ok
    first = report.findings[0]
    assert Path(first.file).name == path.name
    assert first.line == i + 1, (first, pos)
    shutil.rmtree(copy.parent)
