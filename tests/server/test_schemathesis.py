"""The OpenAPI schema holds: schemathesis generates requests for every operation of the API
(valid ones and invalid ones), sends them to a real server with an admin token, and checks
that no answer is a server error and that every answer is one the schema documents (status
code, content type, body shape).

The cases are drawn with ``operation.as_strategy()`` inside an ordinary test: the lazy
``schemathesis.pytest.from_fixture`` loader of schemathesis 4.32 does not run under pytest
9.2 (it sets ``node._nodeid``).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from plexichat.core.logging import get_logger
from plexichat.core.logging.security_logger import get_security_logger
from plexichat.core.logging.store.base import LogQuery
from tests.server.conftest import API, LiveServer

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 12
"""Cases per operation and generation mode (bounded: the whole test takes seconds)."""


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """No rate limit: schemathesis sends hundreds of requests a minute."""
    return {"rate_limit": 0}


def _seed(live: LiveServer) -> None:
    log = get_logger("schema.app")
    for i in range(5):
        log.warning("request %d slow", i, user_id=f"u{i}", extra={"metadata": {"n": i}})
    get_security_logger().log_event("login_failure", "HIGH", user_id="u1", ip_address="10.0.0.1")
    live.wait_for(5, LogQuery(loggers=("schema.app",)))


def test_every_operation_conforms_to_the_schema(live_server: LiveServer) -> None:
    """Positive and negative cases of every API operation: no 5xx, and every status, content
    type and body is documented."""
    _seed(live_server)
    headers = {"Authorization": f"Bearer {live_server.tokens['admin']}"}
    schema = schemathesis.openapi.from_url(live_server.api + "/openapi.json", headers=headers)
    schema.config.update(base_url=live_server.url)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    paths = {op.path for op in operations}
    assert {f"{API}/entries", f"{API}/security/events", f"{API}/export", f"{API}/stats"} <= paths
    tested = []
    for operation in operations:
        if not operation.path.startswith(API + "/"):
            continue
        strategy = st.one_of(
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=2 * EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        run()
        tested.append(operation.label)
    assert len(tested) >= 9, tested
