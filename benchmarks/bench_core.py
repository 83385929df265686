"""Throughput benchmark: PlexiChat Logging against common Python logging stacks, in one run.

Every contender writes the same record (``"user %s logged in"`` % ``"u42"`` plus a three-key
context) as one line to a file in a fresh temporary directory. Trials are interleaved, each
starts from fresh state and its file must then hold exactly N records (PlexiChat's integrity
control lines, ``{"$integrity":...``, are counted apart); the median is reported. PlexiChat
runs with integrity on (its default: every line sealed) and, in the same interleaved trials,
with integrity off, to measure what tamper evidence costs. Also measured: a call below the
level threshold (vs stdlib) and the caller's cost per call in non-blocking vs sync mode.
Unless ``--no-write``, the results go between the ``<!-- bench:core:start/end -->`` markers
of ``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/bench_core.py [--records N] [--trials T] [--quick]``
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import importlib.util
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import structlog
from loguru import logger as loguru_logger
from pythonjsonlogger import json as pjl_json
from pythonjsonlogger import orjson as pjl_orjson
from pythonjsonlogger.core import BaseJsonFormatter

import plexichat.core.logging as plx
from _report import DOC, machine, source_state, write_section
from plexichat.core.logging.integrity import init_keys
from plexichat.core.logging.integrity._format import CONTROL_PREFIX

MSG = "user %s logged in"
ARG = "u42"
CTX: dict[str, Any] = {"request_id": "req_1", "user_id": "u42", "ip": "10.0.0.1"}
EXTRA: dict[str, Any] = {"context": CTX}
HAVE_PICO = importlib.util.find_spec("picologging") is not None
ANCHORS = ("structlog", "loguru", "python-json-logger", "picologging", "orjson")
INTEGRITY_TARGET = 0.25  # integrity may cost at most this share of PlexiChat's throughput

NOTES = """### Reading the targets

- PlexiChat's record carries more than the others' (module, function, line, category,
  logger, severity_number, stream, seq), and its sync mode makes one `write` system call per
  record so that the line is on the OS before the call returns (stdlib, structlog, loguru and
  picologging flush per record too; the raw floor buffers and looks nothing up).
- The 2x-structlog and 0.35x-raw-floor targets need a per-record cost that CPython's own
  call overhead (level method, caller frame, event dict, serialization, queue) leaves little
  room for on this machine; they are not met yet and stay open.
- Caller cost: both modes share the same front end (event building and serialization); the
  non-blocking mode saves only the write system call. The ratio is therefore front end /
  (front end + write); it reaches 0.5x only when the front end is as cheap as one `write`.
