"""Client-side ("zero-knowledge") field encryption: keys, the envelope and the blind index.

A configured field is encrypted in the application process, before the record is
serialized, so log files, the store, the API and the viewer hold only ciphertext.

Encrypted value (an *envelope*), in place of the plaintext value::

    {"$enc": "aes256gcm", "kid": "3f9a0c1b2d4e5f60", "nonce": "<16 chars>", "ct": "<...>"}

* ``kid``: the key id, 16 hex digits of ``SHA-256("plexichat-log/v1 key-id" || K)``.
* ``nonce``: 12 random bytes, base64url without padding.
* ``ct``: AES-256-GCM ciphertext of the JSON text of the value (UTF-8) with the 16-byte tag
  appended (what WebCrypto's ``decrypt`` takes), base64url without padding.
* associated data: the UTF-8 field path where the envelope sits (``context.ip_address``;
  ``context`` for a whole object), so an envelope moved to another field does not decrypt.
* ``bidx`` (optional): the blind index, see :func:`blind_index`.

The AES key is ``HKDF-SHA256(K, salt="", info="plexichat-log/v1 aes-256-gcm")`` and the
blind-index key ``HKDF-SHA256(K, salt="", info="plexichat-log/v1 blind-index")``, where K is
the 32-byte master key (base64 in a key file or in ``PLEXICHAT_LOG_ENCRYPTION_KEY``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .._core.errors import ConfigError, PlexiLoggingError
from .._core.event import _OPTIONS, _default, _sanitize

__all__ = [
    "ALGORITHM",
    "KEY_ENV",
    "DecryptionError",
    "EncryptionKey",
    "KeyFileError",
    "KeyRing",
    "blind_index",
    "decrypt_value",
    "encrypt_value",
    "generate_key",
    "is_encrypted",
    "key_from_env",
    "load_key_file",
    "write_key_file",
]

ALGORITHM = "aes256gcm"
"""The ``$enc`` value of an envelope."""

KEY_ENV = "PLEXICHAT_LOG_ENCRYPTION_KEY"
"""The environment variable that may hold the base64 master key."""

_KID_LABEL = b"plexichat-log/v1 key-id"
_AES_INFO = b"plexichat-log/v1 aes-256-gcm"
_BIDX_INFO = b"plexichat-log/v1 blind-index"
_BIDX_BYTES = 16
_KEY_BYTES = 32


class KeyFileError(ConfigError):
    """A key file or key variable is missing, unreadable, too open or malformed."""


class DecryptionError(PlexiLoggingError):
    """An envelope could not be decrypted; ``reason`` says why (no key, wrong key, tampered)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)


class EncryptionKey:
    """A 32-byte master key with its id and derived keys; its repr never shows the key.

    Args:
        raw: The 32 random bytes.

    Raises:
        KeyFileError: ``raw`` is not 32 bytes.
    """

    __slots__ = ("_aes", "_bidx", "kid")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes) or len(raw) != _KEY_BYTES:
            raise KeyFileError(
                f"an encryption key is {_KEY_BYTES} bytes, got "
                f"{len(raw) if isinstance(raw, bytes) else type(raw).__name__}; "
                "create one with: plexichat-logs encryption-key new FILE"
            )
        self.kid = hashlib.sha256(_KID_LABEL + raw).hexdigest()[:16]
        """The key id written in every envelope (16 hex digits)."""
        self._aes = AESGCM(_hkdf(raw, _AES_INFO))
        self._bidx = _hkdf(raw, _BIDX_INFO)

    @classmethod
    def from_base64(cls, text: str, *, source: str = "the key") -> EncryptionKey:
        """Read a key from base64 (standard or URL-safe alphabet, padding optional).

        Raises:
            KeyFileError: naming ``source``, when the text is not base64 of 32 bytes.
        """
        cleaned = "".join(text.split()).replace("-", "+").replace("_", "/")
        try:
            raw = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != _KEY_BYTES:
            raise KeyFileError(
                f"{source} is not a base64 {_KEY_BYTES}-byte key; create one with: "
                "plexichat-logs encryption-key new FILE"
            )
        return cls(raw)

    def __repr__(self) -> str:
        return f"EncryptionKey(kid={self.kid!r})"

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """Return ``(nonce, ciphertext || tag)`` for ``plaintext`` bound to ``aad``."""
        nonce = secrets.token_bytes(12)
        return nonce, self._aes.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """Return the plaintext; raises ``InvalidTag`` on a wrong key or tampering."""
        return self._aes.decrypt(nonce, ciphertext, aad)

    def index(self, data: bytes) -> str:
        """The truncated HMAC-SHA-256 of ``data`` under the blind-index key, as hex."""
        return hmac.new(self._bidx, data, hashlib.sha256).digest()[:_BIDX_BYTES].hex()


