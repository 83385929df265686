"""Store benchmark: indexing, queries and CSV export of the log store, in one run.

Generates N realistic records (levels, categories, loggers, message templates, a three-key
context, some exceptions) as JSON-lines segment files through ``SegmentWriter`` plus one flat
``.jsonl`` copy, then measures against bare floors and ``grep``:

1. ``Indexer(dir, SQLiteStore).run_once()`` (FTS included) vs ``executemany`` of the same
   ``(ts, level, message, raw)`` rows into a minimal WAL table, same batch size.
2. Two newest-100 queries (p50/p99 of 100 runs) vs ``grep ... | tail -n 100`` (median of 5).
3. Export of every record to CSV (when ``store.export`` exists) vs a bare ``csv.writer`` loop.
4. Indexing and queries on PostgreSQL when the server is up (in a schema dropped afterwards).

Unless ``--no-write``, the results go between ``<!-- bench:store:start/end -->`` markers in
``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/bench_store.py [--records N] [--quick] [--no-write]
[--no-postgres] [--only {sqlite,postgres}] [--postgres-url URL]``; the PostgreSQL URL
defaults to ``$PLEXICHAT_TEST_POSTGRES_URL``, else the local ``test`` database.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import os
import platform
import random
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import psycopg

from _report import DOC, machine, source_state, write_section
from plexichat.core.logging.sinks.files import SegmentWriter
from plexichat.core.logging.store._sqlite_schema import FTS
from plexichat.core.logging.store.base import LogQuery, LogStore, to_micros
from plexichat.core.logging.store.indexer import BATCH, Indexer
from plexichat.core.logging.store.sqlite import SQLiteStore

PG_URL = os.environ.get("PLEXICHAT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
QUERY_RUNS, GREP_RUNS = 100, 5
HEAVY_USER = "u7"  # one of the 50 busy users (30% of the traffic): a full page of matches
SPAN_S = 7 * 24 * 3600.0  # the records cover the last 7 days
ROTATION = 64 * 1024 * 1024
# level: (levelno, severity_number, weight %, templates of (category, logger, message))
LEVELS: dict[str, tuple[int, int, float, tuple[tuple[str, str, str], ...]]] = {
    "DEBUG": (10, 5, 12.0, (
        ("cache", "plexichat.cache", "cache hit for room {room}"),
        ("api", "plexichat.api.messages", "parsed request body of {n} bytes"),
        ("database", "plexichat.db.pool", "database connection {n} returned to pool"),
    )),
    "INFO": (20, 9, 67.5, (
        ("api", "plexichat.api.messages", "message {n} delivered to room {room}"),
        ("auth", "plexichat.auth", "user session refreshed"),
        ("network", "plexichat.ws.gateway", "websocket connected from {ip}"),
        ("database", "plexichat.db.pool", "database connection opened to db-{code}"),
        ("api", "plexichat.api.rooms", "GET /api/v1/rooms/{room} 200 in {ms} ms"),
        ("plugin", "plexichat.plugins.loader", "plugin translate-{code} loaded"),
    )),
    "WARNING": (30, 13, 14.0, (
        ("database", "plexichat.db.pool", "slow database query took {ms} ms"),
        ("api", "plexichat.api.messages", "rate limit nearly reached for client {ip}"),
        ("cache", "plexichat.cache", "cache eviction of {n} keys"),
    )),
    "ERROR": (40, 17, 3.0, (
        ("database", "plexichat.db.pool", "database timeout after {ms} ms on query {n}"),
        ("database", "plexichat.db.pool", "database timeout while acquiring a connection"),
        ("api", "plexichat.api.messages", "failed to deliver message {n}: peer reset"),
        ("backup", "plexichat.backup", "backup upload failed with status {code}"),
    )),
    "CRITICAL": (50, 21, 0.5, (
        ("database", "plexichat.db.pool", "database unreachable after {code} retries"),
        ("system", "plexichat.core", "worker {code} ran out of memory"),
    )),
    "SECURITY": (60, 22, 2.0, (
        ("security", "plexichat.security", "failed login from {ip}"),
        ("security", "plexichat.security", "SQL injection attempt on database endpoint blocked"),
    )),
    "AUDIT": (70, 23, 1.0, (("audit", "plexichat.audit", "room {room} settings changed"),)),
}  # fmt: skip
EXCEPTION = {
    "type": "TimeoutError",
    "message": "timed out",
    "traceback": [
        "Traceback (most recent call last):",
        '  File "/srv/plexichat/db/pool.py", line 88, in acquire',
        "    conn = await wait_for(self._queue.get(), timeout)",
        "TimeoutError: timed out",
    ],
}
SEARCH_GREP = """grep -E '"level":"(ERROR|CRITICAL|SECURITY|AUDIT)".*"message":"[^"]*database'"""
USER_GREP = f"""grep -F '"user_id":"{HEAVY_USER}"'"""
FLOOR_COLS = "ts {0}, level text, message text, raw text"
FLOOR_INSERT = "INSERT INTO r (ts, level, message, raw) VALUES ({0}, {0}, {0}, {0})"
CSV_COLS = ("ts", "level", "category", "logger", "module", "message", "stream", "seq", "raw")
QUERIES = {  # label: (LogQuery, the grep a person would run)
    "newest 100: level>=ERROR, search 'database'": (
        LogQuery(min_level="ERROR", search="database", limit=100),
        SEARCH_GREP,
    ),
    f"newest 100: context.user_id={HEAVY_USER}": (
        LogQuery(where=(("context.user_id", HEAVY_USER),), limit=100),
        USER_GREP,
    ),
}
Row = tuple[str, str, str, str, str, str]  # measure, PlexiChat, baseline, ratio, target, result
FloorRow = tuple[int, str, str, str]


def generate(n: int, logdir: Path, flat: Path, seed: int = 5) -> list[FloorRow]:
    """Write ``n`` records to two segment streams and the flat copy; return the floor's rows."""
    rng = random.Random(seed)
    names = list(LEVELS)
    levels = rng.choices(names, weights=[LEVELS[x][2] for x in names], k=n)
    writers = [SegmentWriter(logdir, rotation_size=ROTATION) for _ in range(2)]
    start, step = time.time() - SPAN_S, SPAN_S / n
    rows: list[FloorRow] = []
    with flat.open("wb") as out:
        for first in range(0, n, 1000):
            writer = writers[(first // 1000) % 2]
            suffix = f',"stream":"{writer.stream}","seq":'.encode()
            items: list[tuple[int, bytes]] = []
            for i in range(first, min(first + 1000, n)):
                level = levels[i]
                levelno, sev, _, templates = LEVELS[level]
                category, logger, template = rng.choice(templates)
                ms = round(rng.lognormvariate(3, 1.2), 1)
                values = {"n": rng.randrange(1, 10**7), "room": rng.randrange(1, 5000)}
                ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
                message = template.format(ms=ms, ip=ip, code=rng.randrange(1, 600), **values)
                user = rng.randrange(50) if rng.random() < 0.3 else rng.randrange(50, 20050)
                sec = start + i * step
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
                stamp += f".{int(sec * 1000) % 1000:03d}Z"
                event: dict[str, Any] = {
                    "timestamp": stamp,
                    "level": level,
                    "category": category,
                    "message": message,
                    "module": logger.rsplit(".", 1)[1],
                    "function": "handle",
                    "line": 40 + len(template),
                    "context": {
                        "request_id": f"req_{rng.getrandbits(48):012x}",
                        "user_id": f"u{user}",
                        "ip": ip,
                    },
                }
                if category == "api":
                    event["performance_data"] = {"duration_ms": ms}
                event["logger"] = logger
                event["severity_number"] = sev
                if levelno == 40 and rng.random() < 0.3:
                    event["exception"] = EXCEPTION
                data = orjson.dumps(event)
                items.append((levelno, data))
                line = b"%b%b%d}" % (data[:-1], suffix, writer.seq + len(items))
                out.write(line + b"\n")
                rows.append((to_micros(stamp), level, message, line.decode()))
            writer.write_batch(items)
    for writer in writers:
        writer.close()
    on_disk = sum(p.stat().st_size for p in logdir.iterdir())
    if on_disk != flat.stat().st_size:
        raise SystemExit(f"segments hold {on_disk} bytes, the flat copy {flat.stat().st_size}")
    return rows


def sqlite_floor(path: Path, rows: list[FloorRow]) -> float:
    """Seconds to ``executemany`` the rows in batches of ``BATCH``, a transaction each."""
    table = f"CREATE TABLE r (id INTEGER PRIMARY KEY, {FLOOR_COLS.format('integer')})"
    return timed_batches(path, table, FLOOR_INSERT.format("?"), rows)


def search_index_alone(store: SQLiteStore, path: Path) -> float:
    """Seconds to build the store's search index alone from its stored text: ``executemany``
    of ``(tid, message, logger, attrs)``, read from the store beforehand, into a new FTS5
    table of the store's definition, in the indexer's batches. The least any indexer that
    searches what this one searches must spend, besides writing the rows themselves."""
    text = store._conn().execute("SELECT tid, message, logger, attrs FROM records ORDER BY id")
    table = FTS.replace("content='records', content_rowid='tid', ", "content='', ")
    insert = "INSERT INTO records_text (rowid, message, logger, attrs) VALUES (?, ?, ?, ?)"
    return timed_batches(path, table, insert, text.fetchall())


def timed_batches(path: Path, table: str, insert: str, rows: Sequence[Sequence[Any]]) -> float:
    """Seconds to ``executemany`` ``insert`` of ``rows`` into a new WAL database at ``path``
    holding ``table``, in batches of ``BATCH``, a transaction each (``table`` untimed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(table)
    t0 = time.perf_counter()
    for i in range(0, len(rows), BATCH):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(insert, rows[i : i + BATCH])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def parse_rows(flat: Path) -> Iterator[FloorRow]:
    """The floor's rows made from the flat file: each line read and parsed with orjson."""
    with flat.open("rb") as lines:
        for raw in lines:
            line = raw.rstrip(b"\n")
            event = orjson.loads(line)
            yield to_micros(event["timestamp"]), event["level"], event["message"], line.decode()


def index(store: LogStore, logdir: Path, n: int) -> float:
    """Seconds of one ``Indexer.run_once()`` over the directory; every record must land."""
    t0 = time.perf_counter()
    report = Indexer(logdir, store).run_once()
    elapsed = time.perf_counter() - t0
    if report.records != n or report.malformed or report.errors:
        raise SystemExit(f"indexer: expected {n} records, got {report}")
    return elapsed


def shell(cmd: str) -> tuple[float, str]:
    """Wall seconds and stdout of a shell pipeline (``LC_ALL=C``, as fast as grep goes)."""
    env = {**os.environ, "LC_ALL": "C"}
    t0 = time.perf_counter()
    done = subprocess.run(["sh", "-c", cmd], capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        raise SystemExit(f"{cmd!r} failed: {done.stderr.decode(errors='replace')}")
    return elapsed, done.stdout.decode()


def grep_times(flat: Path) -> dict[str, tuple[float, str, int, list[str]]]:
    """Per query: grep's median seconds, its command, its match count and last 100 lines."""
    out = {}
    for label, (_, grep) in QUERIES.items():
        cmd = f"{grep} {shlex.quote(str(flat))} | tail -n 100"
        _, last = shell(cmd)  # untimed warm-up
        times = [shell(cmd)[0] for _ in range(GREP_RUNS)]
        count = int(shell(f"{grep} -c {shlex.quote(str(flat))}")[1])
        shown = cmd.replace(shlex.quote(str(flat)), "records.jsonl")
        out[label] = (statistics.median(times), shown, count, last.splitlines())
    return out


def query_rows(store: LogStore, backend: str, greps: dict[str, Any]) -> list[Row]:
    """p50/p99 of each query (after one untimed run), checked against grep's results."""
    rows = []
    for label, (query, _) in QUERIES.items():
        g_time, _, g_count, g_last = greps[label]
        page = store.query(query)
        want = [(r["stream"], r["seq"]) for r in map(orjson.loads, reversed(g_last))]
        got = [(r["stream"], r["seq"]) for r in page.entries]
        if got != want or store.count(query) != g_count:
            raise SystemExit(f"{backend} {label}: results differ from grep's")
        times = []
        for _ in range(QUERY_RUNS):
            t0 = time.perf_counter()
            store.query(query)
            times.append(time.perf_counter() - t0)
        p50, p99 = statistics.median(times), statistics.quantiles(times, n=100)[98]
        ratio = p99 / g_time
        rows.append((
            f"{backend} {label} ({g_count:,} matches)",
            f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms",
            f"grep {g_time * 1e3:.0f} ms",
            f"{ratio:.4f}x", "p99 <= 0.01x", "met" if ratio <= 0.01 else "NOT met",
        ))  # fmt: skip
    return rows


def rate_row(label: str, n: int, secs: float, floor: float, floor_label: str) -> Row:
    """A throughput row: records/s of both, the ratio and the >= 0.5x target."""
    ratio = floor / secs
    mine, base = f"{n / secs:,.0f} rec/s", f"{floor_label} {n / floor:,.0f} rec/s"
    return (label, mine, base, f"{ratio:.2f}x", ">= 0.5x", "met" if ratio >= 0.5 else "NOT met")


def export_csv(store: SQLiteStore, out: Path) -> float | str:
    """Seconds of ``export_records(store, LogQuery(), "csv", file)``, or why it was skipped."""
    name = "plexichat.core.logging.store.export"
    if importlib.util.find_spec(name) is None:
        return f"{name} does not exist yet: export not measured"
    export: Callable[..., object] = importlib.import_module(name).export_records
    with out.open("wb") as file:  # it writes to a binary stream
        t0 = time.perf_counter()
        export(store, LogQuery(), "csv", file)
        return time.perf_counter() - t0


def csv_floor(db: Path, out: Path) -> float:
    """Seconds of a bare ``csv.writer`` loop over a plain SELECT of the stored columns."""
    conn = sqlite3.connect(db)
    sql = f"SELECT {', '.join(CSV_COLS)} FROM records ORDER BY ts DESC, id DESC"
    t0 = time.perf_counter()
    with out.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_COLS)
        for row in conn.execute(sql):
            writer.writerow(row)
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed


def bench_postgres(
    logdir: Path, rows: list[FloorRow], greps: dict[str, Any], pg_url: str = PG_URL
) -> list[Row]:
    """Indexing (vs a bare ``executemany``) and queries on PostgreSQL, in a scratch schema."""
    from plexichat.core.logging.store.postgres import PostgresStore

    n, schema = len(rows), f"plexichat_bench_{os.getpid()}"
    admin = psycopg.connect(pg_url, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")
    url = pg_url + ("&" if "?" in pg_url else "?") + f"options=-csearch_path%3D{schema}"
    store = None
    try:
        store = PostgresStore(url)
        secs = index(store, logdir, n)
        print(f"postgres: indexed in {secs:.1f} s", flush=True)
        out = query_rows(store, "PostgreSQL", greps)
        with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
            ident = "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
            cur.execute(f"CREATE TABLE r ({ident}, {FLOOR_COLS.format('bigint')})")
            t0 = time.perf_counter()
            for i in range(0, n, BATCH):
                with conn.transaction():
                    cur.executemany(FLOOR_INSERT.format("%s"), rows[i : i + BATCH])
            floor = time.perf_counter() - t0
        label = "PostgreSQL indexing, Indexer.run_once()"
        return [rate_row(label, n, secs, floor, "psycopg executemany"), *out]
    finally:
        if store is not None:
            store.clear()
            store.close()
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def postgres_version(pg_url: str = PG_URL) -> str | None:
    """The server's version, or None when it cannot be reached."""
    try:
        with psycopg.connect(pg_url, connect_timeout=3) as conn:
            return str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    except psycopg.Error as exc:
        print(f"PostgreSQL at {pg_url} unreachable, skipped: {str(exc).strip()}")
        return None


def bench_sqlite(
    tmp: Path,
    logdir: Path,
    flat: Path,
    floor_rows: list[FloorRow],
    greps: dict[str, Any],
    rows: list[Row],
    notes: list[str],
) -> float:
    """Indexing, queries and export on SQLite (rows and notes appended); the CSV floor's s."""
    n = len(floor_rows)
    floor = sqlite_floor(tmp / "floor.db", floor_rows)
    t0 = time.perf_counter()
    parsed = list(parse_rows(flat))
    floor_parsed = time.perf_counter() - t0 + sqlite_floor(tmp / "floor2.db", parsed)
    del parsed
    store = SQLiteStore(f"sqlite:///{tmp / 'store.db'}")
    secs = index(store, logdir, n)
    print(f"sqlite: indexed in {secs:.1f} s", flush=True)
    rows.append(rate_row("SQLite indexing, Indexer.run_once()", n, secs, floor, "executemany"))
    info = rate_row("(info) same, floor incl. reading + orjson.loads", n, secs, floor_parsed,
                    "read+parse+executemany")  # fmt: skip
    rows.append((*info[:4], "-", "-"))
    alone = rate_row("(info) the search index alone: FTS5 executemany of the stored text", n,
                     search_index_alone(store, tmp / "fts.db"), floor, "executemany")  # fmt: skip
    rows.append((*alone[:4], "-", "-"))
    rows += query_rows(store, "SQLite", greps)
    exported = export_csv(store, tmp / "export.csv")
    csv_secs = csv_floor(store.path, tmp / "floor.csv")
    if isinstance(exported, str):
        print(exported)
        notes.append(f"Export: {exported}.")
    else:
        with (tmp / "export.csv").open("rb") as file:
            if (got := sum(1 for _ in file)) != n + 1:
                raise SystemExit(f"export: {got} lines, expected {n + 1} with the header")
        label = "SQLite export to CSV, export_records()"
        rows.append(rate_row(label, n, exported, csv_secs, "csv.writer loop"))
    store.close()
    return csv_secs


def main(argv: list[str] | None = None) -> int:
    """Run everything, print the report and (unless --no-write) write docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="records to generate")
    ap.add_argument("--quick", action="store_true", help="100_000 records")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    ap.add_argument("--only", choices=("sqlite", "postgres"), help="measure one backend only")
    ap.add_argument("--postgres-url", default=PG_URL, help="server (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.only == "sqlite":
        args.no_postgres = True
    n = 100_000 if args.quick else args.records
    command = " ".join([".venv/bin/python", "benchmarks/bench_store.py", *sys.argv[1:]])
    date = subprocess.run(["date", "-u"], capture_output=True, text=True, check=False).stdout
    pg_version = None if args.no_postgres else postgres_version(args.postgres_url)
    if args.only == "postgres" and pg_version is None:
        raise SystemExit("--only postgres: the PostgreSQL server is unreachable")
    began = time.perf_counter()
    rows: list[Row] = []
    notes: list[str] = []
    csv_secs: float | None = None
    with tempfile.TemporaryDirectory(prefix="plexibench-store-") as tmp_name:
        tmp = Path(tmp_name)
        (logdir := tmp / "logs").mkdir()
        flat = tmp / "records.jsonl"
        floor_rows = generate(n, logdir, flat)
        size = flat.stat().st_size
        segments = len(list(logdir.iterdir()))
        print(f"generated {n:,} records ({size / 1e6:.0f} MB, {segments} segments) in"
              f" {time.perf_counter() - began:.0f} s", flush=True)  # fmt: skip
        greps = grep_times(flat)
        if args.only != "postgres":
            csv_secs = bench_sqlite(tmp, logdir, flat, floor_rows, greps, rows, notes)
        if pg_version is not None:
            rows += bench_postgres(logdir, floor_rows, greps, args.postgres_url)
    total = time.perf_counter() - began
    head = ("measure", "PlexiChat", "baseline", "ratio", "target", "result")
    table = ["| " + " | ".join(r) + " |" for r in [head, tuple("---" for _ in head), *rows]]
    text = "\n".join([
        "## Store\n",
        f"- Date: {date.strip()}",
        "- Machine: {cpu}, {cores} cores, {ram} RAM".format(**machine()),
        f"- Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL"
        f" {pg_version or 'not measured'}",
        f"- Command: `{command}` ({total / 60:.1f} min in all; project source: git"
        f" `{source_state()}`)",
        f"- N = {n:,} generated records, {size / 1e6:.0f} MB of JSON lines in {segments}"
        " segments of two streams (ERROR ~3%, 7 levels, 9 categories, a three-key context;"
        " `random.Random(5)`).\n",
        *table,
        "",
        f"- Indexing floor: `executemany` of `(ts, level, message, raw)` into a table with no"
        f" index or FTS (WAL, synchronous=NORMAL), {BATCH:,} rows per transaction, rows"
        " prepared in memory beforehand; the info row adds reading and parsing the lines."
        " PostgreSQL: the same with psycopg's `executemany`.",
        "- The search-index row builds only the full-text index of the same records (the"
        " store's FTS5 definition, contentless, from their stored `(tid, message, logger,"
        " attrs)`, pre-built, same batches): the rate no indexer searching the same text can"
        " pass, since it must write this index as well as the rows.",
        f"- Queries: `store.query()` incl. parsing the 100 records; 1 untimed run, then"
        f" {QUERY_RUNS}. grep: wall time of the shell pipeline, `LC_ALL=C`, 1 warm-up, median"
        f" of {GREP_RUNS}; both return the same 100 records (checked), newest first / last:",
        *(f"  - `{g[1]}`" for g in greps.values()),
        *(
            [
                "- Export floor: `csv.writer` over `SELECT ts, level, category, logger, module,"
                " message, stream, seq, raw FROM records ORDER BY ts DESC, id DESC`"
                f" ({n / csv_secs:,.0f} rec/s)."
            ]
            if csv_secs is not None
            else []
        ),
        *(f"- {note}" for note in notes),
    ])  # fmt: skip
    print("\n" + text)
    if not args.no_write:
        write_section("store", text, at_top=False)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
