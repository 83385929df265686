"""Live-tail benchmark: latency from ``logger.info`` in another process to a WebSocket client.

Per configuration, in a fresh log directory:

1. the log server (``create_app`` + uvicorn on 127.0.0.1) runs in a subprocess, indexing the
   directory every ``index_interval`` seconds;
2. CLIENTS WebSocket clients (asyncio ``websockets``, this process, permessage-deflate on as
   in a browser) subscribe to ``/api/v2/logs/stream?logger=bench.*``;
3. a writer subprocess logs RATE records/s for DURATION s through ``get_logger`` (defaults of
   ``configure_logging`` except the directory and ``flush_interval``), each with its send
   time (``time.time()``) in ``context.sent``;
4. each client subtracts ``context.sent`` from its receive time.

The server also notes each record's age when its indexer stored it, which splits the
latency into the part before the live tail (writer, files, indexer) and the tail's own.

Configurations: the defaults (writer ``flush_interval`` 0.1 s: the file sink writes when
512 records are queued or 0.1 s passed; server ``index_interval`` 0.05 s), the defaults
before this benchmark (1.0 s / 0.1 s, for comparison), then the writer's ``flush_interval``
at 0.05 s and ``index_interval`` at 0.02 s. Target: p99 < 250 ms
at 2,000 records/s. With ``--write`` the table goes between ``<!-- bench:tail:start/end -->``
in ``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/bench_tail.py [--duration S] [--rate R] [--clients N]
[--quick] [--write]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from websockets.asyncio.client import connect

from _report import DOC, machine, source_state, write_section

HERE = Path(__file__).resolve()
CONFIGS = (  # label, writer flush_interval, server index_interval
    ("defaults (flush_interval 0.1 s, index_interval 0.05 s)", 0.1, 0.05),
    ("former defaults (flush 1.0 s, index 0.1 s)", 1.0, 0.1),
    ("flush 0.05 s + index_interval 0.02 s", 0.05, 0.02),
)
IDLE_END = 10.0  # seconds without a message after the writer ended: the rest is lost
TARGET_P99_MS = 250.0


def run_server(directory: str, port: str, index_interval: str, ages_file: str) -> None:
    """The server subprocess: the log server over ``directory`` on 127.0.0.1:``port``.

    A state listener notes each record's age when the indexer has stored it (the part of
    the latency before the live tail); they go to ``ages_file`` when the server stops.
    """
    import uvicorn

    from plexichat.core.logging.log_api import ServerSettings, create_app
    from plexichat.core.logging.server.deps import STATE_KEY
    from plexichat.core.logging.store.base import StoredRecord

    settings = ServerSettings(
        directory=Path(directory), index_interval=float(index_interval), rate_limit=0
    )
    app = create_app(settings)
    ages: list[float] = []

    def stored(batch: list[StoredRecord]) -> None:
        now = time.time()
        for record in batch:
            sent = (record.record.get("context") or {}).get("sent")
            if isinstance(sent, float):
                ages.append(now - sent)

    state = getattr(app.state, STATE_KEY)
    state.add_listener(stored)
    state.on_close(lambda: Path(ages_file).write_bytes(orjson.dumps(ages)))
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


def run_writer(directory: str, rate: str, duration: str, flush_interval: str) -> None:
    """The writer subprocess: ``rate`` records/s for ``duration`` s, send time in context."""
    from plexichat.core.logging import configure_logging, get_logger, shutdown_logging

    configure_logging(
        directory=directory, console_enabled=False, flush_interval=float(flush_interval)
    )
    log = get_logger("bench.tail")
    per_second, total = float(rate), int(float(rate) * float(duration))
    start = time.monotonic()
    for i in range(total):
        log.info("tail bench record %s", i, extra={"context": {"sent": time.time(), "i": i}})
        if i % 10 == 9:
            time.sleep(max(0.0, start + (i + 1) / per_second - time.monotonic()))
    shutdown_logging()


@dataclass
class Client:
    """What one client received."""

    latencies: list[float] = field(default_factory=list)
    ids: set[int] = field(default_factory=set)
    dropped: int = 0


async def _client(url: str, total: int, ready: asyncio.Event, result: Client) -> None:
    async with connect(url, proxy=None, max_queue=None) as ws:
        hello = orjson.loads(await ws.recv())
        if hello.get("type") != "subscribed":
            raise SystemExit(f"the server refused the client: {hello}")
        ready.set()
        last = [time.monotonic()]

        async def watchdog() -> None:  # ends the client IDLE_END s after its last message
            while time.monotonic() - last[0] < IDLE_END:
                await asyncio.sleep(1.0)
            await ws.close()

        guard = asyncio.create_task(watchdog())
        try:
            async for data in ws:
                now = time.time()
                last[0] = time.monotonic()
                message = orjson.loads(data)
                if message["type"] == "entry":
                    result.latencies.append(now - message["context"]["sent"])
                    result.ids.add(message["context"]["i"])
                    if len(result.ids) >= total:
                        return
                elif message["type"] == "dropped":
                    result.dropped += message["count"]
        finally:
            guard.cancel()


def _wait_for_port(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("the log server exited at start")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("the log server did not start in 30 s")


async def measure(
    flush: float, index: float, rate: float, duration: float, clients: int
) -> tuple[list[Client], list[float]]:
    """One configuration: server, clients, writer; what each client received, and each
    record's age when the server's indexer had stored it."""
    from plexichat.core.logging.server.auth import TokenStore

    with tempfile.TemporaryDirectory(prefix="plexibench-tail-") as tmp:
        directory = Path(tmp) / "logs"
        token, _ = TokenStore.for_directory(directory).create("viewer", name="bench")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        me = [sys.executable, str(HERE)]
        ages_file = Path(tmp) / "ages.json"
        server_args = [str(directory), str(port), str(index), str(ages_file)]
        server = subprocess.Popen([*me, "_server", *server_args])
        writer: subprocess.Popen[bytes] | None = None
        try:
            _wait_for_port(port, server)
            url = f"ws://127.0.0.1:{port}/api/v2/logs/stream?logger=bench.*&token={token}"
            total = int(rate * duration)
            results = [Client() for _ in range(clients)]
            readies = [asyncio.Event() for _ in range(clients)]
            tasks = [
                asyncio.create_task(_client(url, total, ready, result))
                for ready, result in zip(readies, results, strict=True)
            ]
            for ready in readies:
                await ready.wait()
            args = [str(directory), str(rate), str(duration), str(flush)]
            writer = subprocess.Popen([*me, "_writer", *args])
            await asyncio.gather(*tasks)
            await asyncio.to_thread(writer.wait, 60)
        finally:
            for process in (writer, server):
                if process is not None and process.poll() is None:
                    process.terminate()
                    process.wait(30)
        ages = orjson.loads(ages_file.read_bytes()) if ages_file.exists() else []
        return results, ages


def _cuts(values: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99 of ``values`` (seconds) in milliseconds."""
    cuts = statistics.quantiles([v * 1000 for v in values], n=100)
    return cuts[49], cuts[94], cuts[98]