- Integrity cost = 1 - (integrity on / integrity off) median throughput, per mode, from the
  same interleaved trials; the target counts as met only when it holds in both modes (the
  best-mode column compares the faster mode of each). Sealing a line costs one SHA-256 over
  the previous chain value and the line, one HMAC-SHA-256 over the 32-byte result and 49
  more bytes per line (the tag), all in the writing thread (the caller's, in sync mode).
  The HMAC is computed from the key's precomputed pad states (`Tagger`); the verifier
  section below measures these primitives per call.
"""

Trial = Callable[[Path, int], float]
"""Write n records into a fresh directory; return the timed seconds (setup/teardown untimed)."""
PRIMED = 1
"""Records a PlexiChat trial logs before its clock starts (see ``plexi_trial``)."""


@dataclass
class Contender:
    """One logging stack under test and the seconds of its trials."""

    label: str
    trial: Trial
    setup: str
    target: float | None = None  # minimal PlexiChat/contender throughput ratio, if any
    sealed: bool | None = None  # PlexiChat: integrity on (control lines expected) or off
    times: list[float] = field(default_factory=list)

    def rate(self, n: int) -> float:
        """Median records per second."""
        return n / statistics.median(self.times)

    def best(self, n: int) -> float:
        """Best-trial records per second."""
        return n / min(self.times)

    def ratios(self, n: int, sync: float, nb: float) -> tuple[str, str, str]:
        """us/record, then PlexiChat sync and non-blocking throughput over this one's."""
        r = self.rate(n)
        return f"{1e6 / r:.2f}", f"{sync / r:.2f}x", f"{nb / r:.2f}x"

    def target_row(self, n: int, sync: float, nb: float) -> tuple[str, ...]:
        """Target, ratio with PlexiChat's best mode, sync, non-blocking, met or not."""
        best = max(sync, nb) / self.rate(n)
        met = "met" if best >= (self.target or 0.0) else "NOT met"
        label = f"PlexiChat >= {self.target:g}x {self.label}"
        return (label, f"{best:.2f}x", *self.ratios(n, sync, nb)[1:], met)


def count_lines(directory: Path) -> tuple[int, int]:
    """``(records, control lines)`` in the files directly in ``directory`` (not ``keys/``).

    Control lines are PlexiChat's integrity lines (segment header, checkpoints): every line
    starting with ``{"$integrity":"``; all other lines count as records.
    """
    records = control = 0
    for path in directory.iterdir():
        if path.is_file():
            data = path.read_bytes()
            ctl = data.count(b"\n" + CONTROL_PREFIX) + data.startswith(CONTROL_PREFIX)
            records += data.count(b"\n") - ctl
            control += ctl
    return records, control


def plexi_configure(directory: Path, non_blocking: bool, integrity: bool = True) -> None:
    """Configure PlexiChat for the benchmark: files only, nothing rotating or compressing.

    With integrity on, the directory's keys are created first (quietly; it is what
    ``plexichat-logs keys init`` does once per directory), so no trial pays for that.
    """
    if integrity:
        init_keys(directory, announce=False)
    plx.configure_logging(
        directory=directory,
        level="INFO",
        console_enabled=False,
        non_blocking=non_blocking,
        queue_size=1_000_000,
        compression_enabled=False,
        rotation_size="off",
        rotation_interval="off",
        retention_age="off",
        integrity_enabled=integrity,
    )


def plexi_finish(non_blocking: bool) -> None:
    """Check that nothing was dropped or failed, then shut PlexiChat down."""
    stats = plx.get_logging_stats()
    plx.shutdown_logging()
    if stats["dropped_total"] or stats["errors"] or stats["queue_depth"]:
        raise RuntimeError(f"PlexiChat (non_blocking={non_blocking}) lost records: {stats}")


class PlexiTrial:
    """PlexiChat, ``extra={"context": ...}`` (or keyword fields), sync or non-blocking,
    integrity on or off.

    Before the clock starts, one record is logged (and flushed): it opens the first segment
    and, with integrity on, starts the stream (a signed, fsynced ladder link and the segment
    header). That once-per-process cost is kept in ``startup`` instead of the throughput.
    """

    def __init__(self, non_blocking: bool, keywords: bool = False, integrity: bool = True):
        self.non_blocking, self.keywords, self.integrity = non_blocking, keywords, integrity
        self.startup: list[float] = []

    def __call__(self, directory: Path, n: int) -> float:
        non_blocking, keywords = self.non_blocking, self.keywords
        plexi_configure(directory, non_blocking, self.integrity)
        info = plx.get_logger("bench").info
        t0 = time.perf_counter()
        info(MSG, ARG, extra=EXTRA)  # PRIMED: the stream start, untimed
        if non_blocking and not plx.flush_logging(120.0):
            raise RuntimeError("flush_logging timed out")
        self.startup.append(time.perf_counter() - t0)
        gc.collect()
        t0 = time.perf_counter()
        if keywords:
            for _ in range(n):
                info(MSG, ARG, **CTX)
        else:
            for _ in range(n):
                info(MSG, ARG, extra=EXTRA)
        if non_blocking and not plx.flush_logging(120.0):
            raise RuntimeError("flush_logging timed out")
        elapsed = time.perf_counter() - t0
        plexi_finish(non_blocking)
        return elapsed


def plexi_trial(non_blocking: bool, keywords: bool = False, integrity: bool = True) -> PlexiTrial:
    """A PlexiChat trial (see :class:`PlexiTrial`)."""
    return PlexiTrial(non_blocking, keywords, integrity)


def stdlib_json_trial(formatter: type[BaseJsonFormatter]) -> Trial:
    """stdlib logging + a python-json-logger formatter + ``logging.FileHandler``."""

    def trial(directory: Path, n: int) -> float:
        log = logging.getLogger(f"stdlibbench.{formatter.__name__}")
        log.propagate = False
        log.setLevel(logging.INFO)
        handler = logging.FileHandler(directory / "stdlib.jsonl", encoding="utf-8")
        fields = "%(levelname)s %(name)s %(message)s"
        fmt = formatter(fields, rename_fields={"levelname": "level"}, timestamp=True)
        handler.setFormatter(fmt)
        log.addHandler(handler)
        info = log.info
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            info(MSG, ARG, extra=EXTRA)
        elapsed = time.perf_counter() - t0
        log.removeHandler(handler)
        handler.close()
        return elapsed

    return trial


def structlog_trial(directory: Path, n: int) -> float:
    """structlog's documented fast setup: filtering bound logger, orjson, BytesLogger."""
    with (directory / "structlog.jsonl").open("wb") as out:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(serializer=orjson.dumps),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.BytesLoggerFactory(file=out),
            cache_logger_on_first_use=True,
        )
        info = structlog.get_logger("bench").info
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            info(MSG, ARG, **CTX)
        elapsed = time.perf_counter() - t0
    structlog.reset_defaults()
    return elapsed


