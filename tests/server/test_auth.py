"""API tokens: stored hashed, roles ordered, revocation at once, bootstrap tokens, rate limit."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging._core.errors import ConfigError
from plexichat.core.logging.cli import main
from plexichat.core.logging.server.auth import (
    RateLimiter,
    TokenStore,
    hash_token,
    parse_env_tokens,
    role_allows,
)
from plexichat.core.logging.server.state import ServerSettings


def test_token_is_stored_only_hashed_and_file_is_private(tmp_path: Path) -> None:
    """The file holds the SHA-256 of the token, never the token; mode 0600."""
    store = TokenStore.for_directory(tmp_path)
    token, info = store.create("viewer", name="grafana")
    raw = (tmp_path / "api-tokens.json").read_bytes()
    assert token.encode() not in raw
    assert hash_token(token).encode() in raw
    assert stat.S_IMODE(os.stat(tmp_path / "api-tokens.json").st_mode) == 0o600
    principal = store.authenticate(token)
    assert principal is not None
    assert (principal.name, principal.role, principal.token_id) == ("grafana", "viewer", info.id)
    assert store.authenticate(token + "x") is None
    assert store.authenticate("") is None
    assert store.authenticate(None) is None


def test_tokens_are_random_and_long(tmp_path: Path) -> None:
    """Two tokens differ and carry 256 bits (43 base64 characters after the prefix)."""
    store = TokenStore.for_directory(tmp_path)
    first, _ = store.create("admin")
    second, _ = store.create("admin")
    assert first != second
    assert first.startswith("plx_")
    assert len(first) == len("plx_") + 43


def test_revocation_applies_to_a_running_store_without_restart(tmp_path: Path) -> None:
    """A second TokenStore (another process: the CLI) revokes; the first refuses at once."""
    server_side = TokenStore.for_directory(tmp_path)
    token, info = server_side.create("security", name="soc")
    assert server_side.authenticate(token) is not None
    revoked = TokenStore.for_directory(tmp_path).revoke("soc")
    assert revoked.revoked is not None
    assert server_side.authenticate(token) is None
    assert [t.revoked is not None for t in server_side.list()] == [True]
    assert TokenStore.for_directory(tmp_path).revoke(info.id).revoked == revoked.revoked


def test_bad_role_name_and_duplicates_are_refused_with_the_fix(tmp_path: Path) -> None:
    """Errors name the bad value and what is allowed; nothing is written."""
    store = TokenStore.for_directory(tmp_path)
    with pytest.raises(ConfigError, match=r"invalid role 'root': allowed are viewer, security"):
        store.create("root")
    store.create("viewer", name="dash")
    with pytest.raises(ConfigError, match="a token named 'dash' exists"):
        store.create("admin", name="dash")
    with pytest.raises(ConfigError, match="invalid token name"):
        store.create("admin", name="bad\nname")
    with pytest.raises(ConfigError, match="no token named 'nope'"):
        store.revoke("nope")
    assert [t.name for t in store.list()] == ["dash"]


def test_corrupt_token_file_is_a_clear_error(tmp_path: Path) -> None:
    """A damaged file is reported with its path and the fix, never silently emptied."""
    (tmp_path / "api-tokens.json").write_text("{not json")
    store = TokenStore.for_directory(tmp_path)
    with pytest.raises(ConfigError, match="unreadable"):
        store.has_tokens()
    with pytest.raises(ConfigError, match="unreadable"):
        store.create("admin")
    assert (tmp_path / "api-tokens.json").read_text() == "{not json"


def test_env_tokens_are_held_hashed_and_validated(tmp_path: Path) -> None:
    """PLEXICHAT_LOG_API_TOKENS="TOKEN:ROLE,..." with clear errors that never echo a token."""
    secret = "a-long-enough-secret-1234"
    store = TokenStore(tmp_path / "api-tokens.json", parse_env_tokens(f"{secret}:security, "))
    principal = store.authenticate(secret)
    assert principal is not None
    assert (principal.role, principal.name) == ("security", "env-token-1")
    assert store.has_tokens()
    assert not (tmp_path / "api-tokens.json").exists()
    with pytest.raises(ConfigError, match="item 1: use TOKEN:ROLE") as caught:
        parse_env_tokens("justatokenwithoutrole")
    assert "justatokenwithoutrole" not in str(caught.value)
    with pytest.raises(ConfigError, match="shorter than 16") as short:
        parse_env_tokens("short:viewer")
    assert "short" not in str(short.value).split("item")[0]
    with pytest.raises(ConfigError, match="invalid role 'god'"):
        parse_env_tokens(f"{secret}:god")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_env_token_parsing_never_crashes(text: str) -> None:
    """Any text either parses into (token, role) pairs with known roles or a ConfigError."""
    try:
        pairs = parse_env_tokens(text)
    except ConfigError:
        return
    assert all(role in ("viewer", "security", "admin") and len(tok) >= 16 for tok, role in pairs)


def test_role_order() -> None:
    """viewer < security < admin; unknown roles allow nothing."""
    assert role_allows("admin", "security")
    assert role_allows("security", "viewer")
    assert not role_allows("viewer", "security")
    assert not role_allows("security", "admin")
    assert not role_allows("root", "viewer")
    assert not role_allows("admin", "root")


def test_concurrent_creates_lose_nothing(tmp_path: Path) -> None:
    """Eight threads creating tokens at once: every token is in the file and works."""
    store = TokenStore.for_directory(tmp_path)
    made: list[str] = []
    lock = threading.Lock()

    def create(i: int) -> None:
        token, _ = store.create("viewer", name=f"t{i}")
        with lock:
            made.append(token)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = TokenStore.for_directory(tmp_path)
    assert len(fresh.list()) == 8
    assert all(fresh.authenticate(token) is not None for token in made)


def test_rate_limiter_refills_over_time() -> None:
    """A bucket of per_minute requests; empty: the wait until the next one; refills."""
    limiter = RateLimiter(60)
    assert all(limiter.check("a", now=0.0) == 0.0 for _ in range(60))
    assert limiter.check("a", now=0.0) == pytest.approx(1.0)
    assert limiter.check("b", now=0.0) == 0.0  # per caller
    assert limiter.check("a", now=1.0) == 0.0
    assert RateLimiter(0).check("a") == 0.0


def test_insecure_no_auth_only_on_loopback(tmp_path: Path) -> None:
    """--insecure-no-auth on a public address is refused with the reason and the fix."""
    with pytest.raises(ConfigError, match=r"only allowed on a loopback address, not '0\.0\.0\.0'"):
        ServerSettings(directory=tmp_path, insecure_no_auth=True, host="0.0.0.0")
    assert ServerSettings(directory=tmp_path, insecure_no_auth=True).insecure_no_auth


def test_token_cli_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`token create` prints the token alone on stdout; list never shows it; revoke works."""
    assert (
        main(["token", "create", "--role", "viewer", "--name", "ci", "--dir", str(tmp_path)]) == 0
    )
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("plx_")
    assert "shown only now" in out.err
    assert main(["token", "list", "--json", "--dir", str(tmp_path)]) == 0
    listed = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(t["name"], t["role"], t["revoked"]) for t in listed] == [("ci", "viewer", None)]
    assert token not in str(listed)
    assert main(["token", "revoke", "ci", "--dir", str(tmp_path)]) == 0
    assert TokenStore.for_directory(tmp_path).authenticate(token) is None
    assert main(["token", "revoke", "ci2", "--dir", str(tmp_path)]) == 2
    assert "no token named 'ci2'" in capsys.readouterr().err
    assert main(["token", "list", "--dir", str(tmp_path)]) == 0
    assert "ci" in capsys.readouterr().out


_RACER = """
import sys
from pathlib import Path
from plexichat.core.logging.server.auth import TokenStore
store = TokenStore.for_directory(Path(sys.argv[1]))
for i in range(int(sys.argv[3])):
    if sys.argv[2] == "revoke":
        store.revoke(f"victim-{i}")
    else:
        store.create("viewer", name=f"{sys.argv[2]}-{i}")
"""


@pytest.mark.slow
def test_processes_changing_the_token_file_never_undo_each_other(tmp_path: Path) -> None:
    """Two processes creating and one revoking at once: every create and every revocation
    survives (the read-modify-write is under a file lock)."""
    rounds = 40
    store = TokenStore.for_directory(tmp_path)
    victims = [store.create("admin", name=f"victim-{i}")[0] for i in range(rounds)]
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path), kind, str(rounds)])
        for kind in ("revoke", "a", "b")
    ]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    final = TokenStore.for_directory(tmp_path)
    names = {t.name: t for t in final.list()}
    assert all(f"{k}-{i}" in names for k in ("a", "b") for i in range(rounds))
    assert all(final.authenticate(token) is None for token in victims)
    assert all(names[f"victim-{i}"].revoked is not None for i in range(rounds))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".api-tokens")]