def _row(label: str, results: list[Client], ages: list[float], total: int) -> tuple[str, ...]:
    latencies = [x for r in results for x in r.latencies]
    received = sum(len(r.ids) for r in results)
    lost = total * len(results) - received
    dropped = sum(r.dropped for r in results)
    if len(latencies) < 2 or len(ages) < 2:
        return (label, f"{received:,}", f"{lost:,}", f"{dropped:,}", *("-",) * 6)
    p50, p95, p99 = _cuts(latencies)
    i50, _, i99 = _cuts(ages)
    met = "met" if p99 < TARGET_P99_MS and lost == 0 else "NOT met"
    return (
        label, f"{received:,}", f"{lost:,}", f"{dropped:,}", f"{p50:.0f} ms", f"{p95:.0f} ms",
        f"{p99:.0f} ms", f"{max(latencies) * 1000:.0f} ms", f"{i50:.0f} / {i99:.0f} ms", met,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Measure every configuration, print the table (and with --write, save it)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_server":
        run_server(*argv[1:])
        return 0
    if argv and argv[0] == "_writer":
        run_writer(*argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of logging")
    ap.add_argument("--rate", type=float, default=2000.0, help="records per second")
    ap.add_argument("--clients", type=int, default=1, help="WebSocket clients")
    ap.add_argument("--quick", action="store_true", help="3 s per configuration")
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = ap.parse_args(argv)
    duration = 3.0 if args.quick else args.duration
    total = int(args.rate * duration)
    command = " ".join([".venv/bin/python", "benchmarks/bench_tail.py", *argv])
    rows = []
    for label, flush, index in CONFIGS:
        results, ages = asyncio.run(measure(flush, index, args.rate, duration, args.clients))
        rows.append(_row(label, results, ages, total))
        print(" | ".join(rows[-1]), flush=True)
    head = ("configuration", "received", "lost", "dropped", "p50", "p95", "p99", "max",
            "stored by the indexer p50 / p99",
            f"p99 < {TARGET_P99_MS:.0f} ms, none lost")  # fmt: skip
    table = ["| " + " | ".join(r) + " |" for r in [head, tuple("---" for _ in head), *rows]]
    text = "\n".join([
        "## Live tail\n",
        "- Machine: {cpu}, {cores} cores, {ram} RAM".format(**machine()),
        f"- Python {platform.python_version()}; command: `{command}` (project source: git"
        f" `{source_state()}`)",
        f"- {args.rate:,.0f} records/s for {duration:.0f} s ({total:,} records) from a writer"
        f" process, {args.clients} WebSocket client(s) in another process, the server in a"
        " third; latency = client receive time - `time.time()` at `logger.info`.\n",
        *table,
        "",
        "- \"stored by the indexer\": the record's age when the server's indexer had stored it"
        " (a state listener in the server); the live tail (hub, filter, send, client) adds"
        " the rest. The file sink writes a batch when 512 records are queued or"
        " `flush_interval` passed (at 2,000 records/s with the former 1 s default: every"
        " ~0.26 s); the indexer reads the files every `index_interval` plus the time of a"
        " pass; the hub is woken by each stored batch.",
    ])  # fmt: skip
    print("\n" + text)
    if args.write:
        write_section("tail", text, at_top=False)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
