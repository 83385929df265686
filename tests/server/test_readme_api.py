"""The README's curl examples of the log server run as written against a real server."""

from __future__ import annotations

import csv
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from plexichat.core.logging import flush_logging, get_logger
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import LiveServer

README = Path(__file__).resolve().parents[2] / "README.md"


def _curl_block() -> str:
    """The bash block of the README that sets H and API and calls curl."""
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        if "API=http://127.0.0.1:8000/api/v2/logs" in block:
            return str(block)
    raise AssertionError("README has no curl block for the log server API")


def test_readme_curl_examples(live_server: LiveServer, tmp_path: Path) -> None:
    """Every curl line of the README answers as documented, with the server's real data."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    log = get_logger("readme.app")
    log.error("database timeout on orders", extra={"category": "api"})
    log.info("ok", extra={"category": "api", "context": {"user_id": "user123"}})
    live_server.wait_for(2, LogQuery(loggers=("readme.app",)))
    block = _curl_block()
    script = block.replace("http://127.0.0.1:8000/api/v2/logs", live_server.api)
    script = script.replace("-OJ", f"-o {tmp_path / 'export.csv'}")
    lines = [line for line in script.splitlines() if line.strip()]
    # run each curl separately so each status can be checked; joined continuation lines
    commands: list[str] = []
    setup: list[str] = []
    for line in lines:
        if commands and commands[-1].endswith("\\"):
            commands[-1] = commands[-1][:-1] + " " + line.strip()
        elif line.startswith("curl"):
            commands.append(line.split("  #")[0])
        else:
            setup.append(line)
    env = {**os.environ, "TOKEN": live_server.tokens["admin"]}
    outputs = {}
    for command in commands:
        full = "\n".join([*setup, command + " -s -w '\\n%{http_code}'"])
        done = subprocess.run(
            ["bash", "-c", full], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        body, _, status = done.stdout.rpartition("\n")
        outputs[command] = (int(status), body)
    cursor_cmd = next(c for c in outputs if "NEXT_CURSOR" in c)
    assert outputs[cursor_cmd][0] == 400  # the placeholder cursor is refused, clearly
    assert "unknown cursor" in outputs[cursor_cmd][1]
    others = {c: s for c, (s, _) in outputs.items() if c != cursor_cmd}
    assert all(s == 200 for s in others.values()), others
    errors = next(b for c, (_, b) in outputs.items() if "level=ERROR" in c)
    assert [e["message"] for e in orjson.loads(errors)["entries"]] == ["database timeout on orders"]
    by_user = next(b for c, (_, b) in outputs.items() if "user123" in c)
    assert [e["message"] for e in orjson.loads(by_user)["entries"]] == ["ok"]
    with (tmp_path / "export.csv").open(newline="") as fh:
        messages = [row["message"] for row in csv.DictReader(fh)]
    assert "database timeout on orders" in messages  # WARNING and above
    assert "ok" not in messages
    assert len(commands) >= 9


def test_readme_python_tail_example(live_server: LiveServer) -> None:
    """The README's Python WebSocket example prints a WARNING logged after it connected."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = next(b for b in blocks if "api/v2/logs/stream" in b)
    code = code.replace("ws://127.0.0.1:8000/api/v2/logs", live_server.ws)
    env = {**os.environ, "TOKEN": live_server.tokens["viewer"], "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while "readme tail example" not in line and time.monotonic() < deadline:
            get_logger("readme.tail").warning("readme tail example")
            flush_logging()
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
        assert "WARNING readme tail example" in line
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
