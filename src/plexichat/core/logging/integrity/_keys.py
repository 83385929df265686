"""Key material of a log directory: the host's evolving state, the auditor key, the ladder.

``keys/`` (mode 0700) inside the log directory holds:

- ``host.state`` (0600): the host's current ladder step ``n``, its MAC key ``K_host_n`` and
  the seed of its Ed25519 signing key. Each stream start (and each prune) signs one ladder
  link with the current key, then replaces both keys by the next ones: the old ones are gone.
- ``auditor.key`` (0600): ``K_host_0`` and the first public key. It verifies everything and
  belongs OFF the host (a key kept beside the logs proves less: whoever can rewrite the logs
  can rewrite it too).
- ``ladder.jsonl``: the signed links, each naming the next public key (a key ladder rooted in
  the auditor's public key), so anyone with the first public key can check every stream's
  signing key and no one holding only that key can forge.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .._core.clock import iso_utc
from .._core.lockfiles import close_lock_file, open_lock_file
from ._format import MAX_LINE, b64, canonical, evolve, stream_key, unb64

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "AUDITOR_FILE",
    "AuditorKey",
    "HostKeys",
    "LADDER_FILE",
    "StreamStart",
    "init_keys",
    "key_directory",
    "public_key_text",
    "public_of",
    "read_verification_key",
]

HOST_FILE = "host.state"
AUDITOR_FILE = "auditor.key"
LADDER_FILE = "ladder.jsonl"
_LOCK_FILE = ".lock"
PUBLIC_PREFIX = "ed25519:"
_announced: set[str] = set()
_announce_lock = threading.Lock()


def key_directory(log_dir: Path, configured: Path | None = None) -> Path:
    """Where a log directory's keys live: ``configured``, else ``keys/`` inside it."""
    return Path(configured) if configured is not None else Path(log_dir) / "keys"


