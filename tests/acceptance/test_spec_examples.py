"""The spec's examples, kept verbatim in ``examples/``, run unchanged as a user would run them."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from plexichat.core.logging import flush_logging
from plexichat.core.logging.testing import read_log_records

EXAMPLES = Path(__file__).parent / "examples"
SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "plexichat-logging-spec.md"
SPEC_BLOCKS = {
    "Basic Usage": "basic_usage.py",
    "Programmatic Configuration": "programmatic_configuration.py",
    "Debug Mode": "debug_mode.py",
    "Configuration File (YAML)": "logging_config.yaml",
    "Environment Variables": "environment.sh",
    "Security Event Logging": "security_event_logging.py",
    "Flask Integration": "flask_integration.py",
    "FastAPI Integration": "fastapi_integration.py",
    "Performance Monitoring": "performance_monitoring.py",
}


def _run(
    script: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("PLEXICHAT_LOG_")}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_examples_match_the_spec() -> None:
    """The files in examples/ are the spec's code blocks, byte for byte."""
    if not SPEC.exists():
        pytest.skip(f"spec not found at {SPEC} (it lives in ../shared beside the repo)")
    pattern = r"### ([^\n]+)\n\n```\w+\n(.*?)```"
    blocks = dict(re.findall(pattern, SPEC.read_text(), re.S))
    for title, name in SPEC_BLOCKS.items():
        assert (EXAMPLES / name).read_text() == blocks[title], name