class KeyRing(Mapping[str, EncryptionKey]):
    """Keys by id, for decryption across key rotations.

    Args:
        keys: Keys in any order; the first one is :attr:`active` (used to encrypt).
    """

    def __init__(self, keys: Iterable[EncryptionKey] = ()) -> None:
        self._keys: dict[str, EncryptionKey] = {}
        for key in keys:
            self._keys.setdefault(key.kid, key)

    def __getitem__(self, kid: str) -> EncryptionKey:
        return self._keys[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def active(self) -> EncryptionKey | None:
        """The key new values are encrypted with (the first), or None when empty."""
        return next(iter(self._keys.values()), None)


def generate_key() -> EncryptionKey:
    """Return a new random key; see :func:`write_key_file` to keep it."""
    return EncryptionKey(secrets.token_bytes(_KEY_BYTES))


def _key_text(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def write_key_file(path: str | os.PathLike[str]) -> EncryptionKey:
    """Create ``path`` (mode 0600, never overwriting) holding a new base64 key.

    Returns:
        The new key.

    Raises:
        KeyFileError: the file exists or cannot be created.
    """
    raw = secrets.token_bytes(_KEY_BYTES)
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"key file {str(target)!r} already exists; it is never overwritten (its key may "
            "still be needed to decrypt logs): choose a new file name"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"cannot create key file {str(target)!r}: {exc.strerror or exc}"
        ) from None
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(_key_text(raw) + "\n")
    return EncryptionKey(raw)


def load_key_file(path: str | os.PathLike[str]) -> KeyRing:
    """Read the keys of a key file: one base64 key per line, ``#`` comments allowed.

    The first key is the active one (new values are encrypted with it); the others only
    decrypt, so rotating is: put a new key on the first line and keep the old ones below.

    Raises:
        KeyFileError: the file is missing, readable by group or others (fix: ``chmod 600``),
            empty or holds a line that is not a key. A symlink is followed and the file it
            leads to must meet the same rule.
    """
    target = Path(path)
    try:  # symlinks are followed (Kubernetes secret volumes: key -> ..data/key)
        fd = os.open(target, os.O_RDONLY)
    except OSError as exc:
        raise KeyFileError(
            f"cannot read key file {str(target)!r}: {exc.strerror or exc}; create one with: "
            "plexichat-logs encryption-key new FILE"
        ) from None
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fh.fileno()).st_mode  # of the file itself, after any symlinks
        if os.name == "posix" and mode & 0o077:
            real = Path(os.path.realpath(target))
            shown = str(target) if real == target.absolute() else f"{target} -> {real}"
            raise KeyFileError(
                f"key file {shown!r} has mode {mode & 0o777:o}: group or others may access "
                f"it, and a key file must be readable by its owner only; make it private "
                f"with: chmod 600 {real} (a Kubernetes secret volume: defaultMode 0400)"
            )
        data = fh.read(1 << 16)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    keys: list[EncryptionKey] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            keys.append(EncryptionKey.from_base64(line, source=f"line {number} of {target}"))
    if not keys:
        raise KeyFileError(
            f"key file {str(target)!r} holds no key; create one with: "
            "plexichat-logs encryption-key new FILE"
        )
    return KeyRing(keys)


def key_from_env(environ: Mapping[str, str] | None = None) -> EncryptionKey | None:
    """The key in ``PLEXICHAT_LOG_ENCRYPTION_KEY``, or None when it is unset or empty.

    Raises:
        KeyFileError: the variable is set but is not a base64 32-byte key.
    """
    text = (os.environ if environ is None else environ).get(KEY_ENV, "").strip()
    if not text:
        return None
    return EncryptionKey.from_base64(text, source=f"environment variable {KEY_ENV}")


