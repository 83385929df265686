"""Audit findings: ``decrypt`` on damaged compressed files, key files behind symlinks."""

from __future__ import annotations

import gzip
import os
import random
import re
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging.cli import main
from plexichat.core.logging.security.encryption import (
    KeyFileError,
    load_key_file,
    write_key_file,
)

LINES = 3000


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A key file (mode 0600)."""
    path = tmp_path / "field.key"
    write_key_file(path)
    return path


def _records(count: int) -> bytes:
    """``count`` JSON lines that do not compress to almost nothing."""
    rng = random.Random(7)
    return b"".join(
        orjson.dumps({"message": f"record {i}", "noise": rng.randbytes(24).hex()}) + b"\n"
        for i in range(count)
    )


def _damage_report(err: str, name: str) -> int:
    match = re.search(
        rf"plexichat-logs decrypt: .*{re.escape(name)}: damaged or cut off after (\d+) "
        r"records: \S",
        err,
    )
    assert match, err
    return int(match.group(1))


def test_truncated_gzip_is_reported_and_the_next_input_still_read(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The readable records, one line naming the file and the count, then the next file."""
    data = gzip.compress(_records(LINES))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) * 2 // 3])
    good = tmp_path / "good.jsonl"
    good.write_bytes(b'{"message": "after the damage"}\n')
    assert main(["decrypt", str(cut), str(good), "--key-file", str(key_file)]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    out = captured.out.splitlines()
    assert out[-1] == '{"message":"after the damage"}'
    count = _damage_report(captured.err, "cut.jsonl.gz")
    assert 0 < count < LINES
    assert count == len(out) - 1


def test_garbage_gzip_is_reported(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not gzip data at all: reported after 0 records, exit 1, no traceback."""
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"this is not gzip data at all")
    assert main(["decrypt", str(bad), "--key-file", str(key_file)]) == 1
    captured = capsys.readouterr()
    assert _damage_report(captured.err, "bad.jsonl.gz") == 0
    assert "Traceback" not in captured.err


def test_truncated_zstd_is_reported(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A .zst file cut inside its frame: the same report."""
    zstandard = pytest.importorskip("zstandard")
    data = zstandard.ZstdCompressor().compress(_records(LINES))
    cut = tmp_path / "cut.jsonl.zst"
    cut.write_bytes(data[: len(data) // 2])
    assert main(["decrypt", str(cut), "--key-file", str(key_file)]) == 1
    captured = capsys.readouterr()
    assert _damage_report(captured.err, "cut.jsonl.zst") == len(captured.out.splitlines())
    assert "Traceback" not in captured.err


def test_intact_inputs_still_exit_0(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whole files: every record, nothing on standard error, exit 0."""
    whole = tmp_path / "whole.jsonl.gz"
    whole.write_bytes(gzip.compress(_records(10)))
    assert main(["decrypt", str(whole), "--key-file", str(key_file)]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 10
    assert captured.err == ""


def _secret_mount(tmp_path: Path, key_file: Path) -> Path:
    """A Kubernetes-style secret volume: key -> ..data/key, ..data -> a timestamped dir."""
    mount = tmp_path / "secret"
    version = mount / "..2024_01_01_00_00_00.000"
    version.mkdir(parents=True)
    (version / "key").write_bytes(key_file.read_bytes())
    (version / "key").chmod(0o600)
    (mount / "..data").symlink_to(version.name)
    link = mount / "key"
    link.symlink_to("..data/key")
    return link


@pytest.mark.skipif(os.name != "posix", reason="symlinks and modes are POSIX")
def test_symlinked_key_file_is_followed(tmp_path: Path, key_file: Path) -> None:
    """A key file mounted through symlinks loads the key of the file they lead to."""
    link = _secret_mount(tmp_path, key_file)
    assert list(load_key_file(link)) == list(load_key_file(key_file))


@pytest.mark.skipif(os.name != "posix", reason="symlinks and modes are POSIX")
def test_symlink_to_an_open_key_file_is_refused(tmp_path: Path, key_file: Path) -> None:
    """The mode rule applies to the file the link leads to; the message names both."""
    link = _secret_mount(tmp_path, key_file)
    target = link.resolve()
    target.chmod(0o644)
    with pytest.raises(KeyFileError) as info:
        load_key_file(link)
    message = str(info.value)
    assert str(link) in message
    assert str(target) in message
    assert "has mode 644" in message
    assert "owner only" in message
    assert f"chmod 600 {target}" in message


@pytest.mark.skipif(os.name != "posix", reason="symlinks and modes are POSIX")
def test_decrypt_accepts_a_symlinked_key_file(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--key-file`` through a symlink works end to end."""
    link = _secret_mount(tmp_path, key_file)
    segment = tmp_path / "plain.jsonl"
    segment.write_bytes(b'{"message": "hello"}\n')
    assert main(["decrypt", str(segment), "--key-file", str(link)]) == 0
    assert capsys.readouterr().out == '{"message":"hello"}\n'