def test_basic_usage_runs_unchanged(tmp_path: Path) -> None:
    """Basic Usage: console lines on stderr and the structured record in logs/."""
    done = _run((EXAMPLES / "basic_usage.py").read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    notices = [line for line in done.stderr.splitlines() if line.startswith("plexichat-logging:")]
    assert len(notices) == 1  # the first run in a directory creates its integrity keys
    assert "auditor.key OFF this host" in notices[0]
    lines = [line for line in done.stderr.splitlines() if line not in notices]
    assert [line.split("] ", 2)[2] for line in lines] == [
        "my_module: Application started",
        "my_module: Configuration file not found, using defaults",
        "my_module: Database connection failed",
        "my_module: User login",
    ]
    records = read_log_records(tmp_path / "logs")
    login = records[-1]
    assert list(login)[:10] == [
        "timestamp",
        "level",
        "category",
        "message",
        "module",
        "function",
        "line",
        "context",
        "metadata",
        "logger",
    ]
    assert login["category"] == "security"
    assert login["context"] == {"user_id": "user123", "ip_address": "192.168.1.100"}
    assert login["metadata"] == {"login_method": "password", "success": True}


def test_programmatic_configuration_runs_unchanged(tmp_path: Path) -> None:
    """Programmatic Configuration: the last profile set is the one printed."""
    done = _run((EXAMPLES / "programmatic_configuration.py").read_text(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Log level: WARNING", "Log directory: logs"]


def test_debug_mode_runs_unchanged(tmp_path: Path) -> None:
    """Debug Mode: after set_logging_profile("debug") TRACE records are written."""
    script = (EXAMPLES / "debug_mode.py").read_text() + (
        "\nfrom plexichat.core.logging import get_logger, flush_logging"
        "\nget_logger('dbg').trace('deep detail')\nflush_logging()\n"
    )
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[TRACE   ] dbg: deep detail" in done.stderr
    assert [r["level"] for r in read_log_records(tmp_path / "logs")] == ["TRACE"]


def test_yaml_file_example_applies(tmp_path: Path) -> None:
    """The spec's YAML file, named by PLEXICHAT_LOG_CONFIG_FILE, configures logging."""
    config = tmp_path / "logging_config.yaml"
    config.write_text((EXAMPLES / "logging_config.yaml").read_text())
    script = (
        "from plexichat.core.logging.config import get_logging_config, config_sources\n"
        "import json\nc = get_logging_config()\n"
        "print(json.dumps({'level': c.level, 'dir': str(c.directory),"
        " 'src': config_sources()['compression_enabled']}))\n"
    )
    done = _run(script, tmp_path, {"PLEXICHAT_LOG_CONFIG_FILE": str(config)})
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout) == {
        "level": "INFO",
        "dir": "logs",
        "src": f"file {config}",
    }


def test_environment_example_applies(tmp_path: Path) -> None:
    """Every variable of the spec's shell example is read and applied."""
    env: dict[str, str] = {}
    for line in (EXAMPLES / "environment.sh").read_text().splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = value
    script = (
        "import json\nfrom plexichat.core.logging.config import get_logging_config\n"
        "print(json.dumps(get_logging_config().model_dump(mode='json')))\n"
    )
    done = _run(script, tmp_path, env)
    assert done.returncode == 0, done.stderr
    cfg = orjson.loads(done.stdout)
    assert cfg["level"] == "INFO"
    assert cfg["directory"] == "logs"
    assert cfg["performance_enabled"] is True
    assert cfg["performance_interval"] == 30.0
    assert cfg["security_enabled"] is True
    assert cfg["audit_enabled"] is True
    assert cfg["alerts_enabled"] is True
    assert cfg["alert_email"] == "admin@example.com"
    assert len(env) == 10


def test_security_event_logging_runs_unchanged(tmp_path: Path) -> None:
    """Security Event Logging: a SECURITY record with the event in logs/.

    The spec's block uses ``datetime`` and ``timezone`` without importing them; the import
    it omits is put in front, the block itself runs as written.
    """
    script = (
        "from datetime import datetime, timezone\n"
        + (EXAMPLES / "security_event_logging.py").read_text()
    )
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "[SECURITY] plexichat.security: Security event login_failure (MEDIUM)" in done.stderr
    (record,) = [r for r in read_log_records(tmp_path / "logs") if r["level"] == "SECURITY"]
    assert record["category"] == "security"
    assert record["context"] == {"user_id": "user123", "ip_address": "192.168.1.100"}
    assert record["metadata"]["event_type"] == "login_failure"
    assert record["metadata"]["severity"] == "MEDIUM"
    assert record["metadata"]["details"] == {"reason": "invalid_password", "attempts": 3}
    assert record["function"] == "<module>"


def test_performance_monitoring_runs_unchanged(tmp_path: Path) -> None:
    """Performance Monitoring: the timer, the two metrics and the timed function are recorded.

    The spec's block queries an undefined ``database``; a stand-in is put in front, the block
    itself runs as written, and a check after it calls the decorated function and prints
    what was recorded.
    """
    stand_in = (
        "class _Database:\n"
        "    def query(self, sql):\n"
        "        return [sql]\n"
        "database = _Database()\n"
    )
    check = (
        "\nauthenticate_user('alice', 'secret')\n"
        "import json\n"
        "from plexichat.core.logging.performance_logger import performance_logger\n"
        "print(json.dumps(performance_logger.get_metrics()))\n"
    )
    script = stand_in + (EXAMPLES / "performance_monitoring.py").read_text() + check
    done = _run(script, tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = {m["name"]: m for m in orjson.loads(done.stdout.splitlines()[-1])}
    assert metrics["database_query"]["tags"] == {"table": "users"}
    assert metrics["database_query"]["unit"] == "seconds"
    assert metrics["database_query"]["count"] == 1
    assert (metrics["active_users"]["last"], metrics["active_users"]["unit"]) == (1250, "count")
    assert metrics["response_size"]["tags"] == {"endpoint": "/api/users"}
    assert metrics["response_size"]["last"] == 2048
    assert metrics["user_authentication"]["count"] == 1


def _exec_example(name: str) -> dict[str, Any]:
    """Run an example file in this process, as ``python example.py`` would, and return its
    globals (the Flask and FastAPI examples define ``app`` for a server to import)."""
    return runpy.run_path(str(EXAMPLES / name), run_name="example")


def test_flask_integration_example_serves_requests(tmp_path: Path) -> None:
    """Flask Integration: served by werkzeug, its before_request hook logs every request.

    The block defines no route; one is added to the app it builds, the block runs as written.
    """
    from tests.integrations.servers import serve_wsgi

    app = _exec_example("flask_integration.py")["app"]
    app.add_url_rule("/hello", "hello", lambda: "hi")
    with serve_wsgi(app) as url:
        assert httpx.get(f"{url}/hello").text == "hi"
    flush_logging()
    (record,) = [r for r in read_log_records(tmp_path / "logs") if r["logger"] == "flask_app"]
    assert record["message"] == "Request received"
    assert record["level"] == "INFO"
    assert record["category"] == "api"
    assert record["context"] == {"method": "GET", "path": "/hello", "ip_address": "127.0.0.1"}


def test_flask_integration_example_with_init_app(tmp_path: Path) -> None:
    """With init_app added, the example's record carries the request id; one access record."""
    from plexichat.core.logging.integrations.flask import init_app
    from tests.integrations.servers import serve_wsgi

    app = _exec_example("flask_integration.py")["app"]
    init_app(app)
    with serve_wsgi(app) as url:
        response = httpx.get(f"{url}/missing", headers={"X-Request-ID": "spec-flask"})
    assert response.headers["x-request-id"] == "spec-flask"
    flush_logging()
    records = read_log_records(tmp_path / "logs")
    (example,) = [r for r in records if r["logger"] == "flask_app"]
    (access,) = [r for r in records if r["logger"] == "plexichat.http"]
    assert example["context"]["request_id"] == "spec-flask"
    assert (access["level"], access["context"]["status_code"]) == ("WARNING", 404)


def test_fastapi_integration_example_serves_requests(tmp_path: Path) -> None:
    """FastAPI Integration: served by uvicorn, its middleware times and logs each request.

    The block defines no route; one is added to the app it builds, the block runs as written.
    """
    from plexichat.core.logging.metrics.registry import get_registry
    from tests.integrations.servers import serve_asgi

    get_registry().clear()
    app = _exec_example("fastapi_integration.py")["app"]

    @app.get("/items/{item_id}")  # type: ignore[untyped-decorator]
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    with serve_asgi(app) as url:
        assert httpx.get(f"{url}/items/3").json() == {"item_id": 3}
    flush_logging()
    (record,) = [r for r in read_log_records(tmp_path / "logs") if r["logger"] == "fastapi_app"]
    assert record["message"] == "Request processed"
    assert record["context"] == {"method": "GET", "path": "/items/3", "status_code": 200}
    (series,) = get_registry().series("request_processing")
    assert dict(series.tags) == {"endpoint": "/items/3"}
    assert series.sketch().count == 1


def test_fastapi_integration_example_with_logging_middleware(tmp_path: Path) -> None:
    """With add_logging_middleware added, the example's record carries the request id."""
    from plexichat.core.logging.integrations.fastapi import add_logging_middleware
    from tests.integrations.servers import serve_asgi

    app = _exec_example("fastapi_integration.py")["app"]
    add_logging_middleware(app)
    with serve_asgi(app) as url:
        response = httpx.get(f"{url}/nowhere", headers={"X-Request-ID": "spec-fastapi"})
    assert response.status_code == 404
    assert response.headers["x-request-id"] == "spec-fastapi"
    flush_logging()
    records = read_log_records(tmp_path / "logs")
    (example,) = [r for r in records if r["logger"] == "fastapi_app"]
    (access,) = [r for r in records if r["logger"] == "plexichat.http"]
    assert example["context"]["request_id"] == "spec-fastapi"
    assert example["context"]["status_code"] == 404
    assert access["context"]["route"] == "<unmatched>"
