"""The integrations package: its public names, settings checks and request-id rules."""

from __future__ import annotations

import importlib

import pytest

from plexichat.core.logging import LoggingConfig
from plexichat.core.logging.integrations._checks import check_slow_query_threshold
from plexichat.core.logging.integrations._http import accept_request_id, normalize_method

EXPECTED = {
    "plexichat.core.logging.integrations": [
        "EndpointStats",
        "REQUEST_ID_HEADER",
        "endpoint_stats",
        "statement_kind",
        "statement_shape",
    ],
    "plexichat.core.logging.integrations.fastapi": [
        "LoggingMiddleware",
        "add_logging_middleware",
        "add_metrics_route",
        "route_template",
    ],
    "plexichat.core.logging.integrations.flask": ["EXTENSION_KEY", "add_metrics_route", "init_app"],
    "plexichat.core.logging.integrations.sqlalchemy": [
        "DEFAULT_LOGGER_NAME",
        "instrument_engine",
        "is_instrumented",
        "uninstrument_engine",
        "update_pool_metrics",
    ],
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_all_is_exactly_the_public_api(module_name: str) -> None:
    """__all__ equals the documented names, and each has a docstring when callable."""
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(EXPECTED[module_name])
    for name in module.__all__:
        obj = getattr(module, name)
        assert not callable(obj) or obj.__doc__, name


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(0, 0.0), ("0", 0.0), ("0 ms", 0.0), ("off", None), (None, None), ("2s", 2.0), (0.25, 0.25)],
)
def test_slow_query_threshold_values(value: object, seconds: float | None) -> None:
    """0 means every statement, off/None means none, durations are read in seconds."""
    assert check_slow_query_threshold(value) == seconds


@pytest.mark.parametrize("value", [-1, "later", True])
def test_bad_slow_query_threshold_names_the_value(value: object) -> None:
    """A bad threshold setting fails with the value and the accepted forms."""
    with pytest.raises(ValueError, match=r"slow_query_threshold.*500 ms"):
        LoggingConfig.model_validate({"slow_query_threshold": value})


@pytest.mark.parametrize("value", ["health", 42, ["/ok", 3]])
def test_bad_exclude_paths_name_the_value(value: object) -> None:
    """Excluded paths must be text starting with /; the message shows the bad entry."""
    with pytest.raises(ValueError, match="http_exclude_paths"):
        LoggingConfig.model_validate({"http_exclude_paths": value})


def test_exclude_paths_accept_none_and_dedupe() -> None:
    """None means no exclusions; repeated paths are kept once, in order."""
    assert LoggingConfig.model_validate({"http_exclude_paths": None}).http_exclude_paths == []
    paths = LoggingConfig(http_exclude_paths=["/b", " /a ", "/b"]).http_exclude_paths
    assert paths == ["/b", "/a"]


def test_request_id_rules() -> None:
    """Safe ids are kept; absent ones generated; unsafe ones replaced and flagged."""
    assert accept_request_id("abc-1") == ("abc-1", False)
    generated, replaced = accept_request_id(None)
    assert (len(generated), replaced) == (32, False)
    assert accept_request_id("")[1] is False
    assert accept_request_id("a\nb")[1] is True


def test_client_chosen_methods_are_bounded() -> None:
    """Standard methods are upper-cased; anything else becomes OTHER (a bounded tag)."""
    assert [normalize_method(m) for m in ("get", "PATCH", "BREW", "x" * 50)] == [
        "GET",
        "PATCH",
        "OTHER",
        "OTHER",
    ]