def loguru_trial(directory: Path, n: int) -> float:
    """loguru with ``serialize=True`` to a file; the default stderr sink removed."""
    loguru_logger.remove()
    sink = loguru_logger.add(directory / "loguru.jsonl", serialize=True, level="INFO")
    bind = loguru_logger.bind
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n):
        bind(**CTX).info("user {} logged in", ARG)
    elapsed = time.perf_counter() - t0
    loguru_logger.remove(sink)
    return elapsed


def picologging_trial(directory: Path, n: int) -> float:
    """picologging (plain text, no JSON) with a FileHandler."""
    import picologging

    log = picologging.getLogger("picobench")
    log.propagate = False
    log.setLevel(picologging.INFO)
    handler = picologging.FileHandler(str(directory / "pico.log"))
    # An explicit datefmt: picologging 0.9.3's default asctime prints garbage (issue #203).
    fmt = "%(asctime)s %(levelname)s %(name)s %(message)s"
    handler.setFormatter(picologging.Formatter(fmt, datefmt="%Y-%m-%dT%H:%M:%S"))
    log.addHandler(handler)
    info = log.info
    gc.collect()
    t0 = time.perf_counter()
    for _ in range(n):
        info(MSG, ARG)  # no extra=: 0.9.3 drops a reference to that dict per call (crashes)
    elapsed = time.perf_counter() - t0
    log.removeHandler(handler)
    handler.close()
    return elapsed


def floor_trial(directory: Path, n: int) -> float:
    """The raw floor: orjson.dumps of an equivalent dict + a buffered ``write``."""
    dumps, now, opt = orjson.dumps, datetime.now, orjson.OPT_UTC_Z
    with (directory / "floor.jsonl").open("wb") as out:
        write = out.write
        gc.collect()
        t0 = time.perf_counter()
        for _ in range(n):
            record = {"timestamp": now(UTC), "level": "INFO", "message": MSG % ARG, "context": CTX}
            write(dumps(record, option=opt) + b"\n")
        out.flush()
        return time.perf_counter() - t0


