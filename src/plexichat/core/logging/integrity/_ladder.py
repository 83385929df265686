"""Reading the key ladder back: which signing key and MAC key each stream started with.

The ladder is verified from the auditor's first public key: each link must be signed by the
key the previous link named, carry the previous link's hash and the next step number, and be
well formed. The first link that fails stops the walk (nothing after it can be trusted) and is
a finding. A stream may start only once; every prune is kept (per stream and file).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._format import MAX_LINE, canonical, evolve, stream_key, unb64
from ._keys import LADDER_FILE, AuditorKey
from ._report import Finding

__all__ = ["Ladder", "Prune", "StreamTrust", "read_ladder", "verify_signature"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StreamTrust:
    """What a stream's start link vouches for."""

    ladder_index: int
    public_key: bytes
    mac_key: bytes | None
    directory: str
    prefix: str
    time: str


@dataclass(frozen=True)
class Prune:
    """A signed announcement that segment ``file`` of a stream was deleted by retention,
    with the chain state the next segment starts from."""

    file: int
    seq: int
    head: bytes
    epoch: int
    public_key: bytes | None
    time: str
    ladder_index: int


@dataclass
class Ladder:
    """The verified contents of a ladder file."""

    streams: dict[str, StreamTrust] = field(default_factory=dict)
    prunes: dict[str, dict[int, Prune]] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    links: int = 0
    present: bool = False


def verify_signature(public: bytes, fields: dict[str, object]) -> bool:
    """Whether ``fields["sig"]`` is a valid Ed25519 signature of the other fields."""
    try:
        sig = unb64(fields.get("sig"), "signature")
        Ed25519PublicKey.from_public_bytes(public).verify(sig, canonical(dict(fields)))
    except (ValueError, InvalidSignature, TypeError):
        return False
    return True


def _key(value: object) -> bytes | None:
    try:
        raw = unb64(value, "key")
    except ValueError:
        return None
    return raw if len(raw) == 32 else None


def _int(value: object, low: int = 0) -> int | None:
    return value if type(value) is int and value >= low else None


def _well_formed(link: dict[str, Any]) -> str | None:
    """What is wrong with a correctly signed link's fields, or None."""
    if _key(link.get("next")) is None or not isinstance(link.get("time", ""), str):
        return "its next key or time is malformed"
    kind = link.get("kind")
    if not isinstance(link.get("stream"), str) or not link["stream"]:
        return "it names no stream"
    if kind == "stream":
        if _key(link.get("pk")) is None:
            return "its stream key is malformed"
        if not isinstance(link.get("dir", ""), str) or not isinstance(link.get("prefix", ""), str):
            return "its directory or prefix is malformed"
        return None
    if kind == "prune":
        ok = (
            _int(link.get("file"), 1) is not None
            and _int(link.get("seq")) is not None
            and _int(link.get("epoch")) is not None
            and isinstance(link.get("head"), str)
            and _HEX64.match(link["head"]) is not None
            and (link.get("pk") == "" or _key(link.get("pk")) is not None)
        )
        return None if ok else "its file, seq, chain value, epoch or key is malformed"
    return f"unknown kind {kind!r}"


def read_ladder(key_dir: Path, key: AuditorKey) -> Ladder:
    """Walk ``ladder.jsonl`` from the auditor's first public key."""
    ladder = Ladder()
    path = Path(key_dir) / LADDER_FILE
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return ladder
    ladder.present = True
    public, host_mac, prev = key.public_key, key.mac_key, ""
    with fh:
        number = 0
        while raw := fh.readline(MAX_LINE):
            number += 1
            if not raw.endswith(b"\n"):
                if len(raw) < MAX_LINE:  # a link cut by a crash: repaired at the next start
                    ladder.notes.append(f"{path} ends with an incomplete link (line {number})")
                    return ladder
                problem: str | None = "a line longer than any link"
                link: Any = None
            else:
                try:
                    link = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    link = None
                problem = None
            if problem is not None:
                pass
            elif not isinstance(link, dict):
                problem = "not a ladder link (unreadable JSON)"
            elif link.get("n") != number - 1:
                problem = f"step {link.get('n')!r} where step {number - 1} was expected"
            elif link.get("prev", "") != prev:
                problem = "does not follow the previous link (links removed or reordered)"
            elif not verify_signature(public, link):
                problem = (
                    "signature does not verify with the key the ladder expects here"
                    + (" (the auditor's first public key)" if number == 1 else "")
                    + ": re-signed with another key, or edited"
                )
            else:
                problem = _well_formed(link)
                if problem is not None:
                    problem = f"a signed link is malformed: {problem}"
            if problem is not None:
                ladder.findings.append(
                    Finding("BAD_SIGNATURE", str(path), number, None, "", f"key ladder: {problem}")
                )
                return ladder
            _record(ladder, link, number - 1, host_mac, path, number)
            public = unb64(link["next"], "next key")
            if host_mac is not None:
                host_mac = evolve(host_mac, number - 1)
            prev = hashlib.sha256(raw.rstrip(b"\n")).hexdigest()
            ladder.links += 1
    return ladder


def _record(
    ladder: Ladder,
    link: dict[str, Any],
    index: int,
    host_mac: bytes | None,
    path: Path,
    number: int,
) -> None:
    stream = str(link["stream"])
    when = str(link.get("time", ""))
    if link["kind"] == "stream":
        first = ladder.streams.get(stream)
        if first is not None:  # a second start could re-key an old stream: never accepted
            ladder.findings.append(
                Finding(
                    "BAD_SIGNATURE",
                    str(path),
                    number,
                    None,
                    stream,
                    f"key ladder: the stream is started a second time (steps "
                    f"{first.ladder_index} and {index}); only the first start is trusted",
                )
            )
            return
        mac = stream_key(host_mac, stream) if host_mac is not None else None
        ladder.streams[stream] = StreamTrust(
            index,
            unb64(link["pk"], "key"),
            mac,
            str(link.get("dir", "")),
            str(link.get("prefix", "")),
            when,
        )
        return
    prunes = ladder.prunes.setdefault(stream, {})
    file = int(link["file"])
    if file in prunes:
        return
    pk = link.get("pk")
    prunes[file] = Prune(
        file,
        int(link["seq"]),
        bytes.fromhex(str(link["head"])),
        int(link["epoch"]),
        unb64(pk, "key") if pk else None,
        when,
        index,
    )
