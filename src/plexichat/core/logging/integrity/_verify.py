"""The verifier: streams every segment of every stream and classifies the first problem.

Memory stays constant: per stream, only the chain state, the current keys and a small window
of recent tags (to tell a duplicate from a reordering) are kept. Files are ordered by their
header's file number, never by name or mtime; compressed segments are read decompressed.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from ..sinks.segments import (
    Segment,
    compressed_successor,
    open_segment,
    segment_in_use,
    stream_alive,
)
from ._format import (
    CONTROL_PREFIX,
    GENESIS,
    MAX_LINE,
    TAG_KEY,
    TAG_LEN,
    Tagger,
    canonical,
    control_fields,
    evolve,
    seq_of,
    split_line,
    unb64,
)
from ._ladder import Ladder, Prune, StreamTrust, verify_signature
from ._report import Finding, VerifyReport
from ._walk import header_of, stream_files

__all__ = ["verify_stream"]

_RECENT = 1024
_DIRECT_READ = 256 * 1024 * 1024
"""Plain segments up to this size are read line by line without a length limit (a line
cannot be longer than its file); larger or compressed ones with a bounded readline."""
_ROTATION_GRACE = 0.05
"""How long to wait for a live writer's next segment after a rotation."""
_RELISTS = 20
_CHASE_MIN = 16
"""A live stream's files created after the first listing are verified up to as many as were
listed (at least this many): a writer faster than the verifier is never chased for ever."""
"""How often a stream that rotated while being verified is listed again."""
_TAG_AT = len(TAG_KEY)
_TAIL = TAG_LEN + 1


class _Stop(Exception):  # noqa: N818 - control flow, not an error
    """The stream's first finding was recorded: stop verifying it."""


def _size(seg: Segment) -> int:
    try:
        return seg.path.stat().st_size
    except OSError:
        return _DIRECT_READ + 1