def contenders() -> list[Contender]:
    """All contenders; ``target`` marks the ones with a throughput goal."""
    slog = "filtering bound logger (INFO), positional args, add_log_level, TimeStamper(iso, utc)"
    pjl = stdlib_json_trial(pjl_json.JsonFormatter)
    pjl_orj = stdlib_json_trial(pjl_orjson.OrjsonFormatter)
    on, off = "integrity on (the default: every line sealed)", "integrity_enabled=False"
    nb = "incl. flush_logging()"
    found = [
        Contender(
            "PlexiChat sync", plexi_trial(False), f"extra={{'context': ctx}}, {on}", None, True
        ),
        Contender("PlexiChat non-blocking", plexi_trial(True), f"{nb}, {on}", None, True),
        Contender(
            "PlexiChat sync, keyword fields", plexi_trial(False, True), f"**ctx, {on}", None, True
        ),
        Contender(
            "PlexiChat sync, integrity off",
            plexi_trial(False, integrity=False),
            f"extra={{'context': ctx}}, {off}",
            None,
            False,
        ),
        Contender(
            "PlexiChat non-blocking, integrity off",
            plexi_trial(True, integrity=False),
            f"{nb}, {off}",
            None,
            False,
        ),
        Contender("stdlib + python-json-logger", pjl, "FileHandler + json.JsonFormatter", 4.0),
        Contender("stdlib + python-json-logger (orjson)", pjl_orj, "FileHandler + OrjsonFormatter"),
        Contender("structlog + orjson", structlog_trial, slog + ", BytesLogger", 2.0),
        Contender("loguru", loguru_trial, "add(path, serialize=True), bind(**ctx) per call"),
    ]
    if HAVE_PICO:
        pico = "FileHandler, '%(asctime)s %(levelname)s %(name)s %(message)s', no context"
        found.append(Contender("picologging (text)", picologging_trial, pico, 1.0))
    floor = "orjson.dumps(dict incl. datetime.now(UTC)) + write to a buffered file"
    return [*found, Contender("raw floor", floor_trial, floor, 0.35)]


