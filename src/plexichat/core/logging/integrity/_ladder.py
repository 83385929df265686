"""Reading the key ladder back: which signing key and MAC key each stream started with.

The ladder is verified from the auditor's first public key: each link must be signed by the
key the previous link named, carry the previous link's hash and the next step number. The
first link that fails stops the walk (nothing after it can be trusted) and is a finding.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ._format import canonical, evolve, stream_key, unb64
from ._keys import LADDER_FILE, AuditorKey
from ._report import Finding

__all__ = ["Ladder", "Prune", "StreamTrust", "read_ladder", "verify_signature"]


@dataclass(frozen=True)
class StreamTrust:
    """What a stream's start link vouches for."""

    ladder_index: int
    public_key: bytes
    mac_key: bytes | None


@dataclass(frozen=True)
class Prune:
    """A signed announcement that a stream's segments up to ``file`` were deleted."""

    file: int
    seq: int
    head: bytes
    epoch: int
    public_key: bytes
    time: str


@dataclass
class Ladder:
    """The verified contents of a ladder file."""

    streams: dict[str, StreamTrust] = field(default_factory=dict)
    prunes: dict[str, Prune] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    links: int = 0
    present: bool = False


def verify_signature(public: bytes, fields: dict[str, object]) -> bool:
    """Whether ``fields["sig"]`` is a valid Ed25519 signature of the other fields."""
    try:
        sig = unb64(fields.get("sig"), "signature")
        Ed25519PublicKey.from_public_bytes(public).verify(sig, canonical(dict(fields)))
    except (ValueError, InvalidSignature):
        return False
    return True


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
        for number, raw in enumerate(fh, 1):
            problem = None
            try:
                link = orjson.loads(raw)
            except orjson.JSONDecodeError:
                link = None
            if not isinstance(link, dict):
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
            if problem is not None or not isinstance(link, dict):
                ladder.findings.append(
                    Finding("BAD_SIGNATURE", str(path), number, None, "", f"key ladder: {problem}")
                )
                return ladder
            kind = link.get("kind")
            stream = str(link.get("stream", ""))
            index = number - 1
            if kind == "stream":
                mac = stream_key(host_mac, stream) if host_mac is not None else None
                ladder.streams[stream] = StreamTrust(index, unb64(link["pk"], "key"), mac)
            elif kind == "prune":
                ladder.prunes[stream] = Prune(
                    int(link["file"]),
                    int(link["seq"]),
                    bytes.fromhex(str(link["head"])),
                    int(link["epoch"]),
                    unb64(link["pk"], "key"),
                    str(link.get("time", "")),
                )
            public = unb64(link.get("next"), "next key")
            if host_mac is not None:
                host_mac = evolve(host_mac, index)
            prev = hashlib.sha256(raw.rstrip(b"\n")).hexdigest()
            ladder.links += 1
    return ladder
