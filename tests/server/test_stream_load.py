"""Load: 20 live-tail clients while records are logged at about 2,000 per second; every
client receives every record, in order, once (no ``dropped``)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from plexichat.core.logging import flush_logging, get_logger
from tests.server.conftest import LiveServer

CLIENTS = 20
RECORDS = 6000
RATE = 2000.0  # records per second
TIMEOUT = 120.0  # against hangs only

# Runs in a separate process (its own GIL, as real clients are): CLIENTS connections,
# "ready" once all are subscribed, then each reads until the last record and reports.
_CLIENTS = r"""
import asyncio, json, sys
from websockets.asyncio.client import connect

url, clients, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

async def client(ready):
    seqs, other = [], []
    async with connect(url, compression=None, max_queue=None, proxy=None) as ws:
        assert json.loads(await ws.recv())["type"] == "subscribed"
        ready.release()
        while len(seqs) < total:
            message = json.loads(await ws.recv())
            if message["type"] == "entry":
                seqs.append(message["context"]["i"])
            elif message["type"] != "heartbeat":
                other.append(message)
    return {"seqs": seqs, "other": other}

async def main():
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(client(ready)) for _ in range(clients)]
    for _ in range(clients):
        await ready.acquire()
    print("ready", flush=True)
    results = await asyncio.wait_for(asyncio.gather(*tasks), 300)
    print(json.dumps(results), flush=True)

asyncio.run(main())
"""


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """The default client queue (1,000 records) and heartbeat."""
    return {"heartbeat_seconds": 15.0}


@pytest.fixture(autouse=True)
def _quiet_protocol_logs() -> Iterator[None]:
    """No DEBUG record per WebSocket frame from uvicorn's protocol logger (the server logs
    into the directory it serves: each frame sent would add a record)."""
    protocol = logging.getLogger("uvicorn.error")
    old = protocol.level
    protocol.setLevel(logging.INFO)
    yield
    protocol.setLevel(old)


@pytest.mark.slow
def test_twenty_clients_at_2000_records_per_second_lose_nothing(live_server: LiveServer) -> None:
    """6,000 records at ~2,000/s reach each of 20 clients complete, in order, once."""
    url = f"{live_server.ws}/stream?logger=load.*&token={live_server.tokens['viewer']}"
    clients = subprocess.Popen(
        [sys.executable, "-c", _CLIENTS, url, str(CLIENTS), str(RECORDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert clients.stdout is not None
        assert clients.stdout.readline().strip() == "ready"
        log = get_logger("load.app")
        start = time.monotonic()
        for i in range(RECORDS):
            log.info("load record %s", i, extra={"context": {"i": i, "user_id": f"u{i % 50}"}})
            if i % 20 == 19:  # pace: about RATE records per second
                time.sleep(max(0.0, start + (i + 1) / RATE - time.monotonic()))
        flush_logging()
        out, _ = clients.communicate(timeout=TIMEOUT)
    finally:
        clients.kill()
        clients.wait()
    results = json.loads(out)
    assert len(results) == CLIENTS
    for result in results:
        assert result["other"] == []  # no dropped, no error
        assert result["seqs"] == list(range(RECORDS))
