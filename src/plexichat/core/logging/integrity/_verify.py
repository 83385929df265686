"""The verifier: streams every segment of every stream and classifies the first problem.

Memory stays constant: per stream, only the chain state, the current keys and a small window
of recent tags (to tell a duplicate from a reordering) are kept. Files are ordered by their
header's file number, never by name or mtime; compressed segments are read decompressed.
"""

from __future__ import annotations

import binascii
import hashlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import orjson

from ..sinks.segments import Segment, list_segments, open_segment, segment_in_use, stream_alive
from ._format import (
    CONTROL_PREFIX,
    GENESIS,
    TAG_KEY,
    TAG_LEN,
    Tagger,
    canonical,
    evolve,
    split_line,
    unb64,
)
from ._ladder import Ladder, Prune, StreamTrust, verify_signature
from ._report import Finding, VerifyReport

__all__ = ["verify_stream"]

_RECENT = 1024
_TAG_AT = len(TAG_KEY)
_TAIL = TAG_LEN + 1


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    """The stream's first finding was recorded: stop verifying it."""


def _header_of(seg: Segment) -> dict[str, Any] | None:
    try:
        with open_segment(seg.path) as fh:
            first = fh.readline()
    except (OSError, EOFError):
        return None
    if not first.startswith(CONTROL_PREFIX):
        return None
    parts = split_line(first)
    try:
        value = orjson.loads(parts[0] + b"}") if parts else None
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and value.get("$integrity") == "header" else None


def _compressed(seg: Segment) -> Segment | None:
    for suffix in (".gz", ".zst"):
        path = seg.path.with_name(seg.path.name + suffix)
        if path.exists():
            return Segment.parse(path)
    return None


def _seq_of(body: bytes) -> int | None:
    cut = body.rfind(b',"seq":')
    if cut < 0:
        return None
    try:
        return int(body[cut + 7 :])
    except ValueError:
        return None


