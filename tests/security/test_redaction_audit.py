"""Redaction audit findings: linear value patterns, and secrets hidden in dataclasses, named
tuples, bytes, header pairs, objects written as their ``repr`` and URL passwords with "@".
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plexichat.core.logging import configure_logging, flush_logging, get_logger
from plexichat.core.logging._core.event import to_json
from plexichat.core.logging.security.redaction import REDACTED, Redactor, mask_secrets
from plexichat.core.logging.security.redaction_patterns import PATTERN_NAMES, ValueScanner
from plexichat.core.logging.testing import read_log_records

_PARSER: Any = importlib.import_module("re._parser")
_COMPILER: Any = importlib.import_module("re._compiler")
_C: Any = importlib.import_module("re._constants")
_PROBE = tuple(chr(i) for i in range(256))
_SINGLE = {_C.LITERAL, _C.NOT_LITERAL, _C.IN, _C.ANY}
_REPEATS = {_C.MIN_REPEAT, _C.MAX_REPEAT, _C.POSSESSIVE_REPEAT}


def _chars(item: Any, flags: int) -> frozenset[str] | None:
    """The (latin-1) characters one parsed item matches, or None when it is not a single
    character matcher."""
    if item[0] not in _SINGLE:
        return None
    state = _PARSER.State()
    state.flags = flags
    compiled = _COMPILER.compile(_PARSER.SubPattern(state, [item]), flags)
    return frozenset(ch for ch in _PROBE if compiled.fullmatch(ch))


def _restarts_inside_runs(
    items: Any, flags: int, prefix: list[frozenset[str]], guard: list[frozenset[str]]
) -> bool | None:
    """Whether the first unbounded repeat ``C*`` of the pattern can be reached from a start
    inside a run of ``C`` (everything matched before it fits in ``C``, and no leading
    negative lookbehind excludes ``C``): each position of a long run then rescans the run,
    which is quadratic. None: no unbounded repeat in ``items`` (``prefix`` grows)."""
    for op, av in items:
        if op is _C.AT or op is _C.ASSERT:
            continue
        if op is _C.ASSERT_NOT:
            direction, sub = av
            found = _chars(sub[0], flags) if direction == -1 and len(sub) == 1 else None
            if found is not None and not prefix:
                guard.append(found)
            continue
        if op is _C.SUBPATTERN or op is _C.ATOMIC_GROUP:
            result = _restarts_inside_runs(
                av[3] if op is _C.SUBPATTERN else av, flags, prefix, guard
            )
            if result is not None:
                return result
            continue
        if op is _C.BRANCH:
            consumed: set[str] = set()
            results = []
            for alternative in av[1]:
                own = list(prefix)
                results.append(_restarts_inside_runs(alternative, flags, own, list(guard)))
                for part in own[len(prefix) :]:
                    consumed |= part
            if any(results):
                return True
            if all(r is False for r in results):
                return False
            prefix.append(frozenset(consumed))
            continue
        if op in _REPEATS:
            _, high, sub = av
            chars = _chars(sub[0], flags) if len(sub) == 1 else None
            if high is _C.MAXREPEAT:
                if chars is None:
                    return True  # an unbounded repeated group: not analysed, so refused
                inside = all(before <= chars for before in prefix)
                return inside and not any(chars <= g for g in guard)
            if chars is None or high > 1:
                return False  # a bounded repeat: linear whatever follows
            prefix.append(chars)
            continue
        chars = _chars((op, av), flags)
        if chars is not None:
            prefix.append(chars)
    return None


def _scanner_regexes() -> list[tuple[str, Any]]:
    scanner = ValueScanner(PATTERN_NAMES, extra_keys=("ssn", "my-key", "x.y"))
    rules: tuple[tuple[Any, Any, Any], ...] = scanner._rules
    return [(name, regex) for name, (_, regex, _) in zip(PATTERN_NAMES, rules, strict=True)]


def test_no_value_pattern_rescans_a_run_from_each_of_its_positions() -> None:
    """Structural guard against quadratic scanning (no timing): no pattern may start with, or
    reach after characters of the same class only, an unbounded repeat a match attempt could
    begin inside of. The old ``\\b[\\w-]*?password``, ``\\b[A-Za-z][A-Za-z0-9+.-]*://``,
    ``\\beyJ[A-Za-z0-9_-]{2,}`` and ``[A-Za-z0-9._%+-]+@`` did."""
    risky = [
        name
        for name, regex in _scanner_regexes()
        if _restarts_inside_runs(_PARSER.parse(regex.pattern, regex.flags), regex.flags, [], [])
    ]
    assert risky == []


UUIDS = "-".join(str(uuid.UUID(int=i * 7919)) for i in range(60))
SLUG = "/" + "-".join(["word"] * 800)


@pytest.mark.parametrize(
    ("text", "expected_tail"),
    [
        ("a-" * 4000 + " secret=1", " secret=[REDACTED:key_value]"),
        ("batch " + UUIDS + " token: abc", " token: [REDACTED:key_value]"),
        (SLUG + "?password=x", "?password=[REDACTED:key_value]"),
        ("a-" * 4000 + "password=1", "a-password=[REDACTED:key_value]"),
        ("a." * 4000 + " https://u:p@ss@h", " https://u:[REDACTED:url_credentials]@h"),
        ("eyJa-" * 1000 + " x", "eyJa- x"),
    ],
)
def test_hostile_runs_are_masked_exactly(text: str, expected_tail: str) -> None:
    """The audit's hostile strings come out correctly masked, the rest left as it was."""
    out = ValueScanner(PATTERN_NAMES).scan(text)
    assert out.endswith(expected_tail)
    assert out[: -len(expected_tail)] == text[: len(out) - len(expected_tail)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "dsn postgresql://admin:p@ssw0rd@db:5432/app",
            "dsn postgresql://admin:[REDACTED:url_credentials]@db:5432/app",
        ),
        (
            "smtp://me@mail.example:pa@ss:w@smtp.example/x@y",
            "smtp://me@mail.example:[REDACTED:url_credentials]@smtp.example/x@y",
        ),
        ("redis://:s3@cret@cache", "redis://:[REDACTED:url_credentials]@cache"),
        ("https://u:pw@host/a@b https://v:q@h", "https://u:[REDACTED:url_credentials]@host/a@b"
         " https://v:[REDACTED:url_credentials]@h"),
        ("https://user@host:8080/path", "https://user@host:8080/path"),
    ],
)  # fmt: skip
def test_url_password_is_masked_up_to_the_last_at_of_the_authority(
    text: str, expected: str
) -> None:
    """A password holding "@" (and a user name holding one) is masked whole."""
    assert ValueScanner(["url_credentials"]).scan(text) == expected


