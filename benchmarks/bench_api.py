"""API benchmark: ``GET /api/v2/logs/entries?limit=100`` of the log server vs a bare FastAPI.

Generates N realistic records (``bench_store.generate``: levels, categories, a three-key
context, some exceptions) as segment files, indexes them into the embedded SQLite store,
creates an admin token, then serves on loopback, each with uvicorn in its own subprocess
(one worker, same settings for both):

1. the real log server: ``create_app`` over that directory (rate limit off, indexer on; its
   own records, such as the audit record of each admin page holding security records, go to
   a separate directory so the served data stays the same);
2. a bare FastAPI app whose ``async`` route returns the same 100 records from memory
   (parsed once at start, ``orjson.dumps`` per request): the floor.

Both answers are checked equal first. The load generator is the same for both: wrk when
installed (``apt-get install wrk``), else an asyncio + httpx generator (keep-alive); a
warm-up, then a fixed duration with C connections, in rounds alternating between the two
servers (the median round counts). The target is >= 0.5x the floor's requests/s. Unless
``--no-write``, the results go between ``<!-- bench:api:start/end -->`` markers in
``docs/benchmarks.md``.

Run: ``.venv/bin/python benchmarks/bench_api.py [--records N] [--duration S] [--rounds R]
[--connections C] [--generator wrk|python] [--no-write]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from _report import DOC, machine, source_state, write_section
from bench_store import generate
from plexichat.core.logging._config.model import embedded_store_url
from plexichat.core.logging.server.auth import TokenStore
from plexichat.core.logging.store.base import LogQuery, is_sensitive
from plexichat.core.logging.store.indexer import Indexer
from plexichat.core.logging.store.sqlite import SQLiteStore

PATH = "/api/v2/logs/entries?limit=100"
START_TIMEOUT = 60.0


# --- the servers (run in a subprocess: ``bench_api.py --serve real|bare ...``) -----------


def serve(kind: str, directory: Path, port: int) -> None:
    """Serve the real log server or the bare floor on 127.0.0.1:``port`` until SIGINT."""
    import uvicorn

    if kind == "real":
        from plexichat.core.logging import configure_logging
        from plexichat.core.logging.log_api import ServerSettings, create_app

        configure_logging(directory=directory.parent / "server-logs", console_enabled=False)
        app = create_app(ServerSettings(directory=directory, rate_limit=0))
    else:
        from fastapi import FastAPI, Response

        page = orjson.loads((directory.parent / "page.json").read_bytes())
        app = FastAPI()

        @app.get("/api/v2/logs/entries")
        async def entries(limit: int = 100) -> Response:
            body = orjson.dumps({"entries": page["entries"][:limit], "next_cursor": page["next"]})
            return Response(body, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One server subprocess; ``with Server(...) as url:`` waits until it answers."""

    def __init__(self, kind: str, directory: Path, token: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        script = Path(__file__).resolve()
        self.cmd = [sys.executable, str(script), "--serve", kind, "--dir", str(directory)]
        self.cmd += ["--port", str(self.port)]
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(self.cmd)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if httpx.get(self.url + PATH, headers=self.headers).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{' '.join(self.cmd)} did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --- the load generators ----------------------------------------------------------------


def run_wrk(url: str, headers: dict[str, str], seconds: float, conns: int) -> dict[str, float]:
    """wrk's requests/s and latency percentiles (ms); fails on any non-2xx answer."""
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    out = subprocess.run([*cmd, url + PATH], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"wrk saw errors:\n{out}")
    units = {"us": 1e-3, "ms": 1.0, "s": 1e3}

    def latency(pct: str) -> float:
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        return float(found.group(1)) * units[found.group(2)] if found else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    return {"rps": float(rps.group(1)), "p50": latency("50"), "p99": latency("99")}


async def _python_load(
    url: str, headers: dict[str, str], seconds: float, conns: int
) -> dict[str, float]:
    limits = httpx.Limits(max_connections=conns, max_keepalive_connections=conns)
    times: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        end = time.perf_counter() + seconds

        async def worker() -> None:
            while (t0 := time.perf_counter()) < end:
                response = await client.get(PATH)
                if response.status_code != 200:
                    raise SystemExit(f"answer {response.status_code}: {response.text[:200]}")
                times.append(time.perf_counter() - t0)

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - began
    times.sort()
    p50, p99 = (times[min(len(times) - 1, int(q * len(times)))] * 1e3 for q in (0.5, 0.99))
    return {"rps": len(times) / elapsed, "p50": p50, "p99": p99}


def load(
    generator: str, url: str, headers: dict[str, str], seconds: float, conns: int
) -> dict[str, float]:
    """Warm up for a fifth of ``seconds`` (at least 2 s), then measure for ``seconds``."""
    warm = max(2.0, seconds / 5)
    if generator == "wrk":
        run_wrk(url, headers, warm, conns)
        return run_wrk(url, headers, seconds, conns)
    asyncio.run(_python_load(url, headers, warm, conns))
    return asyncio.run(_python_load(url, headers, seconds, conns))


# --- the run ------------------------------------------------------------------------------


def prepare(n: int, tmp: Path) -> tuple[Path, str]:
    """Generate and index ``n`` records; write the floor's page; return the directory and
    an admin token."""
    logdir = tmp / "logs"
    logdir.mkdir()
    began = time.perf_counter()
    generate(n, logdir, tmp / "records.jsonl")
    (tmp / "records.jsonl").unlink()
    store = SQLiteStore(embedded_store_url(logdir))
    report = Indexer(logdir, store).run_once()
    if report.records != n:
        raise SystemExit(f"indexer: expected {n} records, got {report}")
    page = store.query(LogQuery(limit=100))
    sensitive = sum(map(is_sensitive, page.entries))
    (tmp / "page.json").write_bytes(
        orjson.dumps({"entries": page.entries, "next": page.next_cursor, "sensitive": sensitive})
    )
    store.close()
    token = TokenStore.for_directory(logdir).create("admin", name="bench")[0]
    print(f"generated and indexed {n:,} records in {time.perf_counter() - began:.0f} s")
    return logdir, token


def same_page(real: str, bare: str, token: str) -> None:
    """The real server's page equals the floor's (the records and the cursor)."""
    auth = {"Authorization": f"Bearer {token}"}
    got = httpx.get(real + PATH, headers=auth, timeout=30).json()
    want = httpx.get(bare + PATH, timeout=30).json()
    if got != want:
        raise SystemExit("the real server and the floor return different pages")


def main(argv: list[str] | None = None) -> int:
    """Run the comparison, print the report and (unless --no-write) write docs/benchmarks.md."""
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    ap.add_argument("--records", type=int, default=100_000, help="records to generate")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="alternating measurements per side")
    ap.add_argument("--connections", type=int, default=16, help="concurrent connections")
    ap.add_argument("--generator", choices=("wrk", "python"), default=None)
    ap.add_argument("--no-write", action="store_true", help="do not write docs/benchmarks.md")
    ap.add_argument("--serve", choices=("real", "bare"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.serve:
        serve(args.serve, args.dir, args.port)
        return 0
    generator = args.generator or ("wrk" if shutil.which("wrk") else "python")
    command = " ".join([".venv/bin/python", "benchmarks/bench_api.py", *sys.argv[1:]])
    date = subprocess.run(["date", "-u"], capture_output=True, text=True, check=False).stdout
    secs, conns = args.duration, args.connections
    runs: dict[str, list[dict[str, float]]] = {"real": [], "bare": []}
    with tempfile.TemporaryDirectory(prefix="plexibench-api-") as tmp_name:
        logdir, token = prepare(args.records, Path(tmp_name))
        sensitive = orjson.loads((Path(tmp_name) / "page.json").read_bytes())["sensitive"]
        admin = {"Authorization": f"Bearer {token}"}
        with Server("real", logdir, token) as real, Server("bare", logdir, None) as bare:
            same_page(real, bare, token)
            for _ in range(args.rounds):  # alternating, so both sides see the same machine
                for side, url, headers in (("real", real, admin), ("bare", bare, {})):
                    runs[side].append(load(generator, url, headers, secs, conns))
                    print(f"{side}: {runs[side][-1]['rps']:,.0f} req/s", flush=True)
    results = {side: median_run(found) for side, found in runs.items()}
    ratio = results["real"]["rps"] / results["bare"]["rps"]
    head = ("measure", "PlexiChat", "baseline", "ratio", "target", "result")
    row = (
        f"`GET {PATH}`, admin token, {args.records:,} records", cell(results["real"]),
        f"bare FastAPI {cell(results['bare'])}", f"{ratio:.2f}x", ">= 0.5x",
        "met" if ratio >= 0.5 else "NOT met",
    )  # fmt: skip
    table = ["| " + " | ".join(r) + " |" for r in (head, tuple("---" for _ in head), row)]
    how = f"wrk 1 thread, {conns} connections" if generator == "wrk" else (
        f"asyncio + httpx, {conns} keep-alive connections"
    )  # fmt: skip
    spread = "; ".join(
        f"{side}: " + ", ".join(f"{r['rps']:,.0f}" for r in found) for side, found in runs.items()
    )
    text = "\n".join([
        "## Log server API\n",
        f"- Date: {date.strip()}",
        "- Machine: {cpu}, {cores} cores, {ram} RAM".format(**machine()),
        f"- Command: `{command}` (project source: git `{source_state()}`)",
        f"- {args.records:,} generated records indexed in the embedded SQLite store; uvicorn,"
        " one worker process per server, loopback; load: "
        f"{how}, warm-up {max(2.0, secs / 5):.0f} s, then {secs:.0f} s, {args.rounds} rounds"
        " alternating between the two servers; the median round is shown.\n",
        *table,
        "",
        f"- Every round, req/s: {spread}.",
        "- Floor: a FastAPI app with one `async` route returning the same 100 records (checked"
        " equal) from memory with `orjson.dumps`, no authentication.",
        "- The real server: bearer token check, no rate limit, the store query, the audit record"
        " of each admin page that holds security or audit records (written to another"
        f" directory; this page holds {sensitive}), indexer thread running.",
        *(["- The Python generator needs a core of its own and saturates near 1,000 req/s:"
           " install wrk for meaningful numbers."] if generator == "python" else []),
    ])  # fmt: skip
    print("\n" + text)
    if not args.no_write:
        write_section("api", text, at_top=False)
        print(f"wrote {DOC}")
    return 0


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median requests/s (its latencies with it)."""
    return sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]


def cell(result: dict[str, float]) -> str:
    """Requests/s and latency percentiles of one run."""
    return f"{result['rps']:,.0f} req/s (p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms)"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
