"""API tokens and roles: who may read what.

Roles are ordered: ``viewer`` (operational records, stats, live tail) < ``security`` (+
security events and the audit trail) < ``admin`` (+ export, integrity, configuration).

Tokens are random (``plx_`` + 32 bytes, URL-safe base64) and stored only as their SHA-256
(a token has 256 bits of entropy, so a fast hash is enough: there is nothing to brute-force).
They live in ``api-tokens.json`` in the log directory (mode 0600), created by
``plexichat-logs token create``; ``PLEXICHAT_LOG_API_TOKENS="TOKEN:ROLE,..."`` adds tokens
held in memory only (containers). A token is shown once, when it is created.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import orjson

from .._core.clock import iso_utc
from .._core.errors import ConfigError

__all__ = [
    "ROLES",
    "Principal",
    "RateLimiter",
    "Role",
    "TokenInfo",
    "TokenStore",
    "parse_env_tokens",
    "role_allows",
]

Role = Literal["viewer", "security", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "security", "admin")
TOKENS_FILE = "api-tokens.json"
_PREFIX = "plx_"
_MIN_ENV_TOKEN = 16


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` includes the rights of ``needed`` (viewer < security < admin)."""
    names: tuple[str, ...] = ROLES
    return role in names and needed in names and names.index(role) >= names.index(needed)


def check_role(role: str) -> Role:
    """``role`` when it is one of :data:`ROLES`.

    Raises:
        ConfigError: naming the role and the allowed ones.
    """
    for known in ROLES:
        if role == known:
            return known
    raise ConfigError(f"invalid role {role!r}: allowed are {', '.join(ROLES)}")


