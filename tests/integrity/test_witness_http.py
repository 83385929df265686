"""An HTTP witness: checkpoints POSTed to a real local server, then used by verify."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging import configure_logging, get_logger, shutdown_logging
from plexichat.core.logging.integrity import verify_directory

from ._util import QUIET


class _Store:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.fail_first = 0


@pytest.fixture
def witness_server() -> Iterator[tuple[str, _Store]]:
    """A loopback HTTP server that keeps every POSTed body (the first ones may fail)."""
    store = _Store()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if store.fail_first > 0:
                store.fail_first -= 1
                self.send_response(503)
                self.end_headers()
                return
            store.bodies.append(body)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/checkpoints", store
    finally:
        server.shutdown()
        server.server_close()


def test_checkpoints_reach_an_http_witness_and_verify_against_it(
    tmp_path: Path, witness_server: tuple[str, _Store]
) -> None:
    """Every checkpoint is POSTed as JSON (a failing witness is retried); a copy of what the
    witness holds verifies the directory, and a rolled-back directory fails against it."""
    url, store = witness_server
    store.fail_first = 1
    log_dir = tmp_path / "logs"
    configure_logging(directory=log_dir, integrity_witness=url, rotation_size="2 KB", **QUIET)
    for i in range(30):
        get_logger("http").info("record %d", i)
    shutdown_logging()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kinds = [orjson.loads(b).get("reason") for b in store.bodies]
        if "close" in kinds:
            break
        time.sleep(0.05)
    checkpoints = [orjson.loads(b) for b in store.bodies]
    assert checkpoints[-1]["reason"] == "close"
    assert all(cp["$integrity"] == "checkpoint" and cp["sig"] for cp in checkpoints)
    exported = tmp_path / "witness.jsonl"
    exported.write_bytes(b"".join(b + b"\n" for b in store.bodies))
    assert verify_directory(log_dir, witness=exported).ok
    newest = sorted(log_dir.glob("*.jsonl"))[-1]
    newest.unlink()
    report = verify_directory(log_dir, witness=exported)
    assert not report.ok
