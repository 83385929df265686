"""Redaction: mask secrets and personal data in an event before it is serialized."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "DEFAULT_REDACT_KEYS",
    "REDACTED",
    "is_secret_key",
    "mask_secrets",
    "normalize_key",
]

REDACTED = "[REDACTED]"
"""What replaces a masked value."""

DEFAULT_REDACT_KEYS: frozenset[str] = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "passphrase",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "auth_token",
        "session_token",
        "csrf_token",
        "xsrf_token",
        "api_key",
        "apikey",
        "x_api_key",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "private_key",
        "client_secret",
        "secret_key",
        "signing_key",
        "encryption_key",
        "credentials",
    }
)
"""Keys masked by default, in normalized form (see :func:`normalize_key`)."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_MAX_DEPTH = 64


def normalize_key(key: str) -> str:
    """Return ``key`` lower-cased, camelCase split and ``-``, ``.`` and spaces as ``_``.

    Args:
        key: A field name such as ``"X-Api-Key"`` or ``"accessToken"``.

    Returns:
        The normalized form, e.g. ``"x_api_key"`` or ``"access_token"``.
    """
    text = _CAMEL.sub("_", key).lower()
    return text.replace("-", "_").replace(".", "_").replace(" ", "_").strip("_")


def _compact(key: str) -> str:
    return key.replace("_", "")


class _KeyMatcher:
    """Decides whether a (normalized) key names a secret: exact, compact or ``*_<key>``."""

    __slots__ = ("_cache", "_compact", "_exact")

    def __init__(self, keys: Iterable[str]) -> None:
        self._exact = frozenset(normalize_key(k) for k in keys if normalize_key(k))
        self._compact = frozenset(_compact(k) for k in self._exact)
        self._cache: dict[str, bool] = {}

    def __call__(self, key: str) -> bool:
        found = self._cache.get(key)
        if found is not None:
            return found
        norm = normalize_key(key)
        result = (
            norm in self._exact
            or _compact(norm) in self._compact
            or any(norm.endswith("_" + k) for k in self._exact)
        )
        if len(self._cache) < 4096:
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
    as they are. A value under a key such as ``password`` or ``Authorization`` becomes
    ``"[REDACTED]"`` whatever it is. Never raises: a container whose iteration fails
    becomes a placeholder, cycles become ``"<cycle>"`` and nesting deeper than 64 levels
    ``"<max depth>"``.

    Args:
        value: Any value, e.g. an event's ``context``.

    Returns:
        The masked copy.

    Example:
        >>> mask_secrets({"user": "ann", "Password": "hunter2", "items": [{"api-key": 1}]})
        {'user': 'ann', 'Password': '[REDACTED]', 'items': [{'api-key': '[REDACTED]'}]}
    """
    return _walk(value, _DEFAULT_MATCHER, 0, set())


def _walk(value: Any, matcher: _KeyMatcher, depth: int, seen: set[int]) -> Any:
    try:
        if type(value) in _LEAVES:
            return value
        if not isinstance(value, Mapping | list | tuple):
            return value
        if depth >= _MAX_DEPTH:
            return "<max depth>"
        marker = id(value)
        if marker in seen:
            return "<cycle>"
        seen.add(marker)
        try:
            if isinstance(value, Mapping):
                out: dict[Any, Any] = {}
                for key, item in list(value.items()):
                    if isinstance(key, str) and matcher(str.__str__(key)):
                        out[key] = REDACTED
                    else:
                        out[key] = _walk(item, matcher, depth + 1, seen)
                return out
            items = [_walk(item, matcher, depth + 1, seen) for item in list(value)]
            return items if isinstance(value, list) else tuple(items)
        finally:
            seen.discard(marker)
    except Exception as exc:  # noqa: BLE001 - hostile container: never leak, never raise
        return f"<unredactable {_type_name(value)}: {_type_name(exc)}>"


def _type_name(value: object) -> str:
    try:
        return type(value).__name__
    except Exception:  # noqa: BLE001  # pragma: no cover - type() never fails in practice
        return "object"


_LEAVES = frozenset({str, int, float, bool, type(None), bytes})
