"""Field encryption applied to whole records: the pipeline step and :func:`decrypt_record`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._core.errors import error_reporter
from .._core.event import _key_text
from .encryption import (
    DecryptionError,
    EncryptionKey,
    KeyRing,
    decrypt_value,
    encrypt_value,
    is_encrypted,
)
from .encryption_fields import ENCRYPTION_ROOTS, FieldPath, parse_field_path

__all__ = ["ENCRYPTION_FAILED", "FieldEncryptor", "decrypt_record", "undecryptable"]

ENCRYPTION_FAILED = "[ENCRYPTION FAILED]"
"""What replaces a field that could not be encrypted (it is never written in clear)."""

_MAX_DEPTH = 64


def undecryptable(reason: str) -> str:
    """The marker :func:`decrypt_record` puts where an envelope could not be decrypted."""
    return f"<undecryptable: {reason}>"


class FieldEncryptor:
    """The pipeline step that encrypts configured fields of every event.

    Args:
        key: The active key.
        fields: Field paths to encrypt (see :mod:`.encryption_fields`).
        blind_index: Field paths that are also encrypted on their own and get a blind index.

    Raises:
        ValueError: a field path that is not valid.
    """

    __slots__ = ("_blind", "_key", "_plan")

    def __init__(
        self, key: EncryptionKey, fields: Iterable[str], blind_index: Iterable[str] = ()
    ) -> None:
        self._key = key
        self._blind = frozenset(parse_field_path(p) for p in blind_index)
        paths = {parse_field_path(p) for p in fields} | self._blind
        plan: dict[str, list[FieldPath]] = {}
        for path in sorted(paths, key=len):
            covered = any(FieldPath(path[:i]) in paths for i in range(1, len(path))) or (
                len(path) > 2 and FieldPath((path.root, "*")) in paths
            )
            if not covered:
                plan.setdefault(path.root, []).append(path)
        self._plan = tuple((root, tuple(plan[root])) for root in ENCRYPTION_ROOTS if root in plan)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        """Replace the configured fields of ``event`` by envelopes; never raises.

        A field that cannot be encrypted becomes ``"[ENCRYPTION FAILED]"`` and the failure
        goes to the error hook: it is never written in clear.
        """
        for root, paths in self._plan:
            value = event.get(root)
            if not value:
                continue
            try:
                for path in paths:
                    value = self._apply(value, path)
                event[root] = value
            except Exception as exc:  # noqa: BLE001 - never raise, never write in clear
                error_reporter.report(
                    "encrypt", f"could not encrypt {root} of a log record: {exc!r}"
                )
                event[root] = ENCRYPTION_FAILED
        return event

    def _apply(self, value: Any, path: FieldPath) -> Any:
        if is_encrypted(value):
            return value
        if path.whole:
            return self._seal(value, path.root, index=False)
        if not isinstance(value, Mapping):
            return self._seal(value, path.root, index=False)  # not an object: nothing to pick
        if path.every_key:
            index = path in self._blind
            return {
                k: v
                if is_encrypted(v)
                else self._seal(v, f"{path.root}.{_key_text(k)}", index=index)
                for k, v in list(value.items())
            }
        return self._set(value, path, 1)

    def _set(self, container: Mapping[Any, Any], path: FieldPath, depth: int) -> Any:
        head = path[depth]
        if head not in container:
            return container
        current = container[head]
        if is_encrypted(current):
            return container
        if depth == len(path) - 1:
            new: Any = self._seal(current, path.text, index=path in self._blind)
        elif isinstance(current, Mapping):
            new = self._set(current, path, depth + 1)
            if new is current:
                return container
        else:
            return container
        out = dict(container)
        out[head] = new
        return out

    def _seal(self, value: Any, path: str, *, index: bool) -> Any:
        try:
            return encrypt_value(self._key, value, path=path, with_index=index)
        except Exception as exc:  # noqa: BLE001 - this field only, never in clear
            error_reporter.report("encrypt", f"could not encrypt {path} of a log record: {exc!r}")
            return ENCRYPTION_FAILED


def _ring(
    keys: Mapping[str, EncryptionKey] | Iterable[EncryptionKey] | EncryptionKey,
) -> Mapping[str, EncryptionKey]:
    if isinstance(keys, EncryptionKey):
        return KeyRing([keys])
    if isinstance(keys, Mapping):
        return keys
    return KeyRing(keys)


def decrypt_record(
    record: Mapping[str, Any],
    keys: Mapping[str, EncryptionKey] | Iterable[EncryptionKey] | EncryptionKey,
) -> dict[str, Any]:
    """Return a copy of ``record`` with every encrypted value in ``context``, ``metadata``
    and ``performance_data`` revealed.

    A value that cannot be decrypted (no key with its id, tampered or moved ciphertext)
    becomes ``"<undecryptable: REASON>"``; this function never raises for such values.

    Args:
        record: A parsed log record (one JSON line).
        keys: A :class:`KeyRing`, keys by id, an iterable of keys or a single key. The key
            whose id matches each envelope is used, so records written under several keys
            (rotation) decrypt in one pass.

    Returns:
        The record with the plaintext values.

    Example:
        >>> key = generate_key()  # doctest: +SKIP
        >>> decrypt_record(record, [key])["context"]["ip_address"]  # doctest: +SKIP
        '192.168.1.100'
    """
    ring = _ring(keys)
    out = dict(record)
    for root in ENCRYPTION_ROOTS:
        if root in out:
            out[root] = _reveal(out[root], root, ring, 0)
    return out


def _reveal(value: Any, path: str, keys: Mapping[str, EncryptionKey], depth: int) -> Any:
    if is_encrypted(value):
        try:
            return decrypt_value(value, keys, path=path)
        except DecryptionError as exc:
            return undecryptable(exc.reason)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {k: _reveal(v, f"{path}.{k}", keys, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v, path, keys, depth + 1) for v in value]
    return value
