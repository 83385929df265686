"""The writer's side of the chain: seals each line, writes headers and signed checkpoints.

One :class:`Sealer` per stream, owned by that stream's single writer (never shared between
threads without the writer's own serialization). The chain value, MAC key and signing key
only move forward; a checkpoint's key evolution is committed only once its line is written.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from binascii import hexlify
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .._core.clock import iso_utc
from ._format import GENESIS, Tagger, b64, canonical, control_body, evolve
from ._keys import HostKeys, public_of

__all__ = ["IntegrityOptions", "Sealer"]

HEARTBEAT_FACTOR = 10
"""An idle stream writes a heartbeat checkpoint every this many checkpoint intervals."""


@dataclass(frozen=True)
class IntegrityOptions:
    """How a writer seals its stream."""

    key_directory: Path | None = None
    checkpoint_interval: float = 60.0
    witness: Callable[[dict[str, Any]], None] | None = None


@dataclass
class _State:
    head: bytes
    epoch: int
    mac: bytes
    seed: bytes
    prev_checkpoint: str
    tagger: Tagger


class Sealer:
    """Chain state, MAC key and signing key of one stream."""

    def __init__(
        self, directory: Path, stream: str, options: IntegrityOptions, prefix: str = "plexichat"
    ) -> None:
        self.stream = stream
        self.options = options
        start = HostKeys(directory, options.key_directory).start_stream(stream, prefix)
        self.ladder_index = start.ladder_index
        self._s = _State(GENESIS, 0, start.mac_key, start.sign_seed, "", Tagger(start.mac_key))
        self._last_checkpoint = time.monotonic()
        self.unsealed = 0
        """Lines written since the last checkpoint."""
        self.checkpoints = 0

    @property
    def head(self) -> bytes:
        """The chain value after the last sealed line."""
        return self._s.head

    @head.setter
    def head(self, value: bytes) -> None:
        self._s.head = value

    def seal(self, body: bytes) -> bytes:
        """The complete line (newline included) for ``body``; advances the chain."""
        s = self._s
        h = hashlib.sha256(s.head + body).digest()
        s.head = h
        return b'%b,"tag":"%b"}\n' % (body, s.tagger(h))

    def seal_many(self, bodies: list[bytes]) -> list[bytes]:
        """:meth:`seal` for a batch, in one tight loop (the non-blocking writer's path)."""
        s = self._s
        head = s.head
        inner, outer = s.tagger.pads
        sha256 = hashlib.sha256
        icopy, ocopy = inner.copy, outer.copy
        lines: list[bytes] = []
        append = lines.append
        for body in bodies:
            head = sha256(head + body).digest()
            i = icopy()
            i.update(head)
            o = ocopy()
            o.update(i.digest())
            append(b'%b,"tag":"%b"}\n' % (body, hexlify(o.digest()[:16])))
        s.head = head
        return lines

    def snapshot(self) -> _State:
        """The full state, to restore when a control line could not be written."""
        s = self._s
        return _State(s.head, s.epoch, s.mac, s.seed, s.prev_checkpoint, s.tagger)

    def restore(self, state: _State) -> None:
        """Go back to a :meth:`snapshot` (the line after it never reached the file)."""
        self._s = state

    def header(self, file: int, first_seq: int) -> bytes:
        """The first line of a segment: where it sits in the stream and the chain."""
        s = self._s
        body = control_body(
            {
                "$integrity": "header",
                "v": 1,
                "stream": self.stream,
                "file": file,
                "first_seq": first_seq,
                "prev_head": s.head.hex(),
                "epoch": s.epoch,
                "ladder": self.ladder_index,
                "time": iso_utc(time.time()),
            }
        )
        return self.seal(body)

    def loss(self, seqs: list[list[int]], count: int, reason: str) -> bytes:
        """A line announcing records the writer had to drop (their sequence numbers)."""
        body = control_body(
            {
                "$integrity": "loss",
                "v": 1,
                "stream": self.stream,
                "seqs": seqs,
                "count": count,
                "reason": reason,
                "time": iso_utc(time.time()),
            }
        )
        return self.seal(body)

    def checkpoint(self, seq: int, file: int, reason: str) -> tuple[bytes, dict[str, Any]]:
        """A signed checkpoint over the chain so far, then the next epoch's keys.

        Returns the line and the signed fields (for a witness). Call :meth:`restore` with
        an earlier :meth:`snapshot` if the line could not be written.
        """
        s = self._s
        next_seed = secrets.token_bytes(32)
        fields: dict[str, Any] = {
            "$integrity": "checkpoint",
            "v": 1,
            "stream": self.stream,
            "file": file,
            "seq": seq,
            "head": s.head.hex(),
            "epoch": s.epoch,
            "reason": reason,
            "prev": s.prev_checkpoint,
            "next": b64(public_of(next_seed)),
            "time": iso_utc(time.time()),
        }
        fields["sig"] = b64(Ed25519PrivateKey.from_private_bytes(s.seed).sign(canonical(fields)))
        line = self.seal(control_body(fields))
        mac = evolve(s.mac, s.epoch)
        self._s = _State(
            s.head,
            s.epoch + 1,
            mac,
            next_seed,
            hashlib.sha256(canonical(fields)).hexdigest(),
            Tagger(mac),
        )
        return line, fields

    def committed(self, fields: dict[str, Any]) -> None:
        """A checkpoint line reached the file: reset the timers, tell the witness."""
        self._last_checkpoint = time.monotonic()
        self.unsealed = 0
        self.checkpoints += 1
        if self.options.witness is not None:
            self.options.witness(fields)

    def due(self, now: float | None = None) -> str | None:
        """The reason a checkpoint is due now (``interval`` or ``heartbeat``), or None."""
        elapsed = (time.monotonic() if now is None else now) - self._last_checkpoint
        interval = self.options.checkpoint_interval
        if self.unsealed and elapsed >= interval:
            return "interval"
        if elapsed >= interval * HEARTBEAT_FACTOR:
            return "heartbeat"
        return None
