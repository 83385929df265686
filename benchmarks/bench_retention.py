"""Retention benchmark: how long SQLite retention keeps a concurrent writer waiting.

Issue 5 asks that SQLite retention "deletes in batches without blocking writers for more than
100 ms". Builds a store of N records (``bench_store.generate``: 7 days of two streams, then
``Indexer.run_once()``), then runs a writer process that appends 200 records every 20 ms
through ``SQLiteStore.append`` (as the indexer does) while this process runs
``apply_retention`` (DEBUG 1 day, everything else 4 days: about half the records go). The
same writer runs alone first for 20 s, as the baseline.

For each append the writer records its whole latency and the part spent waiting for the
write lock (the time inside ``sqlite._begin``, wrapped for the measurement): the wait is
what retention costs a writer; the rest is the writer's own work, which includes the search
index's merge work that falls to whichever transaction writes enough.

Unless ``--no-write``, the results go between ``<!-- bench:retention:start/end -->`` markers
in ``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/bench_retention.py [--records N] [--no-write]``
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson

from _report import DOC, machine, source_state, write_section
from bench_store import generate
from plexichat.core.logging.store import sqlite as sqlite_store
from plexichat.core.logging.store.base import record_from_event
from plexichat.core.logging.store.indexer import Indexer
from plexichat.core.logging.store.retention import RetentionRules
from plexichat.core.logging.store.sqlite import SQLiteStore

RULES = {"DEBUG": "1 day"}
DEFAULT_AGE = "4 days"
PER_APPEND, INTERVAL_S = 200, 0.02
BOUND_MS = 100.0
BASELINE_S = 20.0

Sample = tuple[float, float]  # (append seconds, lock-wait seconds)


def writer(path: str, stop: Any, ready: Any, out: Any) -> None:
    """Append PER_APPEND records every INTERVAL_S until ``stop``; put the samples on ``out``."""
    waits: list[float] = []
    begin = sqlite_store._begin

    def timed_begin(conn: sqlite3.Connection, wait: float) -> None:
        t0 = time.perf_counter()
        try:
            begin(conn, wait)
        finally:
            waits.append(time.perf_counter() - t0)

    sqlite_store._begin = timed_begin  # measurement only
    store = SQLiteStore(f"sqlite:///{path}")
    samples: list[Sample] = []
    seq, stream = 0, f"writer-{os.getpid()}"  # a stream of its own: nothing skipped
    ready.set()
    while not stop.is_set():
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
        records = []
        for _ in range(PER_APPEND):
            seq += 1
            event = {
                "timestamp": stamp, "level": "INFO", "logger": "bench.writer",
                "message": f"writer record {seq} database ok",
                "context": {"user_id": f"u{seq % 50}"}, "stream": stream, "seq": seq,
            }  # fmt: skip
            records.append(record_from_event(event, raw=orjson.dumps(event)))
        t0 = time.perf_counter()
        store.append(records, {stream: seq})
        samples.append((time.perf_counter() - t0, waits[-1]))
        time.sleep(INTERVAL_S)
    store.close()
    out.put(samples)


def run_writer(path: Path, during: Any) -> tuple[list[Sample], Any]:
    """The writer's samples while ``during()`` runs in this process, and its result."""
    ctx = mp.get_context("spawn")
    stop, ready, out = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=writer, args=(str(path), stop, ready, out))
    proc.start()
    try:
        if not ready.wait(60):
            raise SystemExit("the writer process did not start")
        time.sleep(1.0)
        result = during()
        time.sleep(0.5)
        stop.set()
        samples: list[Sample] = out.get(timeout=120)
    finally:
        stop.set()
        proc.join(30)
        with suppress(Exception):
            proc.kill()
    return samples, result


def summary(samples: list[Sample]) -> dict[str, float]:
    """p50/p99/max of append latency and lock wait, in ms."""
    lat = sorted(s[0] * 1e3 for s in samples)
    wait = sorted(s[1] * 1e3 for s in samples)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))]

    return {
        "n": float(len(samples)),
        "lat50": pct(lat, 0.5), "lat99": pct(lat, 0.99), "latmax": lat[-1],
        "wait99": pct(wait, 0.99), "waitmax": wait[-1],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Build the store, measure baseline and retention, print and (unless --no-write) write."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="records in the store")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    args = ap.parse_args(argv)
    command = " ".join([".venv/bin/python", "benchmarks/bench_retention.py", *sys.argv[1:]])
    date = subprocess.run(["date", "-u"], capture_output=True, text=True, check=False).stdout
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="plexibench-retention-") as tmp_name:
        tmp = Path(tmp_name)
        (logdir := tmp / "logs").mkdir()
        generate(args.records, logdir, tmp / "records.jsonl")
        path = tmp / "store.db"
        store = SQLiteStore(f"sqlite:///{path}")
        built = time.perf_counter()
        Indexer(logdir, store).run_once()
        print(f"indexed {args.records:,} records in {time.perf_counter() - built:.0f} s")
        os.sync()  # the fresh file's dirty pages would otherwise land in the first fsync

        base, _ = run_writer(path, lambda: time.sleep(BASELINE_S))
        rules = RetentionRules.from_mapping(RULES, max_age=DEFAULT_AGE)
        t0 = time.perf_counter()
        ret, deleted = run_writer(path, lambda: store.apply_retention(rules))
        ret_secs = time.perf_counter() - t0
        print(f"retention: deleted {deleted} in {ret_secs:.1f} s", flush=True)
        store.close()
    total = time.perf_counter() - began
    during = summary(ret)
    rows = [("writer alone", summary(base)), ("writer during retention", during)]
    head = "| phase | appends | append p50 / p99 / max | lock wait p99 / max |"
    table = [head, "| --- | --- | --- | --- |"]
    for label, s in rows:
        table.append(
            f"| {label} | {int(s['n']):,} | {s['lat50']:.1f} / {s['lat99']:.1f} /"
            f" {s['latmax']:.1f} ms | {s['wait99']:.1f} / {s['waitmax']:.1f} ms |"
        )
    verdict = "met" if during["waitmax"] <= BOUND_MS else "NOT met"
    text = "\n".join([
        "## Store retention (SQLite)\n",
        f"- Date: {date.strip()}",
        "- Machine: {cpu}, {cores} cores, {ram} RAM".format(**machine()),
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}",
        f"- Command: `{command}` ({total / 60:.1f} min in all; project source: git"
        f" `{source_state()}`)",
        f"- Store: {args.records:,} generated records (`bench_store.generate`, 7 days);"
        f" retention {RULES} and {DEFAULT_AGE} for the rest deleted"
        f" {sum(deleted.values()):,} records ({deleted}) in {ret_secs:.1f} s.",
        f"- Writer: another process appending {PER_APPEND} records every"
        f" {INTERVAL_S * 1000:.0f} ms with `SQLiteStore.append`; lock wait = time spent"
        " waiting for the write lock (`BEGIN IMMEDIATE`).\n",
        *table,
        "",
        f"- Target (issue 5): retention never blocks a writer for more than {BOUND_MS:.0f} ms:"
        f" longest lock wait {during['waitmax']:.1f} ms, **{verdict}**. The append latency"
        " beyond the wait is the writer's own work: its rows, and the search index's merge"
        " work that falls to whichever transaction writes enough pages.",
    ])  # fmt: skip
    print("\n" + text)
    if not args.no_write:
        write_section("retention", text, at_top=False)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