_RUN = st.text(alphabet="a-_.0/:=@ ", max_size=300)


@settings(max_examples=200, deadline=None)
@given(
    prefix=_RUN,
    secret=st.from_regex(r"[A-Za-z0-9]{6,12}@[A-Za-z0-9@]{0,6}", fullmatch=True),
)
def test_property_url_password_never_survives(prefix: str, secret: str) -> None:
    """Whatever run precedes it, a URL password (with "@" in it) is masked whole."""
    out = ValueScanner(PATTERN_NAMES).scan(f"{prefix} postgresql://admin:{secret}@db/app")
    assert secret not in out
    assert out.endswith("postgresql://admin:[REDACTED:url_credentials]@db/app")


@dataclasses.dataclass
class Login:
    """A form with a secret field."""

    user: str
    password: str


@dataclasses.dataclass(slots=True)
class SlotLogin:
    """The same, with ``__slots__`` (no ``__dict__``)."""

    user: str
    api_key: str
    _hidden: str = "private"


class Creds(NamedTuple):
    """A named tuple with a secret field."""

    user: str
    token: str


class Dsn(enum.Enum):
    """An enum whose value holds a URL password (orjson writes the value)."""

    MAIN = "postgresql://admin:hunter2@db/app"


class Opaque:
    """An object orjson cannot serialize: written as its repr."""

    def __repr__(self) -> str:
        return "Opaque(password=hunter2, dsn=redis://u:hunter2@cache)"


def _written(context: dict[str, Any]) -> Any:
    event: dict[str, Any] = {"message": "m", "context": context}
    return orjson.loads(to_json(Redactor()(event)))["context"]