def hash_token(token: str) -> str:
    """The SHA-256 (hex) under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name and role (``anonymous`` without authentication)."""

    name: str
    role: Role
    token_id: str

    def allows(self, needed: str) -> bool:
        """Whether this caller has at least the ``needed`` role."""
        return role_allows(self.role, needed)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A stored token, without the token itself."""

    id: str
    name: str
    role: Role
    created: str
    revoked: str | None = None
    source: Literal["file", "env"] = "file"


def parse_env_tokens(text: str) -> list[tuple[str, Role]]:
    """``"TOKEN:ROLE,TOKEN:ROLE"`` as pairs.

    Raises:
        ConfigError: an item without a role, an unknown role or a token shorter than 16
            characters (the message never repeats the token).
    """
    out: list[tuple[str, Role]] = []
    for index, item in enumerate(x.strip() for x in text.split(",")):
        if not item:
            continue
        token, sep, role = item.rpartition(":")
        if not sep or not token:
            raise ConfigError(
                f"PLEXICHAT_LOG_API_TOKENS item {index + 1}: use TOKEN:ROLE with ROLE one of "
                f"{', '.join(ROLES)}"
            )
        if len(token) < _MIN_ENV_TOKEN:
            raise ConfigError(
                f"PLEXICHAT_LOG_API_TOKENS item {index + 1}: the token is shorter than "
                f"{_MIN_ENV_TOKEN} characters; use `plexichat-logs token create` or a long "
                "random value"
            )
        out.append((token, check_role(role.strip())))
    return out


class TokenStore:
    """The API tokens of one log directory (file) plus bootstrap tokens (environment).

    Args:
        path: the token file (``api-tokens.json`` in the log directory); None for memory
            only.
        env_tokens: ``(token, role)`` pairs kept only hashed, never written.
    """

    def __init__(
        self, path: Path | None, env_tokens: list[tuple[str, Role]] | tuple[()] = ()
    ) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._env: dict[str, TokenInfo] = {}
        for index, (token, role) in enumerate(env_tokens):
            info = TokenInfo(
                id=f"env{index + 1}",
                name=f"env-token-{index + 1}",
                role=role,
                created=iso_utc(time.time()),
                source="env",
            )
            self._env[hash_token(token)] = info
        self._mtime: float | None = None
        self._file: dict[str, TokenInfo] = {}

    @classmethod
    def for_directory(cls, directory: Path, env_text: str | None = None) -> TokenStore:
        """The token store of a log directory, with ``env_text`` bootstrap tokens."""
        return cls(Path(directory) / TOKENS_FILE, parse_env_tokens(env_text or ""))

    # --- reading -------------------------------------------------------------------------
    def _load(self) -> dict[str, TokenInfo]:
        """The file's tokens by hash, re-read when the file changed (revocations apply
        without a restart)."""
        if self.path is None:
            return {}
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            self._file, self._mtime = {}, None
            return self._file
        if mtime != self._mtime:
            data = self._read()
            self._file = {
                item["hash"]: TokenInfo(
                    id=item["id"],
                    name=item["name"],
                    role=check_role(item["role"]),
                    created=item["created"],
                    revoked=item.get("revoked"),
                )
                for item in data.get("tokens", [])
            }
            self._mtime = mtime
        return self._file

    def _read(self) -> dict[str, Any]:
        assert self.path is not None
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {"version": 1, "tokens": []}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise ConfigError(
                f"token file {self.path} is unreadable ({exc}); restore it or delete it and "
                "create new tokens with `plexichat-logs token create`"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise ConfigError(f"token file {self.path} is not a token file; restore it")
        return data

    def has_tokens(self) -> bool:
        """Whether any token that is not revoked exists (file or environment)."""
        with self._lock:
            return bool(self._env) or any(t.revoked is None for t in self._load().values())

    def authenticate(self, token: str | None) -> Principal | None:
        """The caller a bearer token names, or None (unknown, revoked or missing)."""
        if not token:
            return None
        digest = hash_token(token)
        with self._lock:
            info = self._env.get(digest) or self._load().get(digest)
        if info is None or info.revoked is not None:
            return None
        # the dict lookup is by hash; compare once more in constant time for good measure
        if not hmac.compare_digest(digest, hash_token(token)):
            return None
        return Principal(name=info.name, role=info.role, token_id=info.id)

    def list(self) -> list[TokenInfo]:
        """Every token (revoked ones too), file tokens first, oldest first."""
        with self._lock:
            return [*self._load().values(), *self._env.values()]

    # --- writing -------------------------------------------------------------------------
    def create(self, role: str, name: str | None = None) -> tuple[str, TokenInfo]:
        """Create a token; returns it (shown once, never stored) and its record.

        Raises:
            ConfigError: an unknown role, a name in use, or no token file.
        """
        checked = check_role(role)
        if self.path is None:
            raise ConfigError("this token store has no file; tokens cannot be created")
        token = _PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        with self._lock, self._file_lock():
            data = self._read()
            token_id = "t" + secrets.token_hex(4)
            name = (name or f"{checked}-{token_id}").strip()
            if not name or len(name) > 100 or any(ch in name for ch in "\r\n\t"):
                raise ConfigError(f"invalid token name {name!r}: use 1..100 printable characters")
            if any(t.get("name") == name for t in data["tokens"]):
                raise ConfigError(f"a token named {name!r} exists: choose another --name")
            info = TokenInfo(id=token_id, name=name, role=checked, created=iso_utc(time.time()))
            data["tokens"].append(
                {
                    "id": info.id,
                    "name": info.name,
                    "role": info.role,
                    "created": info.created,
                    "revoked": None,
                    "hash": hash_token(token),
                }
            )
            self._write(data)
        return token, info

    def revoke(self, name_or_id: str) -> TokenInfo:
        """Revoke a file token by name or id (it stays listed, marked revoked).

        Raises:
            ConfigError: no such token (environment tokens are revoked by removing them
                from PLEXICHAT_LOG_API_TOKENS).
        """
        if self.path is None:
            raise ConfigError("this token store has no file; nothing to revoke")
        with self._lock, self._file_lock():
            data = self._read()
            for item in data["tokens"]:
                if name_or_id in (item.get("id"), item.get("name")):
                    if item.get("revoked") is None:
                        item["revoked"] = iso_utc(time.time())
                        self._write(data)
                    return TokenInfo(
                        id=item["id"],
                        name=item["name"],
                        role=check_role(item["role"]),
                        created=item["created"],
                        revoked=item["revoked"],
                    )
        raise ConfigError(
            f"no token named {name_or_id!r}: see `plexichat-logs token list` for names and ids"
        )

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """Hold an exclusive ``flock`` on ``<file>.lock`` around a read-modify-write, so two
        processes (the server and ``plexichat-logs token``) never undo each other's change."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, data: dict[str, Any]) -> None:
        """Replace the file atomically, readable by its owner only (under the file lock)."""
        assert self.path is not None
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:  # mkstemp: O_EXCL, mode 0600
                fh.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        self._mtime = None  # re-read at the next lookup


class RateLimiter:
    """A token bucket per caller: ``per_minute`` requests a minute, bursts up to a minute's.

    Args:
        per_minute: requests allowed per minute; 0 turns the limit off.
    """

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> float:
        """0.0 when the request may go ahead, else the seconds to wait before retrying."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 10_000:  # forget idle callers (bounded memory)
                full = [k for k, (t, _) in self._buckets.items() if t >= self.per_minute - 1]
                for k in full[:5_000]:
                    del self._buckets[k]
            return (1.0 - tokens) / rate
