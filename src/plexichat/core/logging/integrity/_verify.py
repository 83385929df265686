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
from ._checks import _LineChecks, _Stop
from ._format import (
    CONTROL_PREFIX,
    GENESIS,
    MAX_LINE,
    TAG_KEY,
    TAG_LEN,
    Tagger,
    evolve,
    seq_of,
    split_line,
)
from ._ladder import Ladder, Prune, StreamTrust
from ._lookahead import (
    backdate_floor,
)
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


def _size(seg: Segment) -> int:
    try:
        return seg.path.stat().st_size
    except OSError:
        return _DIRECT_READ + 1


class _Stream(_LineChecks):
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
        self.reload: Callable[[], dict[int, Prune]] | None = None
        """Reads the ladder's prunes of the stream again (retention may prune meanwhile)."""
        self.newest = False
        """The file being read is the last one listed (where a crash leaves a torn line)."""
        self.floor_stamp, self.floor = backdate_floor(trust.time)

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
        if missing and self._reload_prunes():  # pruned after the ladder was read?
            missing = [f for f in range(self.next_file, number) if f not in self.prunes]
        if missing:
            what = f"file {missing[0]}" + (f"-{missing[-1]}" if len(missing) > 1 else "")
            self.fail(
                "GAP",
                f"segment {what} of the stream is missing (deleted without a signed prune)",
                self.last_seq + 1,
                line=None,
            )
        self._adopt(self.prunes[number - 1])

    def _reload_prunes(self) -> bool:
        """Read the ladder's prunes again; True when there are new ones."""
        if self.reload is None:
            return False
        fresh = self.reload()
        if len(fresh) <= len(self.prunes):
            return False
        self.prunes = fresh
        return True

    def _adopt(self, prune: Prune, *, closing: bool = False) -> None:
        """Continue the chain from a signed prune (it never goes back); only the prune of the
        stream's closing segment (``closing``) may have no next key."""
        if (
            prune.epoch < self.epoch
            or prune.seq < self.last_seq
            or (prune.public_key is None and not closing)
        ):
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
        self.public, self.cp_hash, self.next_file = prune.public_key, "*", prune.file + 1
        self.sealed_seq = self.last_seq
        self.interval_start = self.last_seq + 1
        self.max_epoch_seen = max(self.max_epoch_seen, prune.epoch - 1)
        self.recent.clear()

    def _file(self, seg: Segment, *, last: bool) -> None:
        try:
            fh = open_segment(seg.path)
        except FileNotFoundError:  # compressed meanwhile: read the compressed file
            alt = compressed_successor(seg)
            if alt is None:
                if self.next_file in self.prunes or (
                    self._reload_prunes() and self.next_file in self.prunes
                ):  # retention pruned it (signed) while we verified: the chain goes on
                    self.report.files -= 1
                    self.last_reason, self.last_was_checkpoint = "rotate", True
                    return
                self.fail(
                    "GAP",
                    "the segment disappeared while being verified, and the key ladder has no "
                    "signed prune for it",
                    line=None,
                )
            seg = alt
            fh = open_segment(seg.path)
        except OSError as exc:
            self.fail("GAP", f"cannot read the segment: {exc.strerror or exc}", line=None)
        self.lineno = 0
        self.last_was_checkpoint = False
        self.last_reason = ""
        self.newest = last
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
            except EOFError as exc:  # the compressed data ends early: the file was cut
                self.fail(
                    "TRUNCATED",
                    f"the segment cannot be read to its end (cut): {exc}",
                    self.last_seq + 1,
                )
            except Exception as exc:  # noqa: BLE001 - zlib/zstd/CRC errors of a damaged file
                self.fail(
                    "MODIFIED",
                    f"the compressed data of the segment is damaged after seq {self.last_seq} "
                    f"(changed or corrupted, not a crash): {exc}",
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
        floor = self.floor_stamp  # records dated before the stream started: BACKDATED
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
                if floor and (body[14:33] < floor or body[37:39] != b'Z"'):
                    self.lineno = lineno  # not UTC milliseconds, or early: check it exactly
                    self._record_date(body, last_seq)
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
            self._untagged(raw, lines)
        body, tag = parts
        self._anomaly(body, tag, seq_of(body), self._chain(body), lines, raw)

    def _pad_copiers(self) -> tuple[Any, Any]:
        """The ``copy`` methods of the current MAC key's pad states (None without a key)."""
        if self.tagger is None:
            return None, None
        inner, outer = self.tagger.pads
        return inner.copy, outer.copy

    def _partial(self, raw: bytes, seg: Segment, *, last: bool) -> None:
        if len(raw) >= MAX_LINE:
            self.fail("INSERTED", f"a line longer than {MAX_LINE} bytes (never written whole)")
        if last and stream_alive(self.stream) and self._writing(seg):
            return  # a line being written right now (or just now, before a rotation)
        if not last:
            self.fail(
                "TRUNCATED",
                f"the segment ends mid-line ({len(raw)} bytes without a newline) before its "
                "closing checkpoint, and later segments follow: its end was cut off",
                seq=self.last_seq + 1,
            )
        self.fail(
            "TORN",
            f"the last line is incomplete ({len(raw)} bytes without a newline): the writer "
            "stopped mid-write (a crash or kill), or the end of the file was cut off",
            seq=self.last_seq + 1,
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

    def _pruned_tail(self) -> bool:
        """After a rotation with no later file: whether retention pruned the later files
        (signed, contiguous prunes) up to the stream's closing segment (a prune without a
        next key); the chain then ends where the last prune says."""
        if self.closed or self.last_reason != "rotate":
            return False
        if self.next_file not in self.prunes:
            self._reload_prunes()
        while self.next_file in self.prunes:
            prune = self.prunes[self.next_file]
            if prune.public_key is None and prune.file + 1 not in self.prunes:
                self._adopt(prune, closing=True)
                self.closed = True
                return True
            self._adopt(prune)
        return False  # the last pruned segment ended with a rotation: the stream went on

    def _end(self, last: Segment) -> None:
        self._pruned_tail()
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
    reload: Callable[[], dict[int, Prune]] | None = None,
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
        reload: reads the stream's prunes from the ladder again (a file missing or vanishing
            while retention prunes it is no gap once its signed prune is there).
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

    state = _Stream(stream, trust, ladder.prunes.get(stream, {}), report, witness)
    state.reload = reload
    state.run(files, again)