def test_dataclass_and_named_tuple_fields_are_masked_as_written() -> None:
    """Dataclass fields (``__dict__`` or slots) and named-tuple fields are masked by name;
    a dataclass without secrets is kept as it is."""

    @dataclasses.dataclass
    class Point:
        x: int
        y: int

    point = Point(1, 2)
    event: dict[str, Any] = {"message": "m", "context": {"p": point, "n": 1, "f": Login("a", "b")}}
    assert Redactor()(event)["context"]["p"] is point
    assert _written({"form": Login("ann", "hunter2")}) == {
        "form": {"user": "ann", "password": REDACTED}
    }
    assert _written({"form": SlotLogin("ann", "sk_live_1")}) == {
        "form": {"user": "ann", "api_key": REDACTED}
    }
    assert _written({"c": [Creds("ann", "t0k")]}) == {"c": [{"user": "ann", "token": REDACTED}]}
    assert _written({"nested": {"deep": [Login("ann", "hunter2")]}}) == {
        "nested": {"deep": [{"user": "ann", "password": REDACTED}]}
    }
    assert mask_secrets({"form": Login("ann", "hunter2")}) == {
        "form": {"user": "ann", "password": REDACTED}
    }


def test_bytes_are_scanned_and_stay_bytes() -> None:
    """Bytes values are scanned as latin-1 text; masked bytes stay bytes (written as their
    repr, like any bytes), clean bytes are kept as they are."""
    clean = b"plain \xff bytes"
    out = Redactor()(
        {
            "message": "m",
            "context": {
                "auth": b"Bearer abcdefghijklmnop123",
                "buf": bytearray(b"password=hunter2 \xe9"),
                "clean": clean,
            },
        }
    )["context"]
    assert out["auth"] == b"Bearer [REDACTED:bearer]"
    assert out["buf"] == bytearray(b"password=[REDACTED:key_value] \xe9")
    assert type(out["buf"]) is bytearray
    assert out["clean"] is clean
    assert b"hunter2" not in to_json({"context": out})


def test_header_pairs_mask_their_value() -> None:
    """A 2-item list or tuple whose first item is a secret key (str or bytes) is a key/value
    pair: its value is masked, its name kept."""
    assert _written(
        {
            "asgi": [(b"authorization", b"Bearer abcdefghijklmnop123"), (b"cookie", b"sid=1")],
            "wsgi": [("Authorization", "Token abcdefghijk123"), ("X-Api-Key", "sk_live_123")],
            "json": [["set-cookie", "sid=2"], ["accept", "*/*"]],
            "one": ("password", ["hunter2"]),
        }
    ) == {
        "asgi": [["b'authorization'", REDACTED], ["b'cookie'", REDACTED]],
        "wsgi": [["Authorization", REDACTED], ["X-Api-Key", REDACTED]],
        "json": [["set-cookie", REDACTED], ["accept", "*/*"]],
        "one": ["password", REDACTED],
    }
    assert mask_secrets([("Authorization", "Token x")]) == [("Authorization", REDACTED)]
    assert mask_secrets({"tags": ("user", "admin")}) == {"tags": ("user", "admin")}


def test_objects_are_masked_as_the_serializer_writes_them() -> None:
    """An enum is masked by its value, any other object by the repr that will be written."""
    written = _written({"dsn": Dsn.MAIN, "obj": Opaque(), "when": uuid.UUID(int=1)})
    assert written == {
        "dsn": "postgresql://admin:[REDACTED:url_credentials]@db/app",
        "obj": "Opaque(password=[REDACTED:key_value], dsn=redis://u:[REDACTED:url_credentials]"
        "@cache)",
        "when": str(uuid.UUID(int=1)),
    }


def test_audit_repro_reaches_the_files_masked(log_dir: Path) -> None:
    """The audit's records, through the real pipeline: no secret in the segment files."""
    configure_logging(directory=log_dir, console_enabled=False, compression_enabled=False)
    log = get_logger("app")
    log.info("request", headers=[(b"authorization", b"Bearer abcdefghijklmnop123")])
    log.info("request", auth=b"Bearer abcdefghijklmnop123")
    log.info("request", headers=[("Authorization", "Token abcdefghijk123")])
    log.info("login", form=Login("ann", "hunter2"))
    log.info("dsn postgresql://admin:p@ssw0rd@db:5432/app")
    flush_logging()
    data = b"".join(p.read_bytes() for p in log_dir.rglob("*.jsonl"))
    for secret in (b"abcdefghijklmnop123", b"abcdefghijk123", b"hunter2", b"ssw0rd"):
        assert secret not in data
    records = [r for r in read_log_records(log_dir) if r.get("message") == "login"]
    assert records[0]["context"] == {"form": {"user": "ann", "password": REDACTED}}