def _plaintext(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except Exception:  # noqa: BLE001 - hostile values: the careful pass of the serializer
        return orjson.dumps(_sanitize(value, 0, set()), default=_default, option=_OPTIONS)


def _index_text(value: Any) -> bytes:
    """What a blind index hashes: the text of a string, the JSON text of anything else."""
    if isinstance(value, str):
        return str.__str__(value).encode("utf-8", "surrogatepass")
    return orjson.dumps(_sanitize(value, 0, set()), option=_OPTIONS | orjson.OPT_SORT_KEYS)


def blind_index(key: EncryptionKey, value: Any) -> str:
    """Return the blind index of a value: 32 hex digits of a keyed HMAC-SHA-256.

    Equal values give equal indexes, so an exact-match query works without decrypting:
    ``plexichat-logs query --where context.ip_address.bidx=<index>``. A string is hashed as
    its text and anything else as its JSON text, so ``123`` and ``"123"`` share an index.

    Args:
        key: The encryption key (its derived blind-index key is used).
        value: The plaintext value.

    Returns:
        The index as lowercase hex.
    """
    return key.index(_index_text(value))


def encrypt_value(
    key: EncryptionKey, value: Any, *, path: str, with_index: bool = False
) -> dict[str, str]:
    """Encrypt one value into an envelope bound to its field ``path``.

    Args:
        key: The active key.
        value: Any JSON-serializable value (others are serialized as the log record would be).
        path: The field path where the envelope is stored, e.g. ``"context.ip_address"``.
        with_index: Add the blind index (``bidx``) beside the ciphertext.

    Returns:
        The envelope (see the module documentation).
    """
    nonce, ciphertext = key.encrypt(_plaintext(value), path.encode("utf-8", "surrogatepass"))
    envelope = {
        "$enc": ALGORITHM,
        "kid": key.kid,
        "nonce": _b64url(nonce),
        "ct": _b64url(ciphertext),
    }
    if with_index:
        envelope["bidx"] = blind_index(key, value)
    return envelope


def is_encrypted(value: object) -> bool:
    """Whether ``value`` is an envelope written by :func:`encrypt_value`."""
    return isinstance(value, Mapping) and value.get("$enc") == ALGORITHM


def decrypt_value(
    envelope: Mapping[str, Any], keys: Mapping[str, EncryptionKey], *, path: str
) -> Any:
    """Decrypt one envelope found at field ``path``.

    Args:
        envelope: The ``{"$enc": ...}`` object.
        keys: Keys by id (a :class:`KeyRing`); the key whose id matches is used.
        path: Where the envelope was found (its associated data).

    Returns:
        The plaintext value.

    Raises:
        DecryptionError: no key with the envelope's id, a malformed envelope, or a wrong key
            or tampered ciphertext (the authentication tag does not match).
    """
    if not is_encrypted(envelope):
        raise DecryptionError(f'not an encrypted value (no "$enc": "{ALGORITHM}")')
    kid = envelope.get("kid")
    key = keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise DecryptionError(f"no key with id {kid!r}")
    nonce_text, ct_text = envelope.get("nonce"), envelope.get("ct")
    try:
        if not isinstance(nonce_text, str) or not isinstance(ct_text, str):
            raise ValueError("nonce and ct must be text")
        nonce, ciphertext = _unb64url(nonce_text), _unb64url(ct_text)
        if len(nonce) != 12:
            raise ValueError(f"nonce is {len(nonce)} bytes, not 12")
    except (ValueError, binascii.Error) as exc:
        raise DecryptionError(f"malformed envelope: {exc}") from None
    try:
        plaintext = key.decrypt(nonce, ciphertext, path.encode("utf-8", "surrogatepass"))
    except InvalidTag:
        raise DecryptionError(
            f"authentication failed at {path} (tampered ciphertext, moved value or wrong key)"
        ) from None
    try:
        return orjson.loads(plaintext)
    except orjson.JSONDecodeError:  # pragma: no cover - only our own JSON is ever encrypted
        raise DecryptionError("decrypted bytes are not JSON") from None
