"""The event: record schema, key order, hostile input, exceptions, trace ids, both paths.

Every test reads the JSON lines the file sink wrote (the truth) unless it is about what
stdlib handlers (``caplog``) see. "Fast path" means only the PlexiChat handler is on the
root logger (no ``LogRecord`` is made); "stdlib path" means another handler is present.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any, NoReturn, cast
from uuid import UUID

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plexichat.core.logging import (
    LogCategory,
    PlexiLogger,
    bind_context,
    configure_logging,
    flush_logging,
    get_logger,
    get_logging_manager,
    log_context,
)
from plexichat.core.logging._core.event import to_json
from tests.helpers import only_plexi_handler

# --- helpers ---------------------------------------------------------------------------------

ORDER = (
    "timestamp",
    "level",
    "category",
    "message",
    "module",
    "function",
    "line",
    "context",
    "metadata",
    "performance_data",
    "logger",
    "severity_number",
    "exception",
    "stack",
    "trace_id",
    "span_id",
    "stream",
    "seq",
    "tag",  # the integrity tag, when present, comes last
)
REQUIRED = (
    "timestamp",
    "level",
    "category",
    "message",
    "module",
    "function",
    "line",
    "logger",
    "severity_number",
    "stream",
    "seq",
)
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LEVELS = {
    "trace": ("TRACE", 1),
    "debug": ("DEBUG", 5),
    "info": ("INFO", 9),
    "warning": ("WARNING", 13),
    "error": ("ERROR", 17),
    "critical": ("CRITICAL", 21),
    "security": ("SECURITY", 22),
    "audit": ("AUDIT", 23),
}
PATHS = ("fast", "stdlib")
MODULE = Path(__file__).stem


def _configure(directory: Path, **overrides: Any) -> PlexiLogger:
    """Files only, written synchronously, everything from TRACE up; integrity off, so the
    lines are exactly the serialized events (sealing is tested in tests/integrity)."""
    configure_logging(
        directory=directory,
        console_enabled=False,
        non_blocking=False,
        level="TRACE",
        **{"integrity_enabled": False, **overrides},
    )
    return get_logger("events")


def _raw(directory: Path) -> bytes:
    """All bytes of the .jsonl segments in write order (one stream, one process)."""
    flush_logging()
    return b"".join(p.read_bytes() for p in sorted(directory.glob("*.jsonl")))


def _lines(directory: Path) -> list[bytes]:
    data = _raw(directory)
    assert data.endswith(b"\n") or not data
    return data.split(b"\n")[:-1]


def _records(directory: Path) -> list[dict[str, Any]]:
    records = []
    for line in _lines(directory):
        record = orjson.loads(line)
        assert isinstance(record, dict)
        records.append(record)
    return records


def _last(directory: Path) -> dict[str, Any]:
    return _records(directory)[-1]


def _assert_schema(record: dict[str, Any]) -> None:
    keys = list(record)
    assert [k for k in keys if k not in ORDER] == [], keys
    assert keys == [k for k in ORDER if k in record], keys
    assert all(k in record for k in REQUIRED), keys
    assert TIMESTAMP.match(record["timestamp"]), record["timestamp"]
    assert isinstance(record["message"], str)
    assert isinstance(record["line"], int)
    assert isinstance(record["seq"], int)


class _Recorder(logging.Handler):
    """A stdlib handler that keeps records (does not format, so it never raises)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _fast() -> Iterator[list[logging.LogRecord]]:
    """Only the PlexiChat handler is attached; no LogRecord may be created."""
    created: list[logging.LogRecord] = []
    init = logging.LogRecord.__init__

    def counting(self: logging.LogRecord, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        created.append(self)

    # counted in LogRecord itself: a custom record factory makes logging take the stdlib
    # path (the factory may add attributes), so it cannot be the counter
    logging.LogRecord.__init__ = counting  # type: ignore[method-assign]
    try:
        with only_plexi_handler():
            assert logging.getLogger().handlers == [get_logging_manager().handler]
            yield created
    finally:
        logging.LogRecord.__init__ = init  # type: ignore[method-assign]


@contextmanager
def _stdlib() -> Iterator[list[logging.LogRecord]]:
    """A second (non-raising) stdlib handler is attached, so calls build LogRecords."""
    recorder = _Recorder()
    root = logging.getLogger()
    with only_plexi_handler():
        root.addHandler(recorder)
        try:
            yield recorder.records
        finally:
            root.removeHandler(recorder)


def _path(kind: str) -> AbstractContextManager[list[logging.LogRecord]]:
    return _fast() if kind == "fast" else _stdlib()


def _here() -> int:
    """The line number of the caller (use as ``line = _here() + 1`` before the log call)."""
    frame = inspect.currentframe()
    assert frame is not None
    assert frame.f_back is not None
    return frame.f_back.f_lineno


def _log_from_helper(logger: PlexiLogger, message: str) -> None:
    logger.info(message, stacklevel=2)


# --- hostile values ----------------------------------------------------------------------------


class ReprRaises:
    """An object whose __repr__ raises."""

    def __repr__(self) -> str:
        raise RuntimeError("repr failed")


class StrRaises:
    """An object whose __str__ raises (its repr is fine)."""

    def __str__(self) -> str:
        raise RuntimeError("str failed")


class BothRaise:
    """Neither __repr__ nor __str__ works."""

    def __repr__(self) -> str:
        raise ValueError("repr failed")

    def __str__(self) -> str:
        raise ValueError("str failed")


class SurrogateRepr:
    """An object whose repr is not valid UTF-8."""

    def __repr__(self) -> str:
        return "<\udc80>"


class UnprintableError(Exception):
    """An exception whose own __str__ raises."""

    def __str__(self) -> str:
        raise RuntimeError("exception str failed")


class StrRaisesUnprintable:
    """__str__ raises an exception that cannot be printed either."""

    def __str__(self) -> NoReturn:
        raise UnprintableError


class ClassRaises:
    """Even isinstance() on it raises (a proxy whose ``__class__`` lookup fails)."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("no class outside a request")


class HostileStr(str):
    """A str subclass whose __str__ raises."""

    __slots__ = ()

    def __str__(self) -> str:
        raise RuntimeError("hostile str")


class HostileInt(int):
    """An int subclass whose __int__ and comparisons raise."""

    def __int__(self) -> int:
        raise RuntimeError("hostile int")

    def __lt__(self, other: object) -> bool:
        raise RuntimeError("hostile compare")

    def __le__(self, other: object) -> bool:
        raise RuntimeError("hostile compare")


class HostileFloat(float):
    """A float subclass (not native to orjson) whose __repr__ and __float__ raise."""

    def __repr__(self) -> str:
        raise RuntimeError("hostile float repr")

    def __float__(self) -> float:
        raise RuntimeError("hostile float")


class BrokenMapping(Mapping[str, object]):
    """A Mapping whose iteration and lookups raise."""

    def __getitem__(self, key: str) -> object:
        raise RuntimeError("broken getitem")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("broken iter")

    def __len__(self) -> int:
        return 1


def _cyclic_dict(inner: object) -> dict[str, object]:
    d: dict[str, object] = {"inner": inner}
    d["self"] = d
    return d


def _cyclic_list(inner: object) -> list[object]:
    items: list[object] = [inner]
    items.append(items)
    return items


ANY_CHAR = st.characters(codec=None, categories=None, exclude_categories=())
"""Every code point: lone surrogates, controls, U+2028/2029, NUL included."""
SPECIAL_CHARS = st.sampled_from(
    ["\n", "\r", "\u2028", "\u2029", "\x00", "\x1b", "\ud800", "\udfff"]
)
TEXT = st.text(st.one_of(ANY_CHAR, SPECIAL_CHARS), max_size=40)
RESERVED = (
    "name",
    "message",
    "msg",
    "args",
    "levelname",
    "levelno",
    "asctime",
    "exc_info",
    "stack_info",
    "created",
    "module",
    "funcName",
    "lineno",
    "timestamp",
    "level",
    "logger",
    "line",
    "function",
    "severity_number",
    "exception",
    "stack",
    "trace_id",
    "span_id",
    "stream",
    "seq",
    "tag",
    "plexi_reserved",
)
STRUCTURED = ("category", "context", "metadata", "performance_data")
HASHABLE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=2**64, max_value=2**80),
    st.floats(),
    TEXT,
    st.binary(max_size=8),
    st.tuples(st.integers(), TEXT),
)
SCALARS = st.one_of(
    HASHABLE,
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    st.builds(lambda: 10**5000),  # more digits than int-to-str allows
    st.sampled_from(list(LogCategory)),
    st.builds(ReprRaises),
    st.builds(StrRaises),
    st.builds(BothRaise),
    st.builds(StrRaisesUnprintable),
    st.builds(ClassRaises),
    TEXT.map(HostileStr),
    st.integers().map(HostileInt),
    st.floats().map(HostileFloat),
    st.builds(BrokenMapping),
    st.builds(SurrogateRepr),
    st.sets(HASHABLE, max_size=3),
    st.frozensets(HASHABLE, max_size=3),
)
DICT_KEYS = st.one_of(HASHABLE, st.builds(ReprRaises), st.builds(BothRaise))
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(DICT_KEYS, children, max_size=3),
        st.builds(_cyclic_dict, children),
        st.builds(_cyclic_list, children),
    ),
    max_leaves=8,
)
FORMATS = st.sampled_from(["%s", "%d", "%s %s", "%(a)s", "%", "%%", "%.2f", "%c", "%r %x", ""])
MESSAGES = st.one_of(
    TEXT,
    st.builds(lambda a, b: a + b, FORMATS, TEXT),
    SCALARS,  # a non-str msg, as stdlib allows
)
# Arguments: anything, a lone ClassRaises included (stdlib's LogRecord.__init__ raises on
# it; PlexiLogger then builds the record with the message pre-formatted).
ARGS = st.lists(VALUES, max_size=3).map(tuple)
EXTRA_KEYS = st.one_of(
    st.sampled_from(RESERVED + STRUCTURED), TEXT, st.integers(), st.none(), st.booleans()
)
EXTRAS = st.one_of(st.none(), st.dictionaries(EXTRA_KEYS, VALUES, max_size=5))
# Keyword fields: any str name except the parameters of the logging methods themselves.
PARAMETERS = {"self", "msg", "exc_info", "stack_info", "stacklevel", "extra"}
FIELD_NAMES = st.one_of(st.sampled_from(RESERVED + STRUCTURED), TEXT).filter(
    lambda k: k not in PARAMETERS
)
FIELDS = st.dictionaries(FIELD_NAMES, VALUES, max_size=3)
CALLS = st.lists(
    st.tuples(st.sampled_from(sorted(LEVELS)), MESSAGES, ARGS, EXTRAS, FIELDS),
    min_size=1,
    max_size=3,
)
HOSTILE = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check_calls(log_dir: Path, calls: list[tuple[str, Any, Any, Any, Any]], kind: str) -> None:
    logger = get_logger("hostile")
    before = _raw(log_dir).count(b"\n")
    with _path(kind) as records:
        for method, msg, args, extra, fields in calls:
            getattr(logger, method)(msg, *args, extra=extra, **fields)
    data = _raw(log_dir)
    assert data.count(b"\n") == before + len(calls)
    lines = data.split(b"\n")[before:-1]
    assert len(lines) == len(calls)
    for line, (method, *_) in zip(lines, calls, strict=True):
        record = orjson.loads(line)
        assert isinstance(record, dict)
        _assert_schema(record)
        assert (record["level"], record["severity_number"]) == LEVELS[method]
        assert record["logger"] == "hostile"
    assert len(records) == (0 if kind == "fast" else len(calls))


# --- hostile input: exactly one valid JSON line per call, never an exception ----------------


@HOSTILE
@given(calls=CALLS)
def test_hostile_input_gives_one_json_line_per_call_fast_path(
    log_dir: Path, calls: list[tuple[str, Any, Any, Any, Any]]
) -> None:
    """Fast path: any message, args, extra and fields give exactly one valid JSON line."""
    if not get_logging_manager().configured:
        _configure(log_dir)
    _check_calls(log_dir, calls, "fast")


@HOSTILE
@given(calls=CALLS)
def test_hostile_input_gives_one_json_line_per_call_stdlib_path(
    log_dir: Path, calls: list[tuple[str, Any, Any, Any, Any]]
) -> None:
    """Stdlib path: any message, args, extra and fields give exactly one valid JSON line."""
    if not get_logging_manager().configured:
        _configure(log_dir)
    _check_calls(log_dir, calls, "stdlib")


@pytest.mark.parametrize("kind", PATHS)
def test_one_megabyte_strings_are_written_whole(log_dir: Path, kind: str) -> None:
    """A 1 MB message, argument and extra value are written intact in one line."""
    logger = _configure(log_dir)
    big = "x" * (1 << 20)
    with _path(kind):
        logger.info(big)
        logger.info("arg %s", big, extra={"blob": big, "metadata": {"blob": big}})
    records = _records(log_dir)
    assert len(records) == 2
    assert records[0]["message"] == big
    assert records[1]["message"] == "arg " + big
    assert records[1]["context"] == {"blob": big}
    assert records[1]["metadata"] == {"blob": big}


@pytest.mark.parametrize("kind", PATHS)
def test_line_separators_and_controls_stay_inside_one_line(log_dir: Path, kind: str) -> None:
    """Newlines, U+2028/U+2029, NUL and ESC are escaped or kept inside a single line."""
    logger = _configure(log_dir)
    text = "a\nb\r\nc\u2028d\u2029e\x00f\x1bg"
    with _path(kind):
        logger.info(text, extra={"field": text})
    raw = _raw(log_dir)
    assert raw.count(b"\n") == 1
    assert b"\r" not in raw
    record = orjson.loads(raw)
    assert record["message"] == text
    assert record["context"] == {"field": text}


@pytest.mark.parametrize("kind", PATHS)
def test_lone_surrogates_become_escaped_text(log_dir: Path, kind: str) -> None:
    """Lone surrogates (not valid UTF-8) are written backslash-escaped, not dropped."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("bad \ud800 here", extra={"k\udfff": "v\ud800", "r": SurrogateRepr()})
    record = _last(log_dir)
    assert record["message"] == "bad \\ud800 here"
    assert record["context"] == {"k\\udfff": "v\\ud800", "r": "<\\udc80>"}
    assert record["module"] == MODULE


@pytest.mark.parametrize("kind", PATHS)
def test_cycles_are_cut_not_fatal(log_dir: Path, kind: str) -> None:
    """Self-referencing dicts and lists are written with the cycle marked."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("cycles", extra={"d": _cyclic_dict(1), "l": _cyclic_list(2)})
    assert _last(log_dir)["context"] == {
        "d": {"inner": 1, "self": "<cycle>"},
        "l": [2, "<cycle>"],
    }


@pytest.mark.parametrize("kind", PATHS)
def test_huge_ints_become_strings(log_dir: Path, kind: str) -> None:
    """Integers beyond 64 bits are kept as decimal strings; 64-bit ones stay numbers."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("n=%s", 2**70, extra={"big": 2**64, "small": 2**64 - 1, "neg": -(2**63) - 1})
    record = _last(log_dir)
    assert record["message"] == f"n={2**70}"
    assert record["context"] == {
        "big": str(2**64),
        "small": 2**64 - 1,
        "neg": str(-(2**63) - 1),
    }


@pytest.mark.parametrize("kind", PATHS)
def test_unrepresentable_objects_become_placeholders(log_dir: Path, kind: str) -> None:
    """A failing __str__ falls back to repr; a failing __repr__ to a placeholder naming the type."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("r=%s", ReprRaises(), extra={"r": ReprRaises(), "b": BothRaise()})
        logger.info(BothRaise())
        logger.info("s=%s", only_str_raises := StrRaises())
        logger.info(only_str_raises)
    first, second, third, fourth = _records(log_dir)
    assert first["message"].startswith("r=%s [unformatted args:")
    assert "RuntimeError" in first["message"]
    assert first["context"] == {
        "r": "<unrepresentable ReprRaises: RuntimeError>",
        "b": "<unrepresentable BothRaise: ValueError>",
    }
    assert second["message"] == "<unrepresentable BothRaise: ValueError>"
    assert third["message"] == (
        f"s=%s [unformatted args: ({only_str_raises!r},); RuntimeError: str failed]"
    )
    assert fourth["message"] == repr(only_str_raises)


@pytest.mark.parametrize("kind", PATHS)
def test_unprintable_exception_from_str_keeps_the_record(log_dir: Path, kind: str) -> None:
    """An argument whose __str__ raises an unprintable exception still gives its record."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("value %s", StrRaisesUnprintable())
    record = _last(log_dir)
    assert record["message"].startswith("value %s [unformatted args:")
    assert "UnprintableError" in record["message"]


@pytest.mark.parametrize("kind", PATHS)
def test_hostile_class_lookup_in_args_keeps_the_record(log_dir: Path, kind: str) -> None:
    """Both paths: an argument on which isinstance() raises still gives its record."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("proxy %s", ClassRaises(), extra={"p": ClassRaises()})
    record = _last(log_dir)
    _assert_schema(record)
    assert record["message"].startswith("proxy ")
    assert record["context"] == {"p": "<unserializable ClassRaises: RuntimeError>"}


@pytest.mark.parametrize("kind", PATHS)
def test_hostile_subclasses_of_str_int_float_are_written(log_dir: Path, kind: str) -> None:
    """str/int/float subclasses whose own methods raise are written by value."""
    logger = _configure(log_dir)
    values = {"s": HostileStr("abc"), "n": HostileInt(7), "f": HostileFloat(1.5)}
    with _path(kind):
        logger.info("plain", extra=values)
        # The lone surrogate forces the careful second serialization pass.
        logger.info("careful", extra={**values, "u": "\ud800"})
    plain, careful = _records(log_dir)
    _assert_schema(careful)
    assert plain["context"] == {"s": "abc", "n": 7, "f": 1.5}
    assert careful["context"] == {"s": "abc", "n": 7, "f": 1.5, "u": "\\ud800"}


@pytest.mark.parametrize("kind", PATHS)
def test_non_str_keys_bytes_and_sets(log_dir: Path, kind: str) -> None:
    """Non-str keys become strings, bytes their repr, sets and frozensets lists."""
    logger = _configure(log_dir)
    extra: dict[Any, object] = {
        7: "int key",
        "d": {1: "a", (1, 2): "b"},
        "b": b"\xff\x00",
        "s": {3},
        "f": frozenset({"q"}),
    }
    with _path(kind):
        logger.info("x", extra=extra)
    assert _last(log_dir)["context"] == {
        "7": "int key",
        "d": {"1": "a", "(1, 2)": "b"},
        "b": "b'\\xff\\x00'",
        "s": [3],
        "f": ["q"],
    }


@pytest.mark.parametrize("kind", PATHS)
def test_nested_keys_render_the_same_whatever_else_is_in_the_record(
    log_dir: Path, kind: str
) -> None:
    """None/bool keys read "null"/"true" even when another value forces the careful pass."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("plain", extra={"d": {None: 1, True: 2}})
        logger.info("careful", extra={"d": {None: 1, True: 2}, "u": "\ud800"})
    plain, careful = _records(log_dir)
    assert plain["context"]["d"] == {"null": 1, "true": 2}
    assert careful["context"]["d"] == {"null": 1, "true": 2}


def test_to_json_value_that_defeats_sanitizing_costs_only_itself() -> None:
    """to_json keeps every other field when even isinstance() on a value raises."""
    event = {
        "timestamp": "2024-01-15T10:30:45.123Z",
        "level": "INFO",
        "message": "m\ud800",
        "context": {"proxy": ClassRaises(), "ok": 1},
        "logger": "x",
    }
    record = orjson.loads(to_json(event))
    assert list(record) == ["timestamp", "level", "message", "context", "logger"]
    assert record["message"] == "m\\ud800"
    assert record["context"] == {"proxy": "<unserializable ClassRaises: RuntimeError>", "ok": 1}


@pytest.mark.parametrize("kind", PATHS)
def test_wrong_format_args_are_reported_inline(log_dir: Path, kind: str) -> None:
    """Too few, too many or mistyped %-args keep the message and show the args."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("need %s %s", 1)
        logger.info("none here", 1, 2)
        logger.info("number %d", "text")
        logger.info("mapping %(a)s", {"b": 1})
    messages = [r["message"] for r in _records(log_dir)]
    assert messages[0].startswith("need %s %s [unformatted args: (1,); TypeError:")
    assert messages[1].startswith("none here [unformatted args: (1, 2); TypeError:")
    assert messages[2].startswith("number %d [unformatted args: ('text',); TypeError:")
    assert messages[3].startswith("mapping %(a)s [unformatted args: {'b': 1}; KeyError:")


@pytest.mark.parametrize("bad_extra", [["not", "a", "mapping"], BrokenMapping()])
def test_unusable_extra_is_kept_under_metadata_fast_path(log_dir: Path, bad_extra: object) -> None:
    """Fast path: an extra= that is no usable mapping is kept (as its repr) under metadata."""
    logger = _configure(log_dir)
    with _fast():
        logger.info("x", extra=cast(Mapping[str, object], bad_extra))
    record = _last(log_dir)
    _assert_schema(record)
    assert record["metadata"] == {"extra": repr(bad_extra)}


@pytest.mark.parametrize("kind", PATHS)
def test_hostile_structured_values_keep_the_record(log_dir: Path, kind: str) -> None:
    """Unusable category/context/metadata/performance_data values are kept by repr."""
    logger = _configure(log_dir)
    proxy, broken = ClassRaises(), BrokenMapping()
    with _path(kind):
        logger.info(
            "x",
            extra={
                "category": proxy,
                "context": proxy,
                "metadata": broken,
                "performance_data": 5,
            },
        )
    record = _last(log_dir)
    _assert_schema(record)
    assert record["category"] == "<unprintable ClassRaises>"
    assert record["context"] == {"context": repr(proxy)}
    assert record["metadata"] == {"metadata": repr(broken)}
    assert record["performance_data"] == {"performance_data": 5}


@pytest.mark.parametrize("kind", PATHS)
def test_deep_nesting_is_cut_not_fatal(log_dir: Path, kind: str) -> None:
    """Nesting deeper than orjson allows is written, cut off with a marker."""
    logger = _configure(log_dir)
    deep: list[object] = []
    node = deep
    for _ in range(1000):
        child: list[object] = []
        node.append(child)
        node = child
    with _path(kind):
        logger.info("deep", extra={"deep": deep})
    value: object = _last(log_dir)["context"]["deep"]
    depth = 0
    while isinstance(value, list):
        (value,) = value
        depth += 1
    assert value == "<max depth>"
    assert 10 < depth < 1000


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize("careful", [False, True])
def test_common_types_serialize_the_same_in_both_passes(
    log_dir: Path, kind: str, careful: bool
) -> None:
    """Paths, datetimes, UUIDs, enums and read-only mappings render the same in both passes."""
    logger = _configure(log_dir)
    extra: dict[str, object] = {
        "p": PurePosixPath("/a/b"),
        "m": MappingProxyType({"k": 1}),
        "t": datetime(2024, 1, 15, 10, 30, 45, tzinfo=UTC),
        "id": UUID(int=1),
        "c": LogCategory.API,
    }
    if careful:
        extra["u"] = "\ud800"  # forces the careful second pass
    with _path(kind):
        logger.info("x", extra=extra)
    context = _last(log_dir)["context"]
    context.pop("u", None)
    assert context == {
        "p": "/a/b",
        "m": {"k": 1},
        "t": "2024-01-15T10:30:45+00:00",
        "id": "00000000-0000-0000-0000-000000000001",
        "c": "api",
    }


def test_plain_logger_non_mapping_plexi_reserved_keeps_the_record(log_dir: Path) -> None:
    """A plain stdlib logger's extra={"plexi_reserved": "..."} still gives its record."""
    _configure(log_dir)
    with _stdlib():
        logging.getLogger("third.party").info("x", extra={"plexi_reserved": "spoof"})
    record = _last(log_dir)
    assert record["logger"] == "third.party"
    assert record["metadata"] == {"plexi_reserved": "spoof"}


# --- schema ----------------------------------------------------------------------------------


def test_full_record_key_order(log_dir: Path) -> None:
    """Every schema key, in the schema's order, with stream and seq last."""
    from opentelemetry.sdk.trace import TracerProvider

    logger = _configure(log_dir)
    tracer = TracerProvider().get_tracer(__name__)
    with _fast(), tracer.start_as_current_span("op"):
        try:
            raise ValueError("boom")
        except ValueError:
            logger.error(
                "all",
                exc_info=True,
                stack_info=True,
                extra={
                    "category": LogCategory.API,
                    "context": {"c": 1},
                    "metadata": {"m": 2},
                    "performance_data": {"p": 3.5},
                },
            )
    record = _last(log_dir)
    assert [k for k in record if k != "tag"] == [k for k in ORDER if k != "tag"]


@pytest.mark.parametrize("kind", PATHS)
def test_empty_objects_are_omitted(log_dir: Path, kind: str) -> None:
    """A plain call has no context, metadata, performance_data, exception, stack or ids."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("plain", extra={"context": {}, "metadata": {}, "performance_data": {}})
    record = _last(log_dir)
    assert list(record) == list(REQUIRED)
    assert record["category"] == "system"


@pytest.mark.parametrize("kind", PATHS)
def test_timestamp_is_utc_with_milliseconds(log_dir: Path, kind: str) -> None:
    """The timestamp is ISO-8601 UTC with milliseconds and Z, whatever the local zone."""
    logger = _configure(log_dir)
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Kolkata"  # +05:30: a local time would be far off
    time.tzset()
    time.sleep(1.0 - time.time() % 1.0 + 0.01)  # a new second: nothing cached from before
    try:
        before = time.time()
        with _path(kind):
            logger.info("now")
        after = time.time()
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
    stamp = _last(log_dir)["timestamp"]
    assert TIMESTAMP.match(stamp), stamp
    when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    assert before - 0.001 <= when <= after


@pytest.mark.parametrize("kind", PATHS)
def test_message_has_args_interpolated(log_dir: Path, kind: str) -> None:
    """Positional and mapping %-args are interpolated as stdlib does."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("user %s logged in %d times", "ann", 3)
        logger.info("%(who)s did %(what)s", {"who": "bob", "what": "it"})
        logger.info("100%% of %s", "it")
        logger.info("no args, no interpolation: 100%% %s")
    assert [r["message"] for r in _records(log_dir)] == [
        "user ann logged in 3 times",
        "bob did it",
        "100% of it",
        "no args, no interpolation: 100%% %s",
    ]


@pytest.mark.parametrize("kind", PATHS)
def test_module_function_line_name_the_caller(log_dir: Path, kind: str) -> None:
    """module, function and line name the file stem, function and line of the call."""
    logger = _configure(log_dir)
    with _path(kind):
        line = _here() + 1
        logger.info("where")
    record = _last(log_dir)
    assert (record["module"], record["function"], record["line"]) == (
        MODULE,
        "test_module_function_line_name_the_caller",
        line,
    )


@pytest.mark.parametrize("kind", PATHS)
def test_stacklevel_two_names_the_helpers_caller(log_dir: Path, kind: str) -> None:
    """stacklevel=2 in a helper attributes the record to the helper's caller."""
    logger = _configure(log_dir)
    with _path(kind):
        line = _here() + 1
        _log_from_helper(logger, "via helper")
    record = _last(log_dir)
    assert (record["module"], record["function"], record["line"]) == (
        MODULE,
        "test_stacklevel_two_names_the_helpers_caller",
        line,
    )


@pytest.mark.parametrize("kind", PATHS)
def test_logger_adapter_names_the_adapters_caller(log_dir: Path, kind: str) -> None:
    """A call through logging.LoggerAdapter names the code that called the adapter."""
    logger = _configure(log_dir)
    adapter = logging.LoggerAdapter(logger, {"request_id": "r1"})
    with _path(kind):
        line = _here() + 1
        adapter.warning("adapted %s", 1)
    record = _last(log_dir)
    assert (record["module"], record["function"], record["line"]) == (
        MODULE,
        "test_logger_adapter_names_the_adapters_caller",
        line,
    )
    assert record["message"] == "adapted 1"
    assert record["context"] == {"request_id": "r1"}


@pytest.mark.parametrize("kind", PATHS)
@pytest.mark.parametrize("method", sorted(LEVELS))
def test_level_and_severity_number(log_dir: Path, kind: str, method: str) -> None:
    """Each level method writes its level name and OpenTelemetry severity number."""
    logger = _configure(log_dir)
    with _path(kind):
        getattr(logger, method)("lvl")
    record = _last(log_dir)
    assert (record["level"], record["severity_number"]) == LEVELS[method]


# --- structured fields -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PATHS)
def test_spec_example_structured_extra(log_dir: Path, kind: str) -> None:
    """The spec's "User login" example gives category security and its context/metadata."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info(
            "User login",
            extra={
                "category": LogCategory.SECURITY,
                "context": {"user_id": "user123", "ip_address": "192.168.1.100"},
                "metadata": {"login_method": "password", "success": True},
            },
        )
    record = _last(log_dir)
    assert record["message"] == "User login"
    assert record["category"] == "security"
    assert record["context"] == {"user_id": "user123", "ip_address": "192.168.1.100"}
    assert record["metadata"] == {"login_method": "password", "success": True}


@pytest.mark.parametrize("kind", PATHS)
def test_performance_data_is_top_level(log_dir: Path, kind: str) -> None:
    """extra={"performance_data": ...} lands as the top-level performance_data object."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("timed", extra={"performance_data": {"response_time": 0.045}})
    record = _last(log_dir)
    assert record["performance_data"] == {"response_time": 0.045}
    assert "context" not in record


@pytest.mark.parametrize("kind", PATHS)
def test_keyword_fields_go_into_context(log_dir: Path, kind: str) -> None:
    """logger.info(msg, category=..., user_id=...) sets category and context.user_id."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("User login", category=LogCategory.SECURITY, user_id="u1")
    record = _last(log_dir)
    assert record["category"] == "security"
    assert record["context"] == {"user_id": "u1"}


@pytest.mark.parametrize("kind", PATHS)
def test_unknown_extra_keys_go_into_context(log_dir: Path, kind: str) -> None:
    """Plain extra keys become context fields; extra["context"] wins on a clash."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("x", extra={"request_id": "r1", "user": "a", "context": {"user": "b"}})
    assert _last(log_dir)["context"] == {"request_id": "r1", "user": "b"}


@pytest.mark.parametrize("kind", PATHS)
def test_unknown_category_string_is_kept(log_dir: Path, kind: str) -> None:
    """A category string that is not a LogCategory is written exactly as given."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("a", extra={"category": "Billing-Ops"})
        logger.info("b", category="payments")
    assert [r["category"] for r in _records(log_dir)] == ["Billing-Ops", "payments"]


@pytest.mark.parametrize("kind", PATHS)
def test_reserved_extra_keys_move_under_metadata(log_dir: Path, kind: str) -> None:
    """Reserved names in extra go under metadata and never clobber the schema keys."""
    logger = _configure(log_dir)
    reserved = {
        "name": "n",
        "message": "spoofed message",
        "msg": "m",
        "args": "a",
        "levelname": "L",
        "asctime": "t",
        "timestamp": "1999",
        "level": "FAKE",
        "logger": "fake",
        "module": "fake_mod",
        "function": "fake_fn",
        "line": -1,
        "severity_number": 99,
        "exception": "none",
        "stream": "fake-stream",
        "seq": -5,
    }
    with _path(kind):
        line = _here() + 1
        logger.warning("real %s", "message", extra=reserved)
    record = _last(log_dir)
    _assert_schema(record)
    assert record["metadata"] == reserved
    assert "context" not in record
    assert record["message"] == "real message"
    assert (record["level"], record["severity_number"]) == ("WARNING", 13)
    assert (record["logger"], record["module"], record["line"]) == ("events", MODULE, line)
    assert record["function"] == "test_reserved_extra_keys_move_under_metadata"
    assert record["timestamp"] != "1999"
    assert record["stream"] != "fake-stream"
    assert record["seq"] == 1
    assert "exception" not in record


@pytest.mark.parametrize("kind", PATHS)
def test_per_call_context_wins_over_bound_context(log_dir: Path, kind: str) -> None:
    """Bound fields are merged in; per-call extra context and keyword fields win clashes."""
    logger = _configure(log_dir)
    bind_context(request_id="req_1", user="bound", tenant="bound")
    with _path(kind), log_context(tenant="block", region="eu"):
        logger.info("a", extra={"context": {"user": "extra"}})
        logger.info("b", user="keyword")
        logger.info("c")
    a, b, c = (r["context"] for r in _records(log_dir))
    assert a == {"request_id": "req_1", "user": "extra", "tenant": "block", "region": "eu"}
    assert b == {"request_id": "req_1", "user": "keyword", "tenant": "block", "region": "eu"}
    assert c == {"request_id": "req_1", "user": "bound", "tenant": "block", "region": "eu"}


def test_third_party_logger_extra_is_structured(log_dir: Path) -> None:
    """A plain stdlib logger's extra= gives category, context and interpolated message."""
    _configure(log_dir)
    line = _here() + 1
    logging.getLogger("third.party").warning("x %s", 1, extra={"category": "database", "q": 2})
    record = _last(log_dir)
    assert record["logger"] == "third.party"
    assert (record["category"], record["message"]) == ("database", "x 1")
    assert record["context"] == {"q": 2}
    assert (record["module"], record["line"]) == (MODULE, line)


# --- exceptions and stacks ---------------------------------------------------------------------


class CustomError(Exception):
    """An exception defined outside builtins (its type is module-qualified)."""


@pytest.mark.parametrize("kind", PATHS)
def test_exc_info_true_gives_exception_object(log_dir: Path, kind: str) -> None:
    """exc_info=True inside except writes type, message and the traceback lines."""
    logger = _configure(log_dir)
    with _path(kind):
        try:
            raise ValueError("bad value")
        except ValueError:
            logger.error("failed", exc_info=True)
    exc = _last(log_dir)["exception"]
    assert list(exc) == ["type", "message", "traceback"]
    assert (exc["type"], exc["message"]) == ("ValueError", "bad value")
    assert exc["traceback"][0] == "Traceback (most recent call last):"
    assert exc["traceback"][-1] == "ValueError: bad value"
    assert all(isinstance(t, str) and "\n" not in t for t in exc["traceback"])
    assert any('raise ValueError("bad value")' in t for t in exc["traceback"])


@pytest.mark.parametrize("kind", PATHS)
def test_exception_method_gives_exception_object(log_dir: Path, kind: str) -> None:
    """logger.exception() records the current exception at ERROR."""
    logger = _configure(log_dir)
    with _path(kind):
        try:
            raise CustomError("custom")
        except CustomError:
            logger.exception("caught %s", "it")
    record = _last(log_dir)
    assert (record["level"], record["message"]) == ("ERROR", "caught it")
    assert record["exception"]["type"] == f"{CustomError.__module__}.CustomError"
    assert record["exception"]["message"] == "custom"


@pytest.mark.parametrize("kind", PATHS)
def test_exc_info_instance_outside_except(log_dir: Path, kind: str) -> None:
    """exc_info=<exception instance> works outside an except block, with its traceback."""
    logger = _configure(log_dir)
    try:
        raise KeyError("k")
    except KeyError as caught:
        error = caught
    with _path(kind):
        logger.warning("later", exc_info=error)
    exc = _last(log_dir)["exception"]
    assert (exc["type"], exc["message"]) == ("KeyError", "'k'")
    assert any('raise KeyError("k")' in t for t in exc["traceback"])


@pytest.mark.parametrize("kind", PATHS)
def test_chained_exceptions_are_in_the_traceback(log_dir: Path, kind: str) -> None:
    """Explicit (from) and implicit chains both appear in the traceback lines."""
    logger = _configure(log_dir)
    with _path(kind):
        try:
            try:
                raise KeyError("root cause")
            except KeyError as e:
                raise ValueError("wrapped") from e
        except ValueError:
            logger.exception("explicit")
        try:
            try:
                raise OSError("first")
            except OSError:
                raise RuntimeError("second")  # noqa: B904 - the implicit chain is the point
        except RuntimeError:
            logger.exception("implicit")
    explicit, implicit = (r["exception"] for r in _records(log_dir))
    text = "\n".join(explicit["traceback"])
    assert "KeyError: 'root cause'" in text
    assert "The above exception was the direct cause of the following exception:" in text
    assert explicit["traceback"][-1] == "ValueError: wrapped"
    text = "\n".join(implicit["traceback"])
    assert "OSError: first" in text
    assert "During handling of the above exception, another exception occurred:" in text
    assert implicit["traceback"][-1] == "RuntimeError: second"


@pytest.mark.parametrize("kind", PATHS)
def test_no_exception_key_without_an_exception(log_dir: Path, kind: str) -> None:
    """exc_info=True with no exception being handled writes no exception key."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.error("nothing", exc_info=True)
        logger.error("off", exc_info=False)
    assert all("exception" not in r for r in _records(log_dir))


@pytest.mark.parametrize("kind", PATHS)
def test_stack_info_gives_stack_string(log_dir: Path, kind: str) -> None:
    """stack_info=True writes the call stack as one string ending at the logging call."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("where am I", stack_info=True)
    stack = _last(log_dir)["stack"]
    assert isinstance(stack, str)
    assert stack.startswith("Stack (most recent call last):\n")
    last_frame = stack.rstrip("\n").split("\n")[-2:]
    assert ", in test_stack_info_gives_stack_string" in last_frame[0]
    assert Path(__file__).name in last_frame[0]
    assert 'logger.info("where am I", stack_info=True)' in last_frame[1]


# --- OpenTelemetry -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PATHS)
def test_trace_and_span_ids_inside_an_active_span(log_dir: Path, kind: str) -> None:
    """Inside an OpenTelemetry span the record carries its trace_id and span_id as hex."""
    from opentelemetry.sdk.trace import TracerProvider

    logger = _configure(log_dir)
    tracer = TracerProvider().get_tracer(__name__)
    with _path(kind), tracer.start_as_current_span("op") as span:
        logger.info("traced")
        ctx = span.get_span_context()
    record = _last(log_dir)
    assert re.fullmatch(r"[0-9a-f]{32}", record["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", record["span_id"])
    assert record["trace_id"] == format(ctx.trace_id, "032x")
    assert record["span_id"] == format(ctx.span_id, "016x")


@pytest.mark.parametrize("kind", PATHS)
def test_no_trace_ids_outside_a_span(log_dir: Path, kind: str) -> None:
    """Without an active span (OpenTelemetry imported or not) there are no trace ids."""
    import opentelemetry.trace

    assert "opentelemetry.trace" in sys.modules
    assert not opentelemetry.trace.get_current_span().get_span_context().is_valid
    logger = _configure(log_dir)
    with _path(kind):
        logger.info("untraced")
    record = _last(log_dir)
    assert "trace_id" not in record
    assert "span_id" not in record


# --- both paths agree --------------------------------------------------------------------------


def _same_calls(logger: PlexiLogger) -> None:
    """One call site for both paths, so even line numbers and stacks agree."""
    logger.info("a %s %d", "x", 2, extra={"category": "api", "request_id": "r"}, user="u")
    logger.warning(
        "b",
        extra={
            "context": {"c": 1},
            "metadata": {"m": [1, 2]},
            "performance_data": {"p": 0.5},
            "name": "reserved",
            "timestamp": "reserved too",
        },
    )
    _log_from_helper(logger, "c")
    logging.LoggerAdapter(logger, {"ad": True}).error("d %(k)s", {"k": "v"})
    try:
        raise CustomError("e")
    except CustomError:
        logger.exception("e", stack_info=True)
    logger.security("f", category=LogCategory.SECURITY, ip="10.0.0.1")
    hostile: dict[Any, object] = {"d": _cyclic_dict("z"), "u": "\ud800", 1: 2**70}
    logger.audit("g", extra=hostile)
    logger.trace("h %s", ReprRaises())


def test_fast_and_stdlib_paths_write_the_same_records(log_dir: Path) -> None:
    """The same calls give the same records on both paths (timestamp and seq aside)."""
    logger = _configure(log_dir)
    bind_context(bound="yes")
    counts = []
    for kind in PATHS:
        with _path(kind) as created:
            _same_calls(logger)
        counts.append(len(created))
    records = _records(log_dir)
    assert len(records) == 16
    fast, stdlib = records[:8], records[8:]
    assert counts == [0, 8]  # the fast path made no LogRecord, the stdlib path one per call
    for a, b in zip(fast, stdlib, strict=True):
        assert list(a) == list(b)
        for key in ("timestamp", "seq"):
            a.pop(key)
            b.pop(key)
        assert a == b
    assert [r["message"] for r in fast[:4]] == ["a x 2", "b", "c", "d v"]
    assert fast[3]["function"] == "_same_calls"


# --- caplog -------------------------------------------------------------------------------------


def test_caplog_sees_structured_extra(log_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """caplog records carry record.category / record.context from extra=."""
    logger = _configure(log_dir)
    with caplog.at_level(logging.INFO):
        logger.info(
            "User login",
            extra={"category": LogCategory.SECURITY, "context": {"user_id": "user123"}},
        )
    (record,) = [r for r in caplog.records if r.name == "events"]
    assert record.getMessage() == "User login"
    assert record.__dict__["category"] == LogCategory.SECURITY
    assert record.__dict__["context"] == {"user_id": "user123"}
    assert _last(log_dir)["context"] == {"user_id": "user123"}


def test_caplog_sees_keyword_fields(log_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """caplog records carry record.category / record.context from keyword fields."""
    logger = _configure(log_dir)
    with caplog.at_level(logging.INFO):
        logger.info("User login", category=LogCategory.SECURITY, user_id="u1")
    (record,) = [r for r in caplog.records if r.name == "events"]
    assert record.getMessage() == "User login"
    assert record.__dict__["category"] == LogCategory.SECURITY
    assert record.__dict__["context"] == {"user_id": "u1"}
    file_record = _last(log_dir)
    assert (file_record["category"], file_record["context"]) == ("security", {"user_id": "u1"})


@pytest.mark.parametrize("kind", PATHS)
def test_non_mapping_extra_keeps_the_record(log_dir: Path, kind: str) -> None:
    """Both paths: extra= that is not a mapping is kept as its repr under metadata."""
    logger = _configure(log_dir)
    with _path(kind):
        logger.warning("odd extra", extra=["not", "a", "mapping"])  # type: ignore[arg-type]
    record = _last(log_dir)
    _assert_schema(record)
    assert record["message"] == "odd extra"
    assert record["metadata"] == {"extra": "['not', 'a', 'mapping']"}