def public_of(seed: bytes) -> bytes:
    """The raw Ed25519 public key of a 32-byte private seed."""
    return (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def public_key_text(public: bytes) -> str:
    """The printable form of a public verification key: ``ed25519:<base64>``."""
    return PUBLIC_PREFIX + b64(public)


@dataclass(frozen=True)
class AuditorKey:
    """What the verifier trusts: the first public key and, from an auditor key file, the
    first MAC key (``None`` with only a public key)."""

    public_key: bytes
    mac_key: bytes | None
    source: str


def read_verification_key(path: Path) -> AuditorKey:
    """Read an auditor key file or a public key file (``ed25519:<base64>``).

    Raises:
        ValueError: the file is missing or is neither kind of key file.
    """
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read key file {str(path)!r}: {exc.strerror or exc}") from None
    return parse_verification_key(text, str(path))


def parse_verification_key(text: str, source: str) -> AuditorKey:
    """Parse the text of an auditor key or a public key (see :func:`read_verification_key`)."""
    text = text.strip()
    if text.startswith(PUBLIC_PREFIX):
        public = unb64(text[len(PUBLIC_PREFIX) :], f"public key in {source}")
        if len(public) != 32:
            raise ValueError(f"invalid public key in {source}: expected 32 bytes")
        return AuditorKey(public, None, source)
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("kind") != "plexichat-auditor-key":
        raise ValueError(
            f"{source} is not a key file: expected an auditor key (JSON written by "
            "`plexichat-logs keys init`) or a public key line `ed25519:<base64>` (from "
            "`plexichat-logs keys export-public`)"
        )
    public = unb64(data.get("public_key"), f"public_key in {source}")
    mac = unb64(data.get("mac_key"), f"mac_key in {source}", secret=True)
    if len(public) != 32 or len(mac) != 32:
        raise ValueError(f"invalid auditor key {source}: keys must be 32 bytes")
    return AuditorKey(public, mac, source)


def _write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write a 0600 file durably (atomically by rename unless ``exclusive``)."""
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        target = path
    else:
        target = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if not exclusive:
        os.replace(target, path)


@contextlib.contextmanager
def _locked(key_dir: Path) -> Iterator[None]:
    """The key directory's lock (between processes, and between threads of this one: each
    opens the file anew), never kept by a forked child or an executed program."""
    fd = open_lock_file(key_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        close_lock_file(fd)


def init_keys(log_dir: Path, key_dir: Path | None = None, *, announce: bool = True) -> bool:
    """Create the key material of a log directory when it does not exist yet.

    Returns True when keys were created. The first time, a notice on stderr says that the
    auditor key belongs off the host (``announce=False`` keeps it quiet).
    """
    kdir = key_directory(log_dir, key_dir)
    kdir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _locked(kdir):
        if (kdir / HOST_FILE).exists():
            return False
        mac0 = secrets.token_bytes(32)
        seed0 = secrets.token_bytes(32)
        auditor = {
            "kind": "plexichat-auditor-key",
            "v": 1,
            "created": iso_utc(time.time()),
            "mac_key": b64(mac0),
            "public_key": b64(public_of(seed0)),
            "note": "Keep this file OFF the host that writes the logs; verify with "
            "`plexichat-logs verify DIR --key-file auditor.key`.",
        }
        old = kdir / AUDITOR_FILE
        if old.exists():  # a leftover without host state: keep it, never overwrite a key
            old.rename(kdir / f"auditor-{int(time.time())}.key.old")
        _write_private(kdir / AUDITOR_FILE, orjson.dumps(auditor, option=orjson.OPT_INDENT_2))
        _save_state(kdir, {"v": 1, "n": 0, "mac": b64(mac0), "seed": b64(seed0), "prev": ""})
    if announce:
        with _announce_lock:
            first = str(kdir.resolve()) not in _announced
            _announced.add(str(kdir.resolve()))
        if first:
            sys.stderr.write(
                f"plexichat-logging: created integrity keys in {kdir}. Move "
                f"{kdir / AUDITOR_FILE} OFF this host (keep a copy somewhere safe, then delete "
                "it here): a key left beside the logs proves less, because whoever can rewrite "
                "the logs can rewrite it too.\n"
            )
    return True


def _save_state(kdir: Path, state: dict[str, Any]) -> None:
    _write_private(kdir / HOST_FILE, orjson.dumps(state))


@dataclass(frozen=True)
class StreamStart:
    """What a new stream needs: its ladder step, first MAC key and first signing seed."""

    ladder_index: int
    mac_key: bytes
    sign_seed: bytes


class HostKeys:
    """The host's evolving key state in a key directory (shared by the host's processes)."""

    def __init__(self, log_dir: Path, key_dir: Path | None = None) -> None:
        self.log_dir = Path(log_dir)
        self.key_dir = key_directory(log_dir, key_dir)

    def start_stream(self, stream: str, prefix: str = "plexichat") -> StreamStart:
        """Sign a ladder link for a new stream and advance the host keys past it."""
        seed = secrets.token_bytes(32)
        n, host_mac = self._advance(
            {
                "kind": "stream",
                "stream": stream,
                "pk": b64(public_of(seed)),
                "dir": str(self.log_dir.resolve()),
                "prefix": prefix,
            }
        )
        return StreamStart(n, stream_key(host_mac, stream), seed)

    def record_prune(
        self, stream: str, file: int, seq: int, head: str, epoch: int, public_key: str
    ) -> int:
        """Sign a ladder link announcing that ``stream``'s segments up to ``file`` were
        deleted by retention: the chain continues from ``head`` after record ``seq``, in
        checkpoint epoch ``epoch`` whose signing key is ``public_key``."""
        fields = {
            "kind": "prune",
            "stream": stream,
            "file": file,
            "seq": seq,
            "head": head,
            "epoch": epoch,
            "pk": public_key,
        }
        return self._advance(fields)[0]

    def _advance(self, fields: dict[str, Any]) -> tuple[int, bytes]:
        """Sign one link with the current step's key and move to the next step.

        Crash-safe: the new state is saved (atomically) together with the link before the
        link is appended, and a link a crash left unappended is appended first next time.
        """
        init_keys(self.log_dir, self.key_dir)
        ladder = self.key_dir / LADDER_FILE
        with _locked(self.key_dir):
            n, mac, seed, prev, pending = _read_state(self.key_dir / HOST_FILE)
            if pending:
                _append_link(ladder, pending)
            next_seed = secrets.token_bytes(32)
            link: dict[str, Any] = {
                "v": 1,
                "n": n,
                **fields,
                "next": b64(public_of(next_seed)),
                "prev": prev,
                "time": iso_utc(time.time()),
            }
            link["sig"] = b64(Ed25519PrivateKey.from_private_bytes(seed).sign(canonical(link)))
            line = orjson.dumps(link)
            _save_state(
                self.key_dir,
                {
                    "v": 1,
                    "n": n + 1,
                    "mac": b64(evolve(mac, n)),
                    "seed": b64(next_seed),
                    "prev": hashlib.sha256(line).hexdigest(),
                    "pending": line.decode(),
                },
            )
            _append_link(ladder, line.decode())
        return n, mac


def _read_state(path: Path) -> tuple[int, bytes, bytes, str, str]:
    """(step, MAC key, signing seed, previous link hash, link pending append) of a state
    file; a damaged file is a ValueError that names the file, never the key material."""
    try:
        state = orjson.loads(path.read_bytes())
        n, prev, pending = state["n"], state.get("prev", ""), state.get("pending", "")
        mac = unb64(state["mac"], "host MAC key", secret=True)
        seed = unb64(state["seed"], "host signing seed", secret=True)
        valid = (
            isinstance(n, int)
            and n >= 0
            and isinstance(prev, str)
            and isinstance(pending, str)
            and len(mac) == len(seed) == 32
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"the host key state {path} is damaged: restore it from a backup, or move the key "
            "directory away to start a new ladder (verification then reports the break)"
        )
    return n, mac, seed, prev, pending


def _append_link(path: Path, line: str) -> None:
    """Append one link line whole (cutting a torn last line a crash left) unless the ladder
    already ends with it."""
    data = line.encode()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn line a crash left: cut it
            back = os.pread(fd, min(size, MAX_LINE), size - min(size, MAX_LINE))
            cut = back.rfind(b"\n")
            size = size - len(back) + cut + 1 if cut >= 0 else 0
            os.ftruncate(fd, size)
        if size:
            tail = os.pread(fd, min(size, len(data) + 2), size - min(size, len(data) + 2))
            if tail.endswith(b"\n" + data + b"\n") or tail == data + b"\n":
                return  # appended before a crash: nothing to do
        done = 0
        out = data + b"\n"
        try:
            while done < len(out):
                written = os.pwrite(fd, out[done:], size + done)
                if written <= 0:
                    raise OSError(errno.EIO, "no progress writing the key ladder")
                done += written
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)
