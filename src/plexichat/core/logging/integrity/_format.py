"""The integrity wire format: tags, control lines and canonical signed bytes.

Every line of a sealed segment ends with ``,"tag":"<32 hex>"}\\n``. The *body* of a line is
everything before ``,"tag":"``: the chain runs over bodies, ``h_i = SHA-256(h_{i-1} ‖
body_i)``, and the tag is ``HMAC-SHA-256(K_e, h_i)`` truncated to 128 bits. Control lines
(segment header, checkpoint, announced loss) are JSON objects whose first key is
``"$integrity"``; they are chained and tagged like records.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

__all__ = [
    "CONTROL_PREFIX",
    "GENESIS",
    "MAX_LINE",
    "TAG_KEY",
    "TAG_LEN",
    "b64",
    "canonical",
    "control_body",
    "control_fields",
    "evolve",
    "seq_of",
    "split_line",
    "stream_key",
    "Tagger",
    "tag_of",
    "unb64",
]

TAG_KEY = b',"tag":"'
TAG_HEX = 32
TAG_LEN = len(TAG_KEY) + TAG_HEX + 2
"""Bytes after the body: ``,"tag":"`` + 32 hex digits + ``"}`` (the newline not counted)."""
CONTROL_PREFIX = b'{"$integrity":"'
MAX_LINE = 64 * 1024 * 1024
"""Longest line the verifier reads whole; anything longer was not written by the writer."""
GENESIS = bytes(32)
"""The chain value before a stream's first line."""
_EVOLVE = b"plexichat-evolve-v1"
_STREAM = b"plexichat-stream-v1"


_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


class Tagger:
    """Line tags under one MAC key: HMAC-SHA-256 with the key's pads hashed once.

    The tags equal :func:`tag_of`'s (standard HMAC); precomputing the padded-key states
    halves the cost for 32-byte inputs, which is every line's cost on the writer and in
    the verifier.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        block = (key if len(key) <= 64 else hashlib.sha256(key).digest()).ljust(64, b"\0")
        self._inner = hashlib.sha256(block.translate(_IPAD))
        self._outer = hashlib.sha256(block.translate(_OPAD))

    @property
    def pads(self) -> tuple[Any, Any]:
        """The inner and outer hash states (copy before use), for tight loops."""
        return self._inner, self._outer

    def __call__(self, head: bytes) -> bytes:
        """The tag of chain value ``head`` (32 hex digits, as bytes)."""
        inner = self._inner.copy()
        inner.update(head)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return binascii.hexlify(outer.digest()[:16])


def tag_of(key: bytes, head: bytes) -> bytes:
    """The line tag (hex, 32 characters) of chain value ``head`` under MAC key ``key``."""
    return hmac.digest(key, head, "sha256")[:16].hex().encode()


def evolve(key: bytes, epoch: int) -> bytes:
    """The MAC key of the next epoch; the old key cannot be computed back from it."""
    return hmac.digest(key, _EVOLVE + epoch.to_bytes(8, "big"), "sha256")


def stream_key(host_key: bytes, stream: str) -> bytes:
    """A stream's first MAC key, derived from the host key of the ladder step that started it."""
    return hmac.digest(host_key, _STREAM + stream.encode(), "sha256")


def seq_of(body: bytes) -> int | None:
    """The sequence number at the end of a record's body (``..."seq":N``), or None."""
    cut = body.rfind(b',"seq":')
    if cut < 0:
        return None
    try:
        return int(body[cut + 7 :])
    except ValueError:
        return None


def split_line(line: bytes) -> tuple[bytes, bytes] | None:
    """``(body, tag)`` of a sealed line (with or without its newline), or None when the line
    does not end in a well-formed tag."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if len(line) <= TAG_LEN or not line.endswith(b'"}'):
        return None
    cut = len(line) - TAG_LEN
    if line[cut : cut + len(TAG_KEY)] != TAG_KEY:
        return None
    return line[:cut], line[cut + len(TAG_KEY) : -2]


def control_body(fields: dict[str, Any]) -> bytes:
    """The body of a control line: JSON without its closing brace (the tag is appended)."""
    return orjson.dumps(fields)[:-1]


def control_fields(body: bytes) -> dict[str, Any] | None:
    """The fields of a control line's body (see :func:`split_line`), or None when the body
    is not a JSON object with an ``$integrity`` kind."""
    try:
        value = orjson.loads(body + b"}")
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) and "$integrity" in value else None


def canonical(fields: dict[str, Any]) -> bytes:
    """The bytes a signature covers: sorted-key JSON of everything but ``sig``."""
    return orjson.dumps(
        {k: v for k, v in fields.items() if k != "sig"}, option=orjson.OPT_SORT_KEYS
    )


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode()


def unb64(text: object, what: str, *, secret: bool = False) -> bytes:
    """Decode base64 text, naming ``what`` when it is not valid (and, unless ``secret``,
    quoting the start of the bad value)."""
    try:
        if not isinstance(text, str):
            raise ValueError
        return base64.b64decode(text.encode(), validate=True)
    except ValueError:
        shown = "it" if secret else repr(str(text)[:40])
        raise ValueError(f"invalid {what}: {shown} is not base64") from None
