"""External witnesses: copies of every signed checkpoint kept outside the log directory.

A witness makes deleting or rolling back the whole log directory detectable: the verifier
compares the newest checkpoint the witness holds for each stream with the directory's.
A witness is a second directory (``checkpoints.jsonl`` appended there) or an ``http(s)://``
endpoint that receives each checkpoint as a JSON ``POST`` from a background thread (never
blocking the log writer; failures are reported once and retried with backoff).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from .._core.errors import error_reporter

__all__ = ["WITNESS_FILE", "HttpWitness", "make_witness", "read_witness"]

WITNESS_FILE = "checkpoints.jsonl"


def _append_line(path: Path, fields: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    try:
        os.write(fd, orjson.dumps(fields) + b"\n")
    finally:
        os.close(fd)


class DirectoryWitness:
    """Appends each checkpoint to ``checkpoints.jsonl`` in a second directory."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / WITNESS_FILE

    def __call__(self, fields: dict[str, Any]) -> None:
        """Record one checkpoint (failures are reported, never raised)."""
        try:
            _append_line(self.path, fields)
        except OSError as exc:
            error_reporter.report(
                "witness", f"cannot write the integrity witness {self.path}: {exc}"
            )


class HttpWitness:
    """POSTs each checkpoint as JSON to a URL from a background thread, with retries."""

    def __init__(self, url: str, *, capacity: int = 10_000, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout
        self._queue: deque[dict[str, Any]] = deque(maxlen=capacity)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0
        self.failures = 0

    def __call__(self, fields: dict[str, Any]) -> None:
        """Queue one checkpoint for sending."""
        self._queue.append(fields)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="plexichat-log-witness", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _post(self, fields: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url,
            data=orjson.dumps(fields),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()

    def _run(self) -> None:
        backoff = 0.5
        while True:
            self._wake.wait(30.0)
            self._wake.clear()
            while self._queue:
                fields = self._queue[0]
                try:
                    self._post(fields)
                except Exception as exc:  # noqa: BLE001 - network errors of every kind
                    self.failures += 1
                    error_reporter.report(
                        "witness", f"cannot send a checkpoint to the witness {self.url}: {exc}"
                    )
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 60.0)
                    continue
                self._queue.popleft()
                self.sent += 1
                backoff = 0.5

    def drain(self, timeout: float = 5.0) -> bool:
        """Wait until every queued checkpoint was sent (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.01)
        return not self._queue


def make_witness(target: str | None) -> Callable[[dict[str, Any]], None] | None:
    """The witness for a configured target: a directory or an http(s) URL (None: none)."""
    if not target:
        return None
    if target.startswith(("http://", "https://")):
        return HttpWitness(target)
    return DirectoryWitness(Path(target))


def read_witness(path: Path) -> Iterator[dict[str, Any]]:
    """The checkpoints a witness directory (or a file of checkpoint lines) holds."""
    path = Path(path)
    file = path / WITNESS_FILE if path.is_dir() else path
    with open(file, "rb") as fh:
        for raw in fh:
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(value, dict):
                yield value
