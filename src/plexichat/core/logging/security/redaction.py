"""Redaction: mask secrets and personal data in an event before it is serialized.

Two mechanisms, applied to ``context``, ``metadata`` and ``performance_data`` (nested dicts,
lists and tuples included) and, for value patterns, to the message and exception text:

* **Keys**: a value under a secret-looking key (``password``, ``Authorization``,
  ``X-Api-Key``, ``db_password``...) becomes ``"[REDACTED]"`` whatever it is. A 2-item list
  or tuple whose first item is such a key (a header pair such as
  ``("Authorization", "Token ...")`` or ASGI's ``(b"authorization", b"Bearer ...")``) counts
  as a key and its value.
* **Value patterns**: secrets recognised inside strings (bearer tokens, JWTs, Luhn-valid card
  numbers, PEM private keys, passwords in URLs, ``password=...`` assignments, optionally
  e-mail addresses) are replaced by ``"[REDACTED:<pattern>]"``.

What is masked is what the serializer will write: a dataclass is masked field by field (and
written as a dict when something was masked), a named tuple by field name, bytes are
scanned as latin-1 text (and stay bytes), an enum by its value, a path by its text, and any
other object the serializer writes as its ``repr`` is replaced by that ``repr``, scanned.

:class:`Redactor` is the pipeline step: copy-on-write (the caller's objects are never
changed; an event without secrets is returned as it is) and it never raises.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Iterable, Mapping
from pathlib import PurePath
from typing import Any

from .._core.errors import error_reporter
from .._core.event import safe_repr
from .redaction_patterns import DEFAULT_PATTERNS, PATTERN_NAMES, ValueScanner

__all__ = [
    "DEFAULT_PATTERNS",
    "DEFAULT_REDACT_KEYS",
    "PATTERN_NAMES",
    "REDACTED",
    "Redactor",
    "is_secret_key",
    "mask_secrets",
    "normalize_key",
]

REDACTED = "[REDACTED]"
"""What replaces a value under a secret key."""

DEFAULT_REDACT_KEYS: frozenset[str] = frozenset(
    {
        "access_token",
        "api_key",
        "apikey",
        "auth_token",
        "authorization",
        "client_secret",
        "cookie",
        "credentials",
        "csrf_token",
        "encryption_key",
        "id_token",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "proxy_authorization",
        "pwd",
        "refresh_token",
        "secret",
        "secret_key",
        "session_token",
        "set_cookie",
        "signing_key",
        "token",
        "x_api_key",
        "xsrf_token",
    }
)
"""Keys masked by default, in normalized form (see :func:`normalize_key`).