class _Stream:
    """Verification state of one stream."""

    def __init__(
        self,
        stream: str,
        trust: StreamTrust,
        prunes: dict[int, Prune],
        report: VerifyReport,
        witness: dict[str, Any] | None,
    ) -> None:
        self.stream = stream
        self.trust = trust
        self.prunes = prunes
        self.report = report
        self.witness = witness
        self.mac = trust.mac_key
        self.public: bytes | None = trust.public_key
        self.head = GENESIS
        self.epoch = 0
        self.last_seq = 0
        self.next_file = 1
        self.cp_hash = ""
        self.tagger = Tagger(self.mac) if self.mac is not None else None
        self.sealed_seq = 0
        self.closed = False
        self.last_was_checkpoint = False
        self.last_reason = ""
        self.max_epoch_seen = -1
        self.recent: deque[bytes] = deque(maxlen=_RECENT)
        """The last record lines, newest last (``recent[-1]`` is ``last_seq``'s)."""
        self.file = ""
        self.lineno = 0
        self.interval_start = 1
        self.still_rotating = False
        self.relist: Callable[[], list[tuple[int, Segment]]] = list

    # --- findings --------------------------------------------------------------------------

    def fail(
        self, kind: str, detail: str, seq: int | None = None, line: int | None = -1
    ) -> NoReturn:
        self.report.findings.append(
            Finding(kind, self.file, self.lineno if line == -1 else line, seq, self.stream, detail)
        )
        raise _Stop

    # --- driving ---------------------------------------------------------------------------

    def run(
        self,
        files: list[tuple[int, Segment]],
        relist: Callable[[], list[tuple[int, Segment]]],
    ) -> None:
        """Verify the files in order; a stream still rotating is followed to its newest file.

        A directory listing is not atomic: a live writer's newest files can show up in it
        while one created a moment earlier does not. A live stream is listed again before
        a missing file counts as a gap.
        """
        last: Segment | None = None
        self.relist = relist
        queue, i, rounds = list(files), 0, 0
        listed = max((number for number, _ in files), default=0)
        chase = max(_CHASE_MIN, len(files))  # files written meanwhile verified at most
        try:
            while True:
                while i < len(queue):
                    number, seg = queue[i]
                    i += 1
                    if self.closed:
                        self.file = str(seg.path)
                        self.fail("INSERTED", "a segment after the stream's closing checkpoint")
                    if number < self.next_file:
                        continue  # already verified (listed again)
                    if number > self.next_file and stream_alive(self.stream):
                        if rounds > _RELISTS:  # a writer outrunning us: verify it later
                            self.still_rotating = True
                            break
                        fresh = [f for f in relist() if f[0] >= self.next_file]
                        if fresh and fresh[0][0] < number:
                            queue, i, rounds = fresh, 0, rounds + 1  # the listing missed it
                            continue
                    if number > listed and stream_alive(self.stream):
                        chase -= 1
                        if chase < 0:  # the writer makes files faster than they are verified
                            self.still_rotating = True
                            break
                    if number > self.next_file:
                        self._resync(number, seg)
                    self.report.files += 1
                    self.file = str(seg.path)
                    last = seg
                    self._file(seg, last=i == len(queue))
                if self.closed or self.still_rotating or self.last_reason != "rotate":
                    break
                rounds += 1
                if rounds > _RELISTS:  # still rotating after every round: a busy live writer
                    self.still_rotating = stream_alive(self.stream)
                    break
                queue, i = [f for f in relist() if f[0] >= self.next_file], 0
                if not queue and stream_alive(self.stream):
                    time.sleep(_ROTATION_GRACE)  # the writer creates the next file right away
                    queue = [f for f in relist() if f[0] >= self.next_file]
                if not queue:
                    break
            if last is not None:
                self._end(last)
        except _Stop:
            return

    def _resync(self, number: int, seg: Segment) -> None:
        """Continue after deleted segments, from the signed prune of the one just before."""
        self.file = str(seg.path)
        missing = [f for f in range(self.next_file, number) if f not in self.prunes]
        if missing:
            what = f"file {missing[0]}" + (f"-{missing[-1]}" if len(missing) > 1 else "")
            self.fail(
                "GAP",
                f"segment {what} of the stream is missing (deleted without a signed prune)",
                self.last_seq + 1,
                line=None,
            )
        prune = self.prunes[number - 1]
        if prune.epoch < self.epoch or prune.seq < self.last_seq or prune.public_key is None:
            self.fail(
                "BAD_SIGNATURE",
                f"the prune of file {prune.file} (ladder step {prune.ladder_index}) does not "
                "continue the stream (its epoch, sequence number or key goes back)",
                line=None,
            )
        if self.mac is not None:
            for e in range(self.epoch, prune.epoch):
                self.mac = evolve(self.mac, e)
            self.tagger = Tagger(self.mac)
        self.head, self.last_seq, self.epoch = prune.head, prune.seq, prune.epoch
        self.public, self.cp_hash, self.next_file = prune.public_key, "*", number
        self.sealed_seq = self.last_seq
        self.interval_start = self.last_seq + 1
        self.max_epoch_seen = max(self.max_epoch_seen, prune.epoch - 1)
        self.recent.clear()

    def _file(self, seg: Segment, *, last: bool) -> None:
        self.lineno = 0
        self.last_was_checkpoint = False
        self.last_reason = ""
        try:
            fh = open_segment(seg.path)
        except FileNotFoundError:  # compressed meanwhile: read the compressed file
            alt = compressed_successor(seg)
            if alt is None:
                self.fail("GAP", "the segment disappeared while being verified", line=None)
            seg = alt
            fh = open_segment(seg.path)
        except OSError as exc:
            self.fail("GAP", f"cannot read the segment: {exc.strerror or exc}", line=None)
        with fh:
            lines: Iterator[bytes]
            if seg.compression is None and _size(seg) <= _DIRECT_READ:
                lines = iter(fh)  # no line can be longer than the (small enough) file
            else:
                lines = iter(functools.partial(fh.readline, MAX_LINE), b"")
            try:
                self._lines(lines, seg, last=last)
            except _Stop:
                raise
            except Exception as exc:  # noqa: BLE001 - zlib/zstd/EOF errors of a damaged file
                self.fail(
                    "TRUNCATED",
                    f"the segment cannot be read to its end (damaged or cut): {exc}",
                    self.last_seq + 1,
                )
        if not last and not self.last_was_checkpoint:
            self.fail(
                "TRUNCATED",
                f"the segment ends after seq {self.last_seq} without its closing checkpoint: "
                "its end was cut off",
                seq=self.last_seq,
            )

    def _lines(self, lines: Iterator[bytes], seg: Segment, *, last: bool) -> None:
        """The hot loop: records are checked with local state (the HMAC inlined from its
        precomputed pads, the expected end of the line compared in one go); anything else
        (control lines, anomalies, the end of the file) takes the slow path with the state
        synced back."""
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
                    if self.closed and next(lines, None) is not None:
                        self.lineno += 1
                        self.fail("INSERTED", "a line after the stream's closing checkpoint")
                    head, last_seq = self.head, self.last_seq
                    icopy, ocopy = self._pad_copiers()
                    tail_is_record = False
                    continue
                cut = len(raw) - tail
                body = raw[:cut]
                h = sha256(head + body).digest()
                last_seq += 1
                if icopy is not None:  # the tag and its frame: one comparison
                    inner = icopy()
                    inner.update(h)
                    outer = ocopy()
                    outer.update(inner.digest())
                    good = (
                        cut > 0
                        and raw[cut:] == b',"tag":"%b"}\n' % hexlify(outer.digest()[:16])
                        and body.endswith(b'"seq":%d' % last_seq)
                    )
                else:  # public key only: the frame and the order here, the chain at checkpoints
                    good = (
                        cut > 0
                        and raw.startswith(tag_key, cut)
                        and raw[-3:] == end
                        and body.endswith(b'"seq":%d' % last_seq)
                    )
                if not good:
                    last_seq -= 1
                    self.head, self.last_seq, self.lineno = head, last_seq, lineno
                    self._bad_record(raw, lines)
                head = h
                remember(raw)
                records += 1
                tail_is_record = True
        finally:
            self.head, self.last_seq, self.lineno = head, last_seq, lineno
            self.report.records += records
        if tail_is_record:
            self.last_was_checkpoint = False

    def _bad_record(self, raw: bytes, lines: Iterator[bytes]) -> NoReturn:
        """A record line that failed the fast checks: untagged, or an anomaly to classify."""
        parts = split_line(raw)
        if parts is None:
            self._untagged(raw)
        body, tag = parts
        self._anomaly(body, tag, seq_of(body), self._chain(body), lines, raw)

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
            missing = f"seq {expected}" if seq == expected + 1 else f"seq {expected}-{seq - 1}"
            self.fail("DELETED", f"{missing} missing before seq {seq}", expected)
        # right sequence number, wrong tag: edited, or a forged line pushed in
        if skip_ok:
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
        if len(raw) >= MAX_LINE:
            self.fail("INSERTED", f"a line longer than {MAX_LINE} bytes (never written whole)")
        if last and stream_alive(self.stream) and self._writing(seg):
            return  # a line being written right now (or just now, before a rotation)
        self.fail(
            "TORN",
            f"the last line is incomplete ({len(raw)} bytes without a newline): the writer "
            "stopped mid-write (a crash or kill), or the end of the file was cut off",
            seq=self.last_seq + 1,
        )

    # --- control lines ---------------------------------------------------------------------

    def _control(self, raw: bytes, lines: Iterator[bytes]) -> None:
        parts = split_line(raw)
        fields = control_fields(parts[0]) if parts is not None else None
        if parts is None or fields is None:
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
        self.next_file = file + 1
        self.last_was_checkpoint = False

    def _checkpoint(self, fields: dict[str, Any]) -> None:
        seq = fields.get("seq")
        if self.public is None or not verify_signature(self.public, fields):
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

    def _writing(self, last: Segment) -> bool:
        """Whether the writer still holds the last file read, or has moved on to a newer one
        (it rotated after that file was read to its end). A rotation closes the old file a
        moment before it creates the next one: that moment is waited out once."""
        for attempt in range(2):
            if segment_in_use(last.path) or any(n >= self.next_file for n, _ in self.relist()):
                return True
            if attempt == 0:
                time.sleep(_ROTATION_GRACE)
        return False

    def _end(self, last: Segment) -> None:
        witness = self.witness
        w_epoch = witness.get("epoch") if witness is not None else None
        if type(w_epoch) is int and w_epoch > self.max_epoch_seen:
            self.fail(
                "TRUNCATED",
                f"the witness holds checkpoint epoch {w_epoch} (seq {witness.get('seq')!r}) "  # type: ignore[union-attr]
                "that the directory lacks: the stream was cut or the directory replaced by "
                "an older copy",
                None,
                line=None,
            )
        if self.closed:
            return
        if self.still_rotating or (stream_alive(self.stream) and self._writing(last)):
            self.report.live_streams += 1
            return
        if self.last_reason == "rotate":
            self.fail(
                "GAP",
                f"segment {self.next_file} and any later ones are missing: file "
                f"{self.next_file - 1} ends with a rotation, so the stream went on",
                self.last_seq + 1,
                line=None,
            )
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
    relist: Callable[[], list[Segment]] | None = None,
) -> None:
    """Verify one stream's segments, appending at most one finding (plus copies and strays
    found among its files) to ``report``.

    Args:
        stream: the stream id.
        segs: every segment file of the stream in the directory (any prefix).
        ladder: the verified key ladder.
        report: where findings and counts go.
        witness: the witness's newest checkpoint of the stream, if any.
        relist: lists the stream's files again (to follow a live stream that rotates).
    """
    trust = ladder.streams.get(stream)
    if trust is None:
        first = segs[0]
        header = header_of(first)
        report.files += len(segs)
        detail = (
            "not sealed: written with integrity off (no segment header)"
            if header is None
            else "the stream's start is not in the verified key ladder: its keys cannot be "
            "trusted (ladder cut or replaced, or a foreign stream)"
        )
        kind = "UNSEALED" if header is None else "BAD_SIGNATURE"
        report.findings.append(Finding(kind, str(first.path), None, None, stream, detail))
        return
    numbers: dict[Path, int] = {}
    files, strays = stream_files(stream, segs, trust.prefix, numbers)
    report.findings.extend(strays)

    def again() -> list[tuple[int, Segment]]:
        if relist is None:
            return []
        return stream_files(stream, relist(), trust.prefix, numbers)[0]

    _Stream(stream, trust, ladder.prunes.get(stream, {}), report, witness).run(files, again)