def run_throughput(cands: list[Contender], n: int, trials: int) -> None:
    """Warm each contender up, then run interleaved trials, checking every file's lines."""
    for rnd in range(trials + 1):
        size = max(n // 10, 1000) if rnd == 0 else n
        shift = rnd % len(cands)
        for c in cands[shift:] + cands[:shift]:
            with tempfile.TemporaryDirectory(prefix="plexibench-") as tmp:
                elapsed = c.trial(Path(tmp), size)
                records, control = count_lines(Path(tmp))
            want = size + (PRIMED if c.sealed is not None else 0)
            if records != want:
                raise SystemExit(f"{c.label}: expected {want} records, the file holds {records}")
            if (control >= 2) != bool(c.sealed):  # sealed: a header and the closing checkpoint
                raise SystemExit(f"{c.label}: {control} integrity control lines, sealed={c.sealed}")
            if rnd:
                c.times.append(elapsed)
            elif isinstance(c.trial, PlexiTrial):
                c.trial.startup.clear()  # the warm-up's start may include lazy imports
        print(f"round {rnd}/{trials} done" + (" (warm-up)" if rnd == 0 else ""), flush=True)


def loop_ns(call: Callable[..., None] | None, n: int, repeats: int = 7) -> float:
    """Best-of-``repeats`` ns per ``call(MSG, ARG, extra=EXTRA)`` (None: the bare loop)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        if call is None:
            for _ in range(n):
                pass
        else:
            for _ in range(n):
                call(MSG, ARG, extra=EXTRA)
        best = min(best, (time.perf_counter_ns() - t0) / n)
    return best


def below_threshold(n: int) -> tuple[float, float, float]:
    """ns per ``debug()`` call at level INFO, bare-loop cost removed: PlexiChat, stdlib, loop."""
    std = logging.getLogger("stdlibthreshold")
    std.propagate = False
    std.setLevel(logging.INFO)
    std.addHandler(logging.NullHandler())
    with tempfile.TemporaryDirectory(prefix="plexibench-") as tmp:
        plexi_configure(Path(tmp), non_blocking=False)
        plexi = plx.get_logger("bench.threshold").debug
        loop_ns(plexi, n // 10), loop_ns(std.debug, n // 10)  # warm-up
        loop = loop_ns(None, n)
        out = (loop_ns(plexi, n) - loop, loop_ns(std.debug, n) - loop, loop)
        plexi_finish(False)
    return out


def caller_cost(non_blocking: bool, samples: int) -> float:
    """Median ns of one ``info()`` call timed with ``perf_counter_ns`` around each call."""
    clock = time.perf_counter_ns
    spent = [0] * samples
    with tempfile.TemporaryDirectory(prefix="plexibench-") as tmp:
        plexi_configure(Path(tmp), non_blocking)
        info = plx.get_logger("bench").info
        for _ in range(2000):
            info(MSG, ARG, extra=EXTRA)
        gc.collect()
        for i in range(samples):
            t0 = clock()
            info(MSG, ARG, extra=EXTRA)
            spent[i] = clock() - t0
        if not plx.flush_logging(120.0):
            raise RuntimeError("flush_logging timed out")
        plexi_finish(non_blocking)
        if (lines := count_lines(Path(tmp))[0]) != samples + 2000:
            raise SystemExit(f"caller-cost run: expected {samples + 2000} records, found {lines}")
    return statistics.median(spent)


def timer_overhead(samples: int) -> float:
    """Median ns of an empty ``perf_counter_ns`` pair (included in the caller costs)."""
    clock = time.perf_counter_ns
    return statistics.median([-clock() + clock() for _ in range(samples)])


def versions() -> dict[str, str]:
    """Installed versions of the project and the anchor libraries."""
    out = {}
    for dist in ("plexichat-logging", *ANCHORS):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A markdown table."""
    return ["| " + " | ".join(r) + " |" for r in [head, tuple("---" for _ in head), *rows]]


def main(argv: list[str] | None = None) -> int:
    """Run everything, print the report and (unless --no-write) write docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--records", type=int, default=200_000, help="records per trial")
    ap.add_argument("--trials", type=int, default=5, help="timed trials per contender")
    ap.add_argument("--quick", action="store_true", help="20_000 records per trial")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args(argv)
    n = 20_000 if args.quick else args.records
    command = " ".join([".venv/bin/python", "benchmarks/bench_core.py", *sys.argv[1:]])
    date = subprocess.run(["date", "-u"], capture_output=True, text=True, check=False).stdout
    mach, vers = machine(), versions()
    head = [
        "# PlexiChat Logging benchmarks\n",
        f"- Date: {date.strip() or datetime.now(UTC).isoformat()}",
        f"- Machine: {mach['cpu']}, {mach['cores']} cores, {mach['ram']} RAM",
        f"- Python: {mach['python']}; OS: {mach['os']}",
        f"- Command: `{command}` (project source: git `{source_state()}`)",
        f"- {n:,} records per trial, {args.trials} interleaved trials per contender after a"
        " warm-up; medians reported. Every trial starts from fresh state in a new temporary"
        " directory, and its file must hold exactly N records afterwards (PlexiChat: N plus"
        ' the one priming record; integrity control lines, `{"$integrity":...`, are'
        " counted apart and must be there exactly when integrity is on).",
        "- PlexiChat rows run with integrity on (the default: every line hash-chained and"
        " tagged, segment header, signed closing checkpoint) unless marked *integrity off*."
        " Untimed in each PlexiChat trial: creating the directory's keys (`init_keys`, done"
        " once per directory in real use) and one priming record, which opens the segment"
        " and, with integrity on, starts the stream (signed, fsynced ladder link + header);"
        " that start is reported apart below.",
        f"- Record: `info({MSG!r}, {ARG!r})` with context `{CTX}`, one JSON line each"
        " (picologging: one text line, without the context).\n",
    ]
    print("\n".join(head), flush=True)

    cands = contenders()
    run_throughput(cands, n, args.trials)
    by = {c.label: c for c in cands}
    sync, nb = cands[0].rate(n), cands[1].rate(n)  # PlexiChat sync, non-blocking
    sync_off = by["PlexiChat sync, integrity off"].rate(n)
    nb_off = by["PlexiChat non-blocking, integrity off"].rate(n)
    cost_sync, cost_nb = 1 - sync / sync_off, 1 - nb / nb_off
    cost_best = 1 - max(sync, nb) / max(sync_off, nb_off)
    starts = {
        c.label: statistics.median(c.trial.startup) * 1e3
        for c in cands
        if isinstance(c.trial, PlexiTrial) and c.trial.startup and not c.trial.keywords
    }
    rows = [
        (c.label, f"{c.rate(n):,.0f}", f"{c.best(n):,.0f}", *c.ratios(n, sync, nb)) for c in cands
    ]
    targets = [c.target_row(n, sync, nb) for c in cands if c.target is not None]
    worst = max(cost_sync, cost_nb)
    targets.append((
        f"integrity costs <= {INTEGRITY_TARGET:.0%} of throughput (1 - on/off)",
        f"{cost_best:.1%}",
        f"{cost_sync:.1%}",
        f"{cost_nb:.1%}",
        "met" if worst <= INTEGRITY_TARGET else "NOT met"
        + (" (met in one mode)" if min(cost_sync, cost_nb) <= INTEGRITY_TARGET else ""),
    ))  # fmt: skip
    p_ns, s_ns, loop = below_threshold(max(n * 5, 100_000))
    thr, thr_met = p_ns / s_ns, "met" if p_ns / s_ns <= 1.2 else "NOT met"
    samples = max(n // 4, 10_000)
    c_sync, c_nb = caller_cost(False, samples), caller_cost(True, samples)
    timer = timer_overhead(samples)
    cc, cc_met = c_nb / c_sync, "met" if c_nb / c_sync <= 0.5 else "NOT met"
    targets += [
        ("below-threshold debug() <= 1.2x stdlib", f"{thr:.2f}x", "", "", thr_met),
        ("non-blocking caller cost <= 0.5x sync", f"{cc:.2f}x", "", "", cc_met),
    ]
    cols = ("contender", "median rec/s", "best rec/s", "us/rec", "sync ÷", "non-blocking ÷")
    body = [
        "## Throughput\n",
        "Ratio columns: PlexiChat sync / non-blocking throughput divided by the contender's.\n",
        *table(cols, rows),
        "\nSetups:\n",
        *(f"- {c.label}: {c.setup}" for c in cands),
        "\n## Targets\n",
        "Best mode = the faster of PlexiChat's sync and non-blocking medians.\n",
        *table(("target", "best mode", "sync", "non-blocking", "result"), targets),
        "\n" + NOTES,
        "\n## Integrity on vs off\n",
        f"Median throughput, same interleaved trials: sync {sync:,.0f} rec/s on vs"
        f" {sync_off:,.0f} off (costs {cost_sync:.1%}); non-blocking {nb:,.0f} on vs"
        f" {nb_off:,.0f} off (costs {cost_nb:.1%}).",
        "\nStream start = the untimed priming record (non-blocking: with its flush), median"
        " of the timed rounds, keys already created: "
        + "; ".join(f"{label} {ms:.1f} ms" for label, ms in starts.items())
        + ". With integrity on it signs and fsyncs a ladder link and the host state once per"
        " stream (process start).",
        "\n## Below the level threshold\n",
        f"`debug()` with the level at INFO, best of 7 loops of {max(n * 5, 100_000):,} calls,"
        f" bare loop ({loop:.1f} ns) subtracted: PlexiChat {p_ns:.1f} ns/call, stdlib"
        f" {s_ns:.1f} ns/call -> {thr:.2f}x.",
        "\n## Caller cost\n",
        f"Median of {samples:,} `info()` calls (integrity on), each timed with"
        f" `perf_counter_ns`: sync"
        f" {c_sync:.0f} ns, non-blocking {c_nb:.0f} ns (an empty timer pair: {timer:.0f} ns)"
        f" -> {cc:.2f}x.",
        "\n## Versions\n",
        *(f"- {k} {v}" for k, v in vers.items()),
        "",
    ]
    print("\n".join(body))
    if not args.no_write:
        write_section("core", "\n".join(head + body), at_top=True)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
