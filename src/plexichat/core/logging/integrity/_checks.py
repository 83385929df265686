"""How each line of a stream is checked and, when something is wrong, classified: records
that fail the fast path, fragments, control lines (headers, checkpoints, loss lines) and
dates. A mixin of the verifier's per-stream state (:class:`._verify._Stream`)."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import Any, NoReturn

from ._format import (
    CONTROL_PREFIX,
    Tagger,
    canonical,
    control_fields,
    evolve,
    seq_of,
    split_line,
    unb64,
)
from ._ladder import StreamTrust, verify_signature
from ._lookahead import (
    BACKDATE_SKEW,
    chain_to_checkpoint,
    checkpoint_ahead,
    next_key_checkpoint,
    parse_time,
    record_time,
    seq_ahead,
)
from ._report import VerifyReport

__all__ = ["_LineChecks", "_Stop"]

_RECENT = 1024
"""How many recent records are kept (to tell a duplicate from a reordering) and how far ahead
a moved record is looked for."""
_AHEAD = 1 << 20
"""How many lines the verifier reads ahead (to the next checkpoint) to classify a problem."""


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    """The stream's first finding was recorded: stop verifying it."""


class _LineChecks:
    """The line checks of one stream's verification state (see ``_Stream``)."""

    stream: str
    trust: StreamTrust
    report: VerifyReport
    witness: dict[str, Any] | None
    mac: bytes | None
    public: bytes | None
    tagger: Tagger | None
    head: bytes
    epoch: int
    last_seq: int
    next_file: int
    cp_hash: str
    sealed_seq: int
    closed: bool
    last_was_checkpoint: bool
    last_reason: str
    max_epoch_seen: int
    recent: deque[bytes]
    lineno: int
    interval_start: int
    newest: bool
    floor: datetime | None

    def fail(
        self, kind: str, detail: str, seq: int | None = None, line: int | None = -1
    ) -> NoReturn:
        """Record the stream's finding and stop (see ``_Stream.fail``)."""
        raise NotImplementedError

    def _tag_ok(self, h: bytes, tag: bytes) -> bool:
        tagger = self.tagger
        return tagger is not None and tagger(h) == tag

    def _peek(self, lines: Iterator[bytes]) -> tuple[bytes, bytes, int | None] | None:
        raw = next(lines, None)
        if raw is None or not raw.endswith(b"\n"):
            return None
        parts = split_line(raw)
        if parts is None:
            return None
        return parts[0], parts[1], seq_of(parts[0])

    def _anomaly(
        self,
        body: bytes,
        tag: bytes,
        seq: int | None,
        h: bytes,
        lines: Iterator[bytes],
        raw: bytes = b"",
    ) -> NoReturn:
        """Classify a record whose sequence number or tag is wrong (always fails)."""
        expected = self.last_seq + 1
        nxt = self._peek(lines)
        # does the next line verify as if this one were not there?
        skip_ok = (
            nxt is not None and nxt[2] == expected and self._tag_ok(self._chain(nxt[0]), nxt[1])
        )
        if seq is None:
            if skip_ok:
                self.fail("INSERTED", f"a line the writer did not write, before seq {expected}")
            self.fail("MODIFIED", "the record's sequence number is unreadable")
        if seq < expected:
            back = self.last_seq - seq + 1  # how far back seq's own line is
            if 0 < back <= len(self.recent) and self.recent[-back] == raw:
                self.fail("DUPLICATE", f"seq {seq} appears a second time", seq)
            if skip_ok:
                self.fail("INSERTED", f"a line with seq {seq} the writer did not write here", seq)
            if 0 < back <= len(self.recent):  # a moved record leaves a gap first: not a move
                self.fail(
                    "INSERTED",
                    f"two different lines claim seq {seq} (this one and the record "
                    + ("just before it" if back == 1 else f"{back - 1} records before that")
                    + "): one of them was not written here by this stream's writer (copied "
                    "from another stream, or forged)",
                    seq,
                )
            self.fail("REORDERED", f"seq {seq} comes after seq {self.last_seq}", seq)
        if seq > expected:
            if nxt is not None and nxt[2] == expected:
                if (
                    skip_ok
                    and seq == expected + 1
                    and not self._tag_ok(hashlib.sha256(self._chain(nxt[0]) + body).digest(), tag)
                ):  # it is not the real next record moved up either
                    self.fail("INSERTED", f"a forged line with seq {seq} before seq {expected}")
                self.fail("REORDERED", f"seq {seq} comes before seq {expected}", seq)
            self._moved_here(expected, seq, lines)
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}-{seq - 1}"
            self.fail("DELETED", f"{missing} missing before seq {seq}", expected)
        # right sequence number, wrong tag: edited, or a forged line pushed in
        if skip_ok:
            self.fail("INSERTED", f"a forged line with seq {seq} precedes the real one", seq)
        self._checkpoint_deleted(nxt, lines)
        self.fail("MODIFIED", f"the bytes of seq {seq} changed (its tag does not verify)", seq)

    def _moved_here(self, expected: int, seq: int, lines: Iterator[bytes]) -> None:
        """Seq ``seq`` where ``expected`` was due: if ``expected`` comes a little later (and,
        with the auditor key, verifies right here), the records were moved, not deleted."""
        found = seq_ahead(lines, expected, _RECENT)
        if found is None:
            return
        offset, body, tag = found
        if self.tagger is not None and not self._tag_ok(self._chain(body), tag):
            return  # a line claiming seq ``expected`` that the writer did not write here
        self.fail(
            "REORDERED",
            f"seq {expected} was moved {offset + 1} lines down (line {self.lineno + offset + 1}); "
            f"seq {seq} stands in its place",
            expected,
        )

    def _checkpoint_deleted(
        self, nxt: tuple[bytes, bytes, int | None] | None, lines: Iterator[bytes]
    ) -> None:
        """Auditor key, a record whose tag fails: if the next checkpoint is the writer's
        checkpoint of the *next* epoch, the checkpoint of this epoch was deleted."""
        if self.mac is None:
            return
        offset = 1
        found: tuple[dict[str, Any] | None, bytes, bytes] | None = None
        if nxt is not None and nxt[0].startswith(CONTROL_PREFIX):
            found = control_fields(nxt[0]), nxt[0], nxt[1]
        elif nxt is not None:
            ahead = checkpoint_ahead(lines, _AHEAD)
            if ahead is not None:
                offset, found = 1 + ahead[0], (ahead[1], ahead[2], ahead[3])
        fields = found[0] if found is not None else None
        if found is None or fields is None:
            return
        if next_key_checkpoint(self.mac, self.epoch, fields, found[1], found[2]):
            self.fail(
                "DELETED",
                f"a checkpoint before this one is missing: the checkpoint {offset} line(s) "
                f"down (epoch {self.epoch + 1}) verifies with the next epoch's key, so the "
                f"checkpoint of epoch {self.epoch} after seq {self.last_seq} was removed",
                self.last_seq + 1,
            )

    def _chain(self, body: bytes) -> bytes:
        return hashlib.sha256(self.head + body).digest()

    def _untagged(self, raw: bytes, lines: Iterator[bytes]) -> NoReturn:
        text = raw.rstrip(b"\n")
        if not text.endswith(b"}"):
            self._fragment(lines)
        self.fail("INSERTED", "a line without an integrity tag (not written by the stream)")

    def _continues(self, body: bytes, tag: bytes) -> bool:
        """Whether a line continues the chain from the current state: the next record (and,
        with the auditor key, its tag verifies) or a checkpoint over the current chain."""
        if body.startswith(CONTROL_PREFIX):
            if self.mac is not None:
                return self._tag_ok(self._chain(body), tag)
            fields = control_fields(body)
            return fields is not None and fields.get("head") == self.head.hex()
        if seq_of(body) != self.last_seq + 1:
            return False
        return self.mac is None or self._tag_ok(self._chain(body), tag)

    def _fragment(self, lines: Iterator[bytes]) -> NoReturn:
        """A fragment of a line ending in a newline: a failed write only if the chain goes
        on right after it (or it is the end of the newest file); otherwise tampering."""
        expected = self.last_seq + 1
        raw = next(lines, None)
        if raw is None:
            if self.newest:
                self.fail("TORN", "a fragment of a line at the end of the stream (a crash)")
            self.fail(
                "TRUNCATED",
                f"the segment ends with a fragment of a line after seq {self.last_seq}: its "
                "end was cut off or replaced",
                expected,
            )
        parts = split_line(raw) if raw.endswith(b"\n") else None
        if parts is not None and self._continues(*parts):
            self.fail(
                "TORN",
                "a fragment of a line (a write that failed halfway); the next line continues "
                "the chain",
            )
        seq = seq_of(parts[0]) if parts is not None else None
        if seq is not None and seq > expected and not raw.startswith(CONTROL_PREFIX):
            missing = f"seq {expected}" + (f"-{seq - 1}" if seq > expected + 1 else "")
            self.fail(
                "DELETED",
                f"{missing} missing: a fragment of a line stands in its place (before seq {seq})",
                expected,
            )
        self.fail(
            "MODIFIED",
            f"a fragment of a line where seq {expected} was due, and the next line does not "
            "continue the chain (a line cut short or replaced)",
            expected,
        )

    def _control(self, raw: bytes, lines: Iterator[bytes]) -> None:
        parts = split_line(raw)
        fields = control_fields(parts[0]) if parts is not None else None
        if parts is None or fields is None:
            if self.lineno == 1:
                self.fail("MODIFIED", "the segment header is missing or damaged")
            self._untagged(raw, lines)
        body, tag = parts
        if fields.get("$integrity") == "header":  # where it sits first: a gap is not an edit
            self._header(fields)
        elif fields.get("$integrity") == "checkpoint":
            covered = fields.get("seq")
            if isinstance(covered, int) and covered > self.last_seq:
                first = self.last_seq + 1
                missing = f"seq {first}" + (f"-{covered}" if covered > first else "")
                self.fail("DELETED", f"{missing} missing before the checkpoint", first)
        h = self._chain(body)
        if self.mac is not None and not self._tag_ok(h, tag):
            if self.lineno == 1 and fields.get("$integrity") != "header":
                self.fail("MODIFIED", "the segment does not start with its header")
            self._bad_control_tag(fields, body, tag, lines)
        kind = fields.get("$integrity")
        if self.lineno == 1 and kind != "header":
            self.fail("MODIFIED", "the segment does not start with its header")
        if kind == "header":
            pass  # checked above
        elif kind == "checkpoint":
            self._checkpoint(fields)
        elif kind == "loss":
            self._loss(fields, h, lines)
        else:
            self.fail("INSERTED", f"an unknown control line {kind!r}")
        self.head = h

    def _bad_control_tag(
        self, fields: dict[str, Any], body: bytes, tag: bytes, lines: Iterator[bytes]
    ) -> NoReturn:
        """Auditor key, a control line whose tag fails: the next epoch's checkpoint (the one
        before it deleted), a forged line (the next line verifies without it), or an edit."""
        kind = fields.get("$integrity", "control")
        if (
            kind == "checkpoint"
            and self.mac is not None
            and next_key_checkpoint(self.mac, self.epoch, fields, body, tag)
        ):
            self.fail(
                "DELETED",
                f"a checkpoint before this one is missing: this checkpoint (epoch "
                f"{self.epoch + 1}) verifies with the next epoch's key, so the checkpoint of "
                f"epoch {self.epoch} after seq {self.last_seq} was removed",
                self.last_seq + 1,
            )
        if self.lineno > 1:
            raw = next(lines, None)
            parts = split_line(raw) if raw is not None and raw.endswith(b"\n") else None
            if parts is not None and self._continues(*parts):
                self.fail(
                    "INSERTED",
                    f"a forged {kind} line the writer did not write (the next line verifies "
                    "without it)",
                )
        self.fail("MODIFIED", f"the {kind} line changed")

    def _loss(self, fields: dict[str, Any], h: bytes, lines: Iterator[bytes]) -> NoReturn:
        """An announced loss. Its tag (auditor key) proves the writer wrote it; with the public
        key only, the next checkpoint's signed chain value has to vouch for it."""
        claim = (
            f"{fields.get('count')} dropped records (seq {fields.get('seqs')}): "
            f"{fields.get('reason')}"
        )
        if self.mac is not None:
            self.fail("DELETED", f"the writer announced {claim}", self.last_seq + 1)
        found = chain_to_checkpoint(lines, h, _AHEAD)
        if found is None:
            self.fail(
                "DELETED",
                f"a loss line claims {claim}; unverified: no checkpoint follows it in this "
                "file to vouch for it, and its tag can be checked only with the auditor key",
                self.last_seq + 1,
            )
        offset, cp, before = found
        if (
            cp.get("head") == before.hex()
            and cp.get("epoch") == self.epoch
            and self.public is not None
            and verify_signature(self.public, cp)
        ):
            self.fail(
                "DELETED",
                f"the writer announced {claim} (vouched for by the signed checkpoint "
                f"{offset} line(s) down)",
                self.last_seq + 1,
            )
        self.fail(
            "MODIFIED",
            f"a loss line claims {claim}, but the checkpoint {offset} line(s) down does not "
            "vouch for the lines before it: the loss line or a line after it is forged or "
            "changed (verify with the auditor key to name it)",
            self.last_seq + 1,
        )

    def _header(self, fields: dict[str, Any]) -> None:
        if self.lineno != 1:
            self.fail("INSERTED", "a segment header in the middle of a segment")
        if fields.get("stream") != self.stream:
            self.fail("INSERTED", f"a segment of stream {fields.get('stream')!r} in this stream")
        file = fields.get("file")
        if not isinstance(file, int):
            self.fail("MODIFIED", "the segment header has no file number")
        if file > self.next_file:
            what = f"file {self.next_file}" + (f"-{file - 1}" if file - 1 > self.next_file else "")
            self.fail(
                "GAP",
                f"segment {what} of the stream is missing (deleted without a signed prune "
                "checkpoint)",
                self.last_seq + 1,
                line=None,
            )
        if file < self.next_file:
            self.fail("DUPLICATE", f"segment file {file} appears twice", line=1)
        first = fields.get("first_seq")
        if first != self.last_seq + 1:
            self.fail("DELETED", f"the segment starts at seq {first}, after {self.last_seq}")
        if fields.get("prev_head") != self.head.hex():
            self.fail("MODIFIED", "the segment does not continue the chain of the previous one")
        if fields.get("epoch") != self.epoch:
            self.fail(
                "MODIFIED", f"the header says epoch {fields.get('epoch')!r}, not {self.epoch}"
            )
        if fields.get("ladder") != self.trust.ladder_index:
            self.fail(
                "BAD_SIGNATURE",
                f"the header names ladder step {fields.get('ladder')!r}, but the stream started "
                f"at step {self.trust.ladder_index}",
            )
        self._dated(fields.get("time"), "segment header")
        self.next_file = file + 1
        self.last_was_checkpoint = False

    def _checkpoint(self, fields: dict[str, Any]) -> None:
        seq = fields.get("seq")
        if self.public is None or not verify_signature(self.public, fields):
            if fields.get("epoch") == self.epoch + 1 and fields.get("prev") != self.cp_hash:
                self.fail(
                    "DELETED",
                    f"a checkpoint before this one is missing: this one is epoch "
                    f"{self.epoch + 1} where epoch {self.epoch} was due, so it is signed by the "
                    "key the missing checkpoint named (which cannot be checked without it; if "
                    "no checkpoint was deleted, this one is forged)",
                    self.last_seq + 1,
                )
            self.fail(
                "BAD_SIGNATURE",
                f"checkpoint (epoch {fields.get('epoch')}) is not signed by the stream's key "
                "for this epoch: forged, re-signed or edited",
                seq if isinstance(seq, int) else None,
            )
        if fields.get("epoch") != self.epoch:
            self.fail("REORDERED", f"checkpoint epoch {fields.get('epoch')}, expected {self.epoch}")
        if fields.get("head") != self.head.hex():
            self.fail(
                "MODIFIED",
                f"a line between seq {self.interval_start} and {self.last_seq} changed (the "
                "checkpoint's chain value does not match; verify with the auditor key to "
                "name the record)",
                self.interval_start,
            )
        if seq != self.last_seq:
            self.fail("DELETED", f"the checkpoint covers seq {seq}, the file has {self.last_seq}")
        if self.cp_hash not in ("*", fields.get("prev")):
            self.fail("DELETED", "a checkpoint before this one is missing")
        self._dated(fields.get("time"), "checkpoint")
        self._witness_check(fields)
        try:
            self.public = unb64(fields.get("next"), "next checkpoint key")
        except ValueError:
            self.fail("BAD_SIGNATURE", "the checkpoint's next key is malformed")
        if self.mac is not None:
            self.mac = evolve(self.mac, self.epoch)
            self.tagger = Tagger(self.mac)
        self.epoch += 1
        self.cp_hash = hashlib.sha256(canonical(fields)).hexdigest()
        self.sealed_seq = self.last_seq
        self.interval_start = self.last_seq + 1
        self.max_epoch_seen = self.epoch - 1
        self.report.checkpoints += 1
        self.last_was_checkpoint = True
        self.last_reason = str(fields.get("reason", ""))
        if fields.get("reason") == "close":
            self.closed = True

    def _dated(self, when: object, what: str, seq: int | None = None) -> None:
        """A line dated earlier than its stream's start (less the skew allowance): someone
        holding the host key started a stream and wrote it as if it were older."""
        moment = parse_time(when) if isinstance(when, str) else None
        if moment is None or self.floor is None or moment >= self.floor:
            return
        minutes = int(BACKDATE_SKEW.total_seconds() // 60)
        self.fail(
            "BACKDATED",
            f"the {what} is dated {when}, more than {minutes} minutes before its stream "
            f"started ({self.trust.time}, ladder step {self.trust.ladder_index}): written "
            "later with an earlier date",
            seq,
        )

    def _record_date(self, body: bytes, seq: int) -> None:
        """The slow check of a record whose timestamp sorted below the stream's start."""
        moment = record_time(body)
        if moment is not None and self.floor is not None and moment < self.floor:
            self._dated(moment.isoformat().replace("+00:00", "Z"), f"record seq {seq}", seq)

    def _witness_check(self, fields: dict[str, Any]) -> None:
        witness = self.witness
        if (
            witness is not None
            and witness.get("epoch") == fields.get("epoch")
            and (witness.get("sig"), witness.get("head")) != (fields.get("sig"), fields.get("head"))
        ):
            self.fail(
                "MODIFIED",
                f"checkpoint epoch {fields.get('epoch')} differs from the copy the witness holds",
                fields.get("seq") if isinstance(fields.get("seq"), int) else None,
            )
