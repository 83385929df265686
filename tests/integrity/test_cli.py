"""``plexichat-logs keys`` and ``plexichat-logs verify`` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging.cli import main

from ._util import find_segment, sealed_dir, write_lines


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    return subprocess.run(
        [sys.executable, "-m", "plexichat.core.logging.cli", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=120,
    )


def test_keys_init_creates_private_keys_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """keys init creates the key folder and says where the auditor key must go; a second
    run changes nothing."""
    log_dir = tmp_path / "logs"
    assert main(["keys", "init", str(log_dir)]) == 0
    out = capsys.readouterr().out
    assert "auditor key:" in out
    assert "OFF this host" in out
    key = log_dir / "keys" / "auditor.key"
    assert key.stat().st_mode & 0o777 == 0o600
    before = key.read_bytes()
    assert main(["keys", "init", str(log_dir)]) == 0
    assert "already exist" in capsys.readouterr().out
    assert key.read_bytes() == before


def test_export_public_prints_a_key_verify_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exported public key line is a --public-key file for verify."""
    log_dir, _ = sealed_dir(tmp_path, 10, offline_key=False)
    assert main(["keys", "export-public", str(log_dir)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("ed25519:")
    public = tmp_path / "public.key"
    public.write_text(line)
    (log_dir / "keys" / "auditor.key").unlink()
    assert main(["verify", str(log_dir), "--public-key", str(public)]) == 0
    assert "OK: intact" in capsys.readouterr().out


def test_export_public_without_keys_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No keys yet: exit 2 and the command that creates them."""
    assert main(["keys", "export-public", str(tmp_path)]) == 2
    assert "keys init" in capsys.readouterr().err


def test_verify_exit_codes_and_json(tmp_path: Path) -> None:
    """0 intact, 1 with findings (JSON names them), 2 for a usage error."""
    log_dir, key = sealed_dir(tmp_path, 20)
    done = _cli("verify", str(log_dir), "--key-file", str(key), "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert (report["ok"], report["records"], report["streams"]) == (True, 20, 1)
    path, lines, i = find_segment(log_dir, 7)
    del lines[i]
    write_lines(path, lines)
    done = _cli("verify", str(log_dir), "--key-file", str(key), "--json")
    assert done.returncode == 1
    finding = orjson.loads(done.stdout)["findings"][0]
    assert (finding["kind"], finding["seq"], finding["line"]) == ("DELETED", 7, i + 1)
    text = _cli("verify", str(log_dir), "--key-file", str(key))
    assert text.returncode == 1
    assert "DELETED:" in text.stdout
    assert "FAILED" in text.stdout
    assert _cli("verify", str(tmp_path / "missing"), "--key-file", str(key)).returncode == 2
    assert _cli("verify", str(log_dir), "--key-file", str(tmp_path / "nokey")).returncode == 2


def test_verify_takes_the_key_from_the_environment(tmp_path: Path) -> None:
    """PLEXICHAT_LOG_AUDITOR_KEY holds the key (text or path): nothing on argv."""
    log_dir, key = sealed_dir(tmp_path, 5)
    by_text = _cli("verify", str(log_dir), env={"PLEXICHAT_LOG_AUDITOR_KEY": key.read_text()})
    assert by_text.returncode == 0, by_text.stderr
    assert "env PLEXICHAT_LOG_AUDITOR_KEY" in by_text.stdout
    by_path = _cli("verify", str(log_dir), env={"PLEXICHAT_LOG_AUDITOR_KEY": str(key)})
    assert by_path.returncode == 0, by_path.stderr


def test_verify_with_the_host_key_says_it_proves_less(tmp_path: Path) -> None:
    """With no key given it uses keys/auditor.key and warns that an on-host key proves less."""
    log_dir, _ = sealed_dir(tmp_path, 5, offline_key=False)
    done = _cli("verify", str(log_dir))
    assert done.returncode == 0
    assert "proves less" in done.stderr
    assert str(log_dir / "keys" / "auditor.key") in done.stderr


def test_verify_without_any_key_is_a_usage_error(tmp_path: Path) -> None:
    """No key anywhere: exit 2, naming the options and the environment variable."""
    log_dir, _ = sealed_dir(tmp_path, 5)
    done = _cli("verify", str(log_dir))
    assert done.returncode == 2
    assert "--key-file" in done.stderr


def test_verify_defaults_to_the_configured_directory(tmp_path: Path) -> None:
    """Without DIR, verify checks PLEXICHAT_LOG_DIRECTORY."""
    log_dir, key = sealed_dir(tmp_path, 5)
    done = _cli(
        "verify",
        "--key-file",
        str(key),
        env={"PLEXICHAT_LOG_DIRECTORY": str(log_dir)},
    )
    assert done.returncode == 0, done.stderr
    assert "5 record(s)" in done.stdout
