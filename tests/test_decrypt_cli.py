"""``plexichat-logs decrypt`` and ``plexichat-logs encryption-key``."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from plexichat.core.logging import configure_logging, get_logger, shutdown_logging
from plexichat.core.logging.cli import main
from plexichat.core.logging.security.encryption import is_encrypted, write_key_file
from plexichat.core.logging.security.redaction import REDACTED

IP = "198.51.100.23"
CLI = [sys.executable, "-m", "plexichat.core.logging.cli"]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    """A key file created by the CLI (mode 0600)."""
    path = tmp_path / "field.key"
    assert main(["encryption-key", "new", str(path)]) == 0
    return path


def _write_logs(log_dir: Path, key_file: Path, **kw: Any) -> None:
    configure_logging(
        directory=log_dir,
        console_enabled=False,
        encrypt_fields=["context.ip_address"],
        encryption_key_file=key_file,
        **kw,
    )
    logger = get_logger("cli")
    logger.info("one", extra={"context": {"ip_address": IP, "password": "pw"}})
    logger.info("two", extra={"context": {"ip_address": "192.0.2.1"}})
    shutdown_logging()


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def _messages(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["message"]: r for r in records if "message" in r}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}


def test_new_key_writes_a_private_file_and_prints_only_the_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """encryption-key new: mode 0600, stdout names the key id, never the key."""
    path = tmp_path / "k"
    assert main(["encryption-key", "new", str(path)]) == 0
    out = capsys.readouterr().out
    assert path.stat().st_mode & 0o777 == 0o600
    assert "key id" in out
    assert path.read_text().strip() not in out


def test_new_key_refuses_to_overwrite(key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing key file is never overwritten: exit 2 with the reason."""
    before = key_file.read_bytes()
    assert main(["encryption-key", "new", str(key_file)]) == 2
    assert "never overwritten" in capsys.readouterr().err
    assert key_file.read_bytes() == before


def test_decrypt_round_trip_in_a_subprocess(log_dir: Path, key_file: Path) -> None:
    """The real command (key in a file, never on argv) prints the plaintext."""
    _write_logs(log_dir, key_file)
    done = subprocess.run(
        [*CLI, "decrypt", str(log_dir), "--key-file", str(key_file)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    records = _messages(_json_lines(done.stdout))
    assert records["one"]["context"] == {"ip_address": IP, "password": REDACTED}
    assert records["two"]["context"]["ip_address"] == "192.0.2.1"


def test_decrypt_takes_the_key_from_the_environment(
    log_dir: Path,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without --key-file, PLEXICHAT_LOG_ENCRYPTION_KEY is used."""
    _write_logs(log_dir, key_file)
    monkeypatch.setenv("PLEXICHAT_LOG_ENCRYPTION_KEY", key_file.read_text().strip())
    assert main(["decrypt", str(log_dir)]) == 0
    assert _messages(_json_lines(capsys.readouterr().out))["one"]["context"]["ip_address"] == IP


def test_decrypt_with_the_wrong_key_marks_fields(
    log_dir: Path, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another key: each encrypted field says it cannot be decrypted; exit 0."""
    _write_logs(log_dir, key_file)
    other = tmp_path / "other.key"
    write_key_file(other)
    assert main(["decrypt", str(log_dir), "--key-file", str(other)]) == 0
    one = _messages(_json_lines(capsys.readouterr().out))["one"]
    assert one["context"]["ip_address"].startswith("<undecryptable: no key with id ")


def test_decrypt_reports_tampered_ciphertext(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A record whose ciphertext was edited decrypts to the tamper marker."""
    log_dir = tmp_path / "logs"
    _write_logs(log_dir, key_file)
    (segment,) = list(log_dir.glob("*.jsonl"))
    lines = segment.read_bytes().splitlines()
    record = next(orjson.loads(x) for x in lines if b'"one"' in x)
    ct = record["context"]["ip_address"]["ct"]
    record["context"]["ip_address"]["ct"] = ("B" if ct[0] == "A" else "A") + ct[1:]
    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(orjson.dumps(record) + b"\n")
    assert main(["decrypt", str(edited), "--key-file", str(key_file)]) == 0
    (out,) = _json_lines(capsys.readouterr().out)
    assert out["context"]["ip_address"].startswith("<undecryptable: authentication failed")


def test_decrypt_reads_gzip_files_and_passes_other_lines(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Compressed segments are read; lines that are not JSON objects pass unchanged."""
    log_dir = tmp_path / "logs"
    _write_logs(log_dir, key_file)
    (segment,) = list(log_dir.glob("*.jsonl"))
    packed = tmp_path / "old.jsonl.gz"
    packed.write_bytes(gzip.compress(segment.read_bytes() + b"not json\n\n[1]\n"))
    assert main(["decrypt", str(packed), "--key-file", str(key_file)]) == 0
    out = capsys.readouterr().out
    assert IP in out
    assert out.splitlines()[-2:] == ["not json", "[1]"]


def test_decrypt_reads_standard_input(
    log_dir: Path,
    key_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With no path (or -), records are read from standard input."""
    _write_logs(log_dir, key_file)
    (segment,) = list(log_dir.glob("*.jsonl"))
    stdin = io.TextIOWrapper(io.BytesIO(segment.read_bytes()))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["decrypt", "--key-file", str(key_file)]) == 0
    assert IP in capsys.readouterr().out


def test_decrypt_without_a_key_is_a_usage_error(
    log_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --key-file and no variable: exit 2 saying keys are never taken from argv."""
    assert main(["decrypt", str(log_dir)]) == 2
    assert "never accepted on the command line" in capsys.readouterr().err


def test_decrypt_refuses_an_open_key_file(
    log_dir: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A group-readable key file: exit 2 with the chmod fix."""
    key_file.chmod(0o640)
    assert main(["decrypt", str(log_dir), "--key-file", str(key_file)]) == 2
    assert "chmod 600" in capsys.readouterr().err


def test_decrypt_names_a_missing_input(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A path that does not exist is a usage error naming it."""
    assert main(["decrypt", str(tmp_path / "nope"), "--key-file", str(key_file)]) == 2
    assert "nope" in capsys.readouterr().err


def test_blind_index_lookup_in_the_sqlite_store(
    tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end: index the directory, compute FIELD.bidx=HEX, query --where finds it."""
    log_dir = tmp_path / "logs"
    _write_logs(log_dir, key_file, blind_index_fields=["context.ip_address"])
    env = {**_env(), "PLEXICHAT_LOG_DIRECTORY": str(log_dir)}
    done = subprocess.run(
        [*CLI, "index", str(log_dir)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert (
        main(
            ["encryption-key", "blind-index", "context.ip_address", IP, "--key-file", str(key_file)]
        )
        == 0
    )
    where = capsys.readouterr().out.strip()
    assert where.startswith("context.ip_address.bidx=")
    done = subprocess.run(
        [*CLI, "query", "--where", where, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = _json_lines(done.stdout)
    assert [r["message"] for r in found] == ["one"]
    assert is_encrypted(found[0]["context"]["ip_address"])
    assert IP not in done.stdout


@pytest.mark.parametrize("field", ["context", "context.*", "message.x"])
def test_blind_index_needs_one_field(
    key_file: Path, field: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whole objects, ROOT.* and fields that cannot be encrypted are refused."""
    assert main(["encryption-key", "blind-index", field, IP, "--key-file", str(key_file)]) == 2
    assert "blind-index" in capsys.readouterr().err
