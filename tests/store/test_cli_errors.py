"""The store commands on a store they cannot use, and bad times: one line, never a traceback.

A store that cannot be opened or read exits with status 1 and one line on stderr naming the
store (password hidden) and what to do; a bad flag value exits with status 2 naming the
value as it was typed.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

from plexichat.core.logging._cli import store_cmd
from plexichat.core.logging._core.errors import ConfigError, PlexiLoggingError
from plexichat.core.logging.cli import main

PG_DOWN = "postgresql://postgres:secret@127.0.0.1:1/none"
"""Port 1: nothing listens, the connection is refused at once (no server needed)."""


def _damaged(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "damaged.db"
    path.write_bytes(b"garbage\n" * 100)
    return f"sqlite:///{path}", "move the file away (or delete it) and run `plexichat-logs reindex`"


def _directory(tmp_path: Path) -> tuple[str, str]:
    path = tmp_path / "a-directory"
    path.mkdir()
    return f"sqlite:///{path}", "is a directory, not a store file"


def _unmakeable(tmp_path: Path) -> tuple[str, str]:
    return "sqlite:////proc/nonexistent/x.db", "give a store URL in a directory you can write to"


def _postgres_down(tmp_path: Path) -> tuple[str, str]:
    pytest.importorskip("psycopg")
    return PG_DOWN, "check that the server is up"


STORES: dict[str, Callable[[Path], tuple[str, str]]] = {
    "damaged-file": _damaged,
    "directory": _directory,
    "unmakeable-directory": _unmakeable,
    "postgres-down": _postgres_down,
}


def _argv(command: str, tmp_path: Path) -> list[str]:
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    app = tmp_path / "app.jsonl"
    app.write_bytes(b'{"timestamp": "2024-01-15T10:30:45Z", "message": "m"}\n')
    return {
        "query": ["query"],
        "index": ["index", str(logs)],
        "reindex": ["reindex", str(logs)],
        "import": ["import", str(app)],
        "export": ["export", "--format", "json"],
        "stats": ["stats"],
        "retention apply": ["retention", "apply"],
    }[command]


@pytest.mark.parametrize("kind", list(STORES))
@pytest.mark.parametrize(
    "command", ["query", "index", "reindex", "import", "export", "stats", "retention apply"]
)
def test_a_store_that_cannot_be_opened_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str
) -> None:
    """Damaged file, directory, unmakeable directory, unreachable server: exit 1, one line
    naming the command, the store (password hidden) and what to do."""
    url, advice = STORES[kind](tmp_path)
    status = main([*_argv(command, tmp_path), "--store", url])
    err = capsys.readouterr().err
    assert status == 1, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"plexichat-logs {command}: ")
    assert url.replace(":secret@", ":***@") in err
    assert "secret" not in err
    assert advice in err


def test_a_store_damaged_inside_is_reported_by_stats_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store whose header is fine but whose pages are overwritten: the commands that read
    it say it is damaged and how to rebuild it, and export leaves no partial file."""
    app = tmp_path / "app.jsonl"
    app.write_bytes(
        b"".join(
            b'{"timestamp": "2024-01-15T10:30:45Z", "message": "m%d %s"}\n' % (i, b"x" * 200)
            for i in range(5000)
        )
    )
    db = tmp_path / "store.db"
    url = f"sqlite:///{db}"
    assert main(["import", str(app), "--store", url]) == 0
    capsys.readouterr()
    data = bytearray(db.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 200_000] = bytes(range(256)) * (200_000 // 256) + bytes(200_000 % 256)
    db.write_bytes(bytes(data))
    out = tmp_path / "out.json"
    for argv in (["stats"], ["export", "--format", "json", "-o", str(out)]):
        assert main([*argv, "--store", url]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1, err
        assert "is damaged" in err
        assert "plexichat-logs reindex" in err
    assert not out.exists()


def test_main_turns_an_unhandled_project_error_into_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last resort in main: a PlexiLoggingError no command caught is printed as one
    line naming the store (exit 1); a ConfigError is a usage error (exit 2)."""

    def broken(args: argparse.Namespace) -> int:
        raise PlexiLoggingError(f"lost the connection to {PG_DOWN}\nsecond line")

    def misconfigured(args: argparse.Namespace) -> int:
        raise ConfigError("level='LOUD': allowed are TRACE, DEBUG, INFO")

    monkeypatch.setattr(store_cmd, "run_query", broken)
    assert main(["query", "--store", PG_DOWN]) == 1
    err = capsys.readouterr().err
    assert err.startswith("plexichat-logs query: ")
    assert len(err.strip().splitlines()) == 1
    assert "postgres:***@127.0.0.1:1" in err
    assert "secret" not in err
    monkeypatch.setattr(store_cmd, "run_query", misconfigured)
    assert main(["query"]) == 2
    assert "level='LOUD'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--start", "0001-01-01T00:00:00+01:00"),
        ("--end", "9999-12-31T23:59:59-01:00"),
        ("--start", "yesterday"),
        ("--since", "100000 years"),
    ],
)
@pytest.mark.parametrize("command", [["query"], ["export", "--format", "json"]])
def test_a_bad_time_is_named_as_typed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    flag: str,
    value: str,
) -> None:
    """A time outside the years 1..9999 or not ISO-8601 exits 2 quoting the flag and the
    text given, never a datetime repr or a time computed from it."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main([*command, flag, value, "--store", url]) == 2
    err = capsys.readouterr().err
    assert f"{flag} {value!r}" in err
    assert "datetime" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_stats_window_before_the_year_1_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``stats --window`` reaching back before the year 1 exits 2 naming the window."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    assert main(["stats", "--window", "100000 years", "--store", url]) == 2
    assert "--window '100000 years'" in capsys.readouterr().err