class _Stream:
    """Verification state of one stream."""

    def __init__(
        self,
        stream: str,
        trust: StreamTrust,
        prune: Prune | None,
        report: VerifyReport,
        witness: dict[str, Any] | None,
    ) -> None:
        self.stream = stream
        self.report = report
        self.witness = witness
        self.mac = trust.mac_key
        self.public = trust.public_key
        self.head = GENESIS
        self.epoch = 0
        self.last_seq = 0
        self.next_file = 1
        self.cp_hash = ""
        if prune is not None:  # retention deleted the start: continue from the signed cut
            self.head, self.last_seq, self.next_file = prune.head, prune.seq, prune.file + 1
            self.epoch, self.public = prune.epoch, prune.public_key
            if self.mac is not None:
                for e in range(prune.epoch):
                    self.mac = evolve(self.mac, e)
            self.cp_hash = "*"  # the previous checkpoint went with the pruned files
        self.tagger = Tagger(self.mac) if self.mac is not None else None
        self.sealed_seq = self.last_seq
        self.closed = False
        self.last_was_checkpoint = False
        self.max_epoch_seen = prune.epoch - 1 if prune is not None else -1
        self.pruned_to = prune.file if prune is not None else 0
        self.recent: deque[bytes] = deque(maxlen=_RECENT)
        """The tags of the last records, newest last (``recent[-1]`` is ``last_seq``'s)."""
        self.file = ""
        self.lineno = 0
        self.interval_start = self.last_seq + 1

    # --- findings --------------------------------------------------------------------------

    def fail(
        self, kind: str, detail: str, seq: int | None = None, line: int | None = -1
    ) -> NoReturn:
        self.report.findings.append(
            Finding(kind, self.file, self.lineno if line == -1 else line, seq, self.stream, detail)
        )
        raise _Stop

    # --- driving ---------------------------------------------------------------------------

    def run(self, segs: list[Segment]) -> None:
        numbered = [((_header_of(s) or {}).get("file", s.index), s) for s in segs]
        ordered = [
            s for n, s in sorted(numbered, key=lambda p: (p[0], p[1].index)) if n > self.pruned_to
        ]
        if not ordered:
            return
        try:
            for i, seg in enumerate(ordered):
                self.report.files += 1
                self.file = str(seg.path)
                self._file(seg, last=i == len(ordered) - 1)
            self._end(ordered[-1])
        except _Stop:
            return

    def _file(self, seg: Segment, *, last: bool) -> None:
        self.lineno = 0
        self.last_was_checkpoint = False
        try:
            fh = open_segment(seg.path)
        except FileNotFoundError:  # compressed meanwhile: read the compressed file
            alt = _compressed(seg)
            if alt is None:
                self.fail("GAP", "the segment disappeared while being verified", line=None)
            seg = alt
            fh = open_segment(seg.path)
        except OSError as exc:
            self.fail("GAP", f"cannot read the segment: {exc}", line=None)
        with fh:
            lines: Iterator[bytes] = iter(fh)
            try:
                self._lines(lines, seg, last=last)
            except (OSError, EOFError) as exc:
                self.fail("TRUNCATED", f"the compressed segment is damaged or cut: {exc}")
        if not last and not self.last_was_checkpoint:
            self.fail(
                "TRUNCATED",
                f"the segment ends after seq {self.last_seq} without its closing checkpoint: "
                "its end was cut off",
                seq=self.last_seq,
            )

    def _lines(self, lines: Iterator[bytes], seg: Segment, *, last: bool) -> None:
        """The hot loop: records are checked with local state (the HMAC inlined from its
        precomputed pads); anything else (control lines, anomalies, the end of the file)
        takes the slow path with the state synced back."""
        sha256 = hashlib.sha256
        hexlify = binascii.hexlify
        control, tag_key, tail, end = CONTROL_PREFIX, TAG_KEY, _TAIL, b'"}\n'
        icopy, ocopy = self._pad_copiers()
        remember = self.recent.append
        head, last_seq, lineno, records = self.head, self.last_seq, self.lineno, 0
        tail_is_record = False
        try:
            for raw in lines:
                lineno += 1
                if lineno == 1 or raw[-1] != 10 or raw.startswith(control):
                    self.head, self.last_seq, self.lineno = head, last_seq, lineno
                    if raw[-1] != 10:
                        self._partial(raw, seg, last=last)
                        return
                    self._control(raw, lines)
                    head, last_seq = self.head, self.last_seq
                    icopy, ocopy = self._pad_copiers()
                    tail_is_record = False
                    continue
                cut = len(raw) - tail
                if cut <= 0 or not raw.startswith(tag_key, cut) or raw[-3:] != end:
                    self.head, self.last_seq, self.lineno = head, last_seq, lineno
                    self._untagged(raw)
                body = raw[:cut]
                h = sha256(head + body).digest()
                tag = raw[-35:-3]
                last_seq += 1
                try:
                    good = int(body[body.rfind(b":") + 1 :]) == last_seq
                except ValueError:
                    good = False
                if icopy is not None and good:
                    inner = icopy()
                    inner.update(h)
                    outer = ocopy()
                    outer.update(inner.digest())
                    good = hexlify(outer.digest()[:16]) == tag
                if not good:
                    last_seq -= 1
                    self.head, self.last_seq, self.lineno = head, last_seq, lineno
                    self._anomaly(body, tag, _seq_of(body), h, lines)
                head = h
                remember(tag)
                records += 1
                tail_is_record = True
        finally:
            self.head, self.last_seq, self.lineno = head, last_seq, lineno
            self.report.records += records
        if tail_is_record:
            self.last_was_checkpoint = False

    def _pad_copiers(self) -> tuple[Any, Any]:
        """The ``copy`` methods of the current MAC key's pad states (None without a key)."""
        if self.tagger is None:
            return None, None
        inner, outer = self.tagger.pads
        return inner.copy, outer.copy

    # --- records ---------------------------------------------------------------------------

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
        return parts[0], parts[1], _seq_of(parts[0])

    def _anomaly(
        self, body: bytes, tag: bytes, seq: int | None, h: bytes, lines: Iterator[bytes]
    ) -> None:
        expected = self.last_seq + 1
        if seq is None:
            self.fail("MODIFIED", "the record's sequence number is unreadable")
        if seq < expected:
            back = self.last_seq - seq + 1  # how far back seq's own tag is
            if 0 < back <= len(self.recent) and self.recent[-back] == tag:
                self.fail("DUPLICATE", f"seq {seq} appears a second time", seq)
            self.fail("REORDERED", f"seq {seq} comes after seq {self.last_seq}", seq)
        nxt = self._peek(lines)
        if seq > expected:
            if nxt is not None and nxt[2] == expected:
                self.fail("REORDERED", f"seq {seq} comes before seq {expected}", seq)
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}-{seq - 1}"
            self.fail("DELETED", f"{missing} missing before seq {seq}", expected)
        # right sequence number, wrong tag: edited, or a forged line pushed in
        if nxt is not None and nxt[2] == seq and self._tag_ok(self._chain(nxt[0]), nxt[1]):
            self.fail("INSERTED", f"a forged line with seq {seq} precedes the real one", seq)
        self.fail("MODIFIED", f"the bytes of seq {seq} changed (its tag does not verify)", seq)

    def _chain(self, body: bytes) -> bytes:
        return hashlib.sha256(self.head + body).digest()

    def _untagged(self, raw: bytes) -> NoReturn:
        text = raw.rstrip(b"\n")
        if not text.endswith(b"}"):
            self.fail("TORN", "a fragment of a line (a write that failed halfway)")
        self.fail("INSERTED", "a line without an integrity tag (not written by the stream)")

    def _partial(self, raw: bytes, seg: Segment, *, last: bool) -> None:
        if last and segment_in_use(seg.path):
            return  # a line being written right now
        self.fail(
            "TORN",
            f"the last line is incomplete ({len(raw)} bytes without a newline): the writer "
            "stopped mid-write (a crash or kill), not tampering",
            seq=self.last_seq + 1,
        )

    # --- control lines ---------------------------------------------------------------------

    def _control(self, raw: bytes, lines: Iterator[bytes]) -> None:
        parts = split_line(raw)
        fields: Any = None
        if parts is not None:
            try:
                fields = orjson.loads(parts[0] + b"}")
            except orjson.JSONDecodeError:
                fields = None
        if parts is None or not isinstance(fields, dict):
            if self.lineno == 1:
                self.fail("MODIFIED", "the segment header is missing or damaged")
            self._untagged(raw)
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
            self.fail("MODIFIED", f"the {fields.get('$integrity', 'control')} line changed")
        kind = fields.get("$integrity")
        if self.lineno == 1 and kind != "header":
            self.fail("MODIFIED", "the segment does not start with its header")
        if kind == "header":
            pass  # checked above
        elif kind == "checkpoint":
            self._checkpoint(fields)
        elif kind == "loss":
            self.fail(
                "DELETED",
                f"the writer announced {fields.get('count')} dropped records (seq "
                f"{fields.get('seqs')}): {fields.get('reason')}",
                self.last_seq + 1,
            )
        else:
            self.fail("INSERTED", f"an unknown control line {kind!r}")
        self.head = h

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
        self.next_file = file + 1
        self.last_was_checkpoint = False

    def _checkpoint(self, fields: dict[str, Any]) -> None:
        seq = fields.get("seq")
        if not verify_signature(self.public, fields):
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
        self._witness_check(fields)
        self.public = unb64(fields.get("next"), "next checkpoint key")
        if self.mac is not None:
            self.mac = evolve(self.mac, self.epoch)
            self.tagger = Tagger(self.mac)
        self.epoch += 1
        self.cp_hash = hashlib.sha256(canonical(fields)).hexdigest()
        self.sealed_seq = self.last_seq
        self.interval_start = self.last_seq + 1
        self.max_epoch_seen = int(fields.get("epoch", -1))
        self.report.checkpoints += 1
        self.last_was_checkpoint = True
        if fields.get("reason") == "close":
            self.closed = True

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

    # --- the end of the stream -------------------------------------------------------------

    def _end(self, last: Segment) -> None:
        witness = self.witness
        if witness is not None and int(witness.get("epoch", -1)) > self.max_epoch_seen:
            self.fail(
                "TRUNCATED",
                f"the witness holds checkpoint epoch {witness.get('epoch')} (seq "
                f"{witness.get('seq')}) that the directory lacks: the stream was cut or the "
                "directory replaced by an older copy",
                witness.get("seq") if isinstance(witness.get("seq"), int) else None,
                line=None,
            )
        if self.closed:
            return
        if stream_alive(self.stream) and segment_in_use(last.path):
            self.report.live_streams += 1
            return
        unsealed = self.last_seq - self.sealed_seq
        self.fail(
            "UNSEALED",
            f"the stream ended without its closing checkpoint (the process was killed or "
            f"crashed, or the end was cut off); {unsealed} record(s) after the last "
            "checkpoint" + (" verified by their tags" if self.mac is not None and unsealed else ""),
            self.sealed_seq + 1 if unsealed else None,
            line=None,
        )