A key also matches when it ends in ``_<one of these>`` (``db_password``, ``github_token``).
"""

_MAX_DEPTH = 64
_CACHE_LIMIT = 4096


def normalize_key(key: str) -> str:
    """Return ``key`` lower-cased, camelCase split and ``-``, ``.`` and spaces as ``_``.

    Args:
        key: A field name such as ``"X-Api-Key"`` or ``"accessToken"``.

    Returns:
        The normalized form, e.g. ``"x_api_key"`` or ``"access_token"``.
    """
    chars: list[str] = []
    previous = ""
    for ch in key:
        if ch.isupper() and (previous.islower() or previous.isdigit()):
            chars.append("_")
        chars.append(ch)
        previous = ch
    text = "".join(chars).lower()
    for sep in ("-", ".", " "):
        text = text.replace(sep, "_")
    return text.strip("_")


class _KeyMatcher:
    """Decides whether a key names a secret: exact, without separators, or ``*_<key>``."""

    __slots__ = ("_cache", "_compact", "_exact", "_suffixes")

    def __init__(self, keys: Iterable[str]) -> None:
        exact = {normalize_key(k) for k in keys}
        exact.discard("")
        self._exact = frozenset(exact)
        self._compact = frozenset(k.replace("_", "") for k in exact)
        self._suffixes = tuple("_" + k for k in sorted(exact))
        self._cache: dict[str, bool] = {}

    def __call__(self, key: str) -> bool:
        found = self._cache.get(key)
        if found is not None:
            return found
        norm = normalize_key(key)
        result = (
            norm in self._exact
            or norm.replace("_", "") in self._compact
            or norm.endswith(self._suffixes)
        )
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[key] = result
        return result


_DEFAULT_MATCHER = _KeyMatcher(DEFAULT_REDACT_KEYS)


def is_secret_key(key: object) -> bool:
    """Return True when ``key`` names a secret under the default key list.

    Matching is case-insensitive and treats ``-``, ``_``, ``.`` and camelCase alike; a
    compound key ending in a secret name (``db_password``, ``github_token``) also matches.

    Args:
        key: A dict key (anything that is not a str never matches).

    Returns:
        Whether values under this key are masked.
    """
    return isinstance(key, str) and _DEFAULT_MATCHER(str.__str__(key))


def mask_secrets(value: Any) -> Any:
    """Return a deep copy of ``value`` with values under secret-looking keys masked.

    Dicts (any mapping), lists and tuples are copied and walked; other objects are kept
    as they are, except a dataclass or named tuple holding a secret field, which becomes a
    dict with that field masked. A value under a key such as ``password`` or
    ``Authorization`` becomes ``"[REDACTED]"`` whatever it is, and so does the second item
    of a pair such as ``("Authorization", "Token ...")``. Never raises: a container whose
    iteration fails becomes a placeholder, cycles become ``"<cycle>"`` and nesting deeper
    than 64 levels ``"<max depth>"``.

    Args:
        value: Any value, e.g. an event's ``context``.

    Returns:
        The masked copy.

    Example:
        >>> mask_secrets({"user": "ann", "Password": "hunter2", "items": [{"api-key": 1}]})
        {'user': 'ann', 'Password': '[REDACTED]', 'items': [{'api-key': '[REDACTED]'}]}
    """
    return _Walker(_DEFAULT_MATCHER, None, copy=True).walk(value, 0, set())


class _Walker:
    """One traversal: masks values under secret keys and scans strings with the patterns."""

    __slots__ = ("_copy", "_matcher", "_scanner")

    def __init__(self, matcher: _KeyMatcher, scanner: ValueScanner | None, *, copy: bool) -> None:
        self._matcher = matcher
        self._scanner = scanner
        self._copy = copy

    def walk(self, value: Any, depth: int, seen: set[int]) -> Any:
        """The masked value: ``value`` itself when nothing changed (unless copying)."""
        kind = type(value)
        if kind is str:
            return value if self._scanner is None else self._scanner.scan(value)
        if kind in _SCALARS:
            return value
        try:
            if isinstance(value, str):  # a str subclass: scan its plain text
                return self.walk(str.__str__(value), depth, seen)
            container = isinstance(value, Mapping | list | tuple | set | frozenset)
            if not container:
                if kind in _BYTES:
                    return self._bytes(value)
                if isinstance(value, _KEPT):  # written as they are: nothing to mask
                    return value
        except Exception as exc:  # noqa: BLE001 - isinstance() itself raised
            # what the serializer writes for such a value, so the record reads the same
            return f"<unserializable {kind.__name__}: {type(exc).__name__}>"
        try:
            if depth >= _MAX_DEPTH:
                return "<max depth>"
            marker = id(value)
            if marker in seen:
                return "<cycle>"
            seen.add(marker)
            try:
                if not container:
                    return self._other(value, depth, seen)
                if isinstance(value, Mapping):
                    return self._mapping(value, depth, seen)
                return self._sequence(value, depth, seen)
            finally:
                seen.discard(marker)
        except Exception as exc:  # noqa: BLE001 - hostile container: never leak, never raise
            return f"<unredactable {type(value).__name__}: {type(exc).__name__}>"

    def _bytes(self, value: bytes | bytearray) -> Any:
        """``value`` with the value patterns applied to its latin-1 text (lossless, so the
        unmasked bytes come back as they were); the same type, written as its ``repr``."""
        scanner = self._scanner
        if scanner is None:
            return value
        text = bytes(value).decode("latin-1")
        masked = scanner.scan(text)
        if masked is text:
            return value
        return type(value)(masked.encode("latin-1", "replace"))

    def _is_secret(self, key: object) -> bool:
        """Whether ``key`` (a str, a str subclass or bytes such as ASGI header names) names
        a secret."""
        if type(key) is str:
            secret = self._matcher._cache.get(key)
            return self._matcher(key) if secret is None else secret
        if isinstance(key, str):
            return self._matcher(str.__str__(key))
        if isinstance(key, bytes | bytearray):
            return self._matcher(bytes(key).decode("latin-1"))
        return False

    def _other(self, value: Any, depth: int, seen: set[int]) -> Any:
        """An object that is neither a string, a scalar nor a container, masked as the
        serializer will write it (see ``_core.event.to_json``)."""
        if isinstance(value, enum.Enum):  # orjson writes its value
            inner = value.value
            new = self.walk(inner, depth + 1, seen)
            return value if new is inner else new
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._fields(value, _dataclass_fields(value), depth, seen)
        scanner = self._scanner
        if scanner is None:
            return value
        if isinstance(value, PurePath):  # written as str(path)
            text = str(value)
            masked = scanner.scan(text)
            return value if masked is text else masked
        # anything else is written as its repr: scan exactly that text, and write it
        return scanner.scan(safe_repr(value))

    def _fields(self, value: Any, fields: dict[str, Any], depth: int, seen: set[int]) -> Any:
        """``value`` itself when none of its ``fields`` holds a secret, else the masked
        ``fields`` (a dict, which the serializer writes as it would have written ``value``)."""
        if self._copy:  # mask_secrets: keep the object unless something is masked in it
            probe = _Walker(self._matcher, self._scanner, copy=False)
            if probe._mapping(fields, depth, seen) is fields:
                return value
        masked = self._mapping(fields, depth, seen)
        return value if masked is fields else masked

    def _clean(self, value: dict[Any, Any]) -> bool:
        """Whether a plain dict is known to hold nothing to mask: every key already seen and
        not secret, every value a scalar or a string already found clean (the usual
        context of a hot logging call, decided with one lookup per item)."""
        known = self._matcher._cache
        scanner = self._scanner
        clean = scanner._clean if scanner is not None else None
        scalars = _SCALARS
        for key, item in value.items():
            if known.get(key) is not False:
                return False
            kind = type(item)
            if kind is str:
                if clean is not None and item not in clean:
                    return False
            elif kind not in scalars:
                return False
        return True

    def _mapping(self, value: Mapping[Any, Any], depth: int, seen: set[int]) -> Any:
        """The masked mapping; a plain dict with nothing to mask is returned as it is."""
        plain = type(value) is dict
        out: dict[Any, Any] | None = None if plain and not self._copy else {}
        matcher = self._matcher
        known = matcher._cache
        scanner = self._scanner
        for key, item in value.items() if plain else list(value.items()):
            secret = known.get(key) if type(key) is str else None
            if secret is None:
                secret = matcher(key) if type(key) is str else self._is_secret(key)
            if secret:
                new: Any = REDACTED
            else:
                kind = type(item)
                if kind is str:
                    new = item if scanner is None else scanner.scan(item)
                elif kind in _SCALARS:
                    new = item
                else:
                    new = self.walk(item, depth + 1, seen)
            if out is None:
                if new is item:
                    continue
                out = dict(value)  # copy on the first change
            out[key] = new
        return value if out is None else out

    def _sequence(self, value: Any, depth: int, seen: set[int]) -> Any:
        kind = type(value)
        pairable = kind is list or kind is tuple
        if not pairable and isinstance(value, tuple):
            pairable = True
            names = getattr(kind, "_fields", None)
            if type(names) is tuple and len(names) == len(value):  # a named tuple
                return self._fields(value, dict(zip(names, value, strict=True)), depth, seen)
        items = list(value)
        walk = self.walk
        if len(items) == 2 and self._is_secret(items[0]) and (pairable or isinstance(value, list)):
            # a (name, value) pair such as an HTTP header: masked like a dict item
            new = [walk(items[0], depth + 1, seen), REDACTED]
        else:
            new = [walk(item, depth + 1, seen) for item in items]
        if isinstance(value, set | frozenset):
            if any(a is not b for a, b in zip(new, items, strict=True)):
                return new  # a masked member: the set is written as a list anyway
            return set(items) if self._copy else value
        if isinstance(value, tuple):
            if self._copy or any(a is not b for a, b in zip(new, items, strict=True)):
                return tuple(new)
            return value
        if (
            not self._copy
            and type(value) is list
            and all(a is b for a, b in zip(new, items, strict=True))
        ):
            return value
        return new


_SCALARS = frozenset({int, float, bool, type(None)})
_BYTES = frozenset({bytes, bytearray})
_KEPT = (int, float, datetime.date, datetime.time, datetime.timedelta, uuid.UUID)
"""Objects written without text a secret could hide in (numbers, dates, durations, ids)."""


def _dataclass_fields(value: Any) -> dict[str, Any]:
    """The fields orjson writes for a dataclass instance: its ``__dict__`` (or, with
    ``__slots__``, its dataclass fields), without names starting with ``_``."""
    attrs = getattr(value, "__dict__", None)
    if type(attrs) is not dict:
        attrs = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return {k: v for k, v in attrs.items() if not (type(k) is str and k.startswith("_"))}


_FIELDS = ("context", "metadata", "performance_data")


class Redactor:
    """The pipeline step that masks secrets in an event before it is serialized.

    Args:
        keys: Extra secret key names, added to :data:`DEFAULT_REDACT_KEYS`.
        patterns: Names of the value patterns to apply (see :data:`PATTERN_NAMES`);
            default :data:`DEFAULT_PATTERNS`.

    Example:
        >>> redact = Redactor(keys=["ssn"])
        >>> redact({"message": "hi", "context": {"SSN": "078-05-1120"}})["context"]
        {'SSN': '[REDACTED]'}
    """

    __slots__ = ("_walker",)

    def __init__(
        self, keys: Iterable[str] = (), patterns: Iterable[str] = DEFAULT_PATTERNS
    ) -> None:
        names = tuple(patterns)
        scanner = ValueScanner(names, extra_keys=tuple(keys)) if names else None
        self._walker = _Walker(_KeyMatcher((*DEFAULT_REDACT_KEYS, *keys)), scanner, copy=False)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        """Mask ``event`` in place at its top level (nested objects are copied on write).

        Never raises: when masking fails, ``context``, ``metadata`` and ``performance_data``
        are withheld rather than written unmasked.
        """
        try:
            walker = self._walker
            for name in _FIELDS:
                value = event.get(name)
                if value:
                    if type(value) is dict:
                        if not walker._clean(value):  # the usual case: nothing to mask
                            event[name] = walker._mapping(value, 0, set())
                    else:
                        event[name] = walker.walk(value, 0, set())
            scanner = walker._scanner
            if scanner is not None:
                message = event.get("message")
                if type(message) is str and message not in scanner._clean:
                    event["message"] = scanner.scan(message)
                exc = event.get("exception")
                if type(exc) is dict:
                    event["exception"] = walker.walk(exc, 0, set())
                stack = event.get("stack")
                if type(stack) is str:
                    event["stack"] = scanner.scan(stack)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            error_reporter.report("redact", f"could not redact a log record: {exc!r}")
            for name in _FIELDS:
                if name in event:
                    event[name] = {"redaction_failed": True}
        return event