def verify_stream(
    stream: str,
    segs: list[Segment],
    ladder: Ladder,
    report: VerifyReport,
    witness: dict[str, Any] | None,
) -> None:
    """Verify one stream's segments, appending at most one finding to ``report``."""
    trust = ladder.streams.get(stream)
    if trust is None:
        first = segs[0]
        header = _header_of(first)
        report.files += len(segs)
        if header is None:
            report.findings.append(
                Finding(
                    "UNSEALED",
                    str(first.path),
                    None,
                    None,
                    stream,
                    "not sealed: written with integrity off (no segment header)",
                )
            )
        else:
            report.findings.append(
                Finding(
                    "BAD_SIGNATURE",
                    str(first.path),
                    1,
                    None,
                    stream,
                    "the stream's start is not in the verified key ladder: its keys cannot be "
                    "trusted (ladder cut or replaced, or a foreign stream)",
                )
            )
        return
    _Stream(stream, trust, ladder.prunes.get(stream), report, witness).run(segs)


def streams_of(directory: Path, prefix: str | None) -> dict[str, list[Segment]]:
    """The structured segment files of a directory, by stream."""
    return {
        stream: [s for s in segs if s.structured]
        for stream, segs in list_segments(Path(directory), prefix).items()
        if any(s.structured for s in segs)
    }
