"""Tokens in request URLs never reach the logs: uvicorn logs each request line with its raw
query string (``"WebSocket /stream?token=..."``), and the log server indexes its own log
directory, so a token there would be readable by every viewer.

:func:`mask_query_tokens` masks the value of every query parameter whose name, once
percent-decoded (as Starlette decodes it: ``%74oken`` is ``token``) and lower-cased,
contains ``token`` (``token``, ``access_token``...); :class:`TokenQueryFilter` applies it to
uvicorn's records, whatever the redaction settings.
"""

from __future__ import annotations

import logging
import re
from typing import Final
from urllib.parse import unquote_plus

__all__ = ["MASK", "TokenQueryFilter", "install_token_filter", "mask_query_tokens"]

MASK: Final = "[REDACTED]"
"""What a masked parameter value becomes."""

_QUERY_IN_TEXT: Final = re.compile(r"\?(\S*)")
"""A query string inside a formatted message: from ``?`` to the next white space (a request
line holds none)."""
_QUOTES: Final = "\"'"
_DECODE_ROUNDS: Final = 4  # a name percent-encoded more than once still counts


def _secret_name(raw: str) -> bool:
    """Whether a raw (percent-encoded) parameter name names a token."""
    name = raw
    for _ in range(_DECODE_ROUNDS):
        decoded = unquote_plus(name)
        if decoded == name:
            break
        name = decoded
    return "token" in name.lower()


def _mask_query(query: str) -> str:
    """``query`` (``a=1&token=x``) with the value of every token parameter masked; quotes
    that close the surrounding text (``...token=x"``) are kept."""
    parts = query.split("&")
    for i, part in enumerate(parts):
        name, equals, value = part.partition("=")
        if equals and _secret_name(name):
            kept = value.rstrip(_QUOTES)
            parts[i] = f"{name}={MASK}{value[len(kept) :]}"
    return "&".join(parts)


def mask_query_tokens(text: str, *, whole: bool = False) -> str:
    """``text`` with the token parameters of its query strings masked.

    Args:
        text: a URL or path (``whole=True``: everything after its first ``?`` is the query),
            or a message holding request lines (each query ends at white space).
        whole: ``text`` is one URL or path, as uvicorn passes it in a record's arguments.

    Returns:
        The text, unchanged when it holds no token parameter.

    Example:
        >>> mask_query_tokens("/stream?level=INFO&%74oken=abc", whole=True)
        '/stream?level=INFO&%74oken=[REDACTED]'
    """
    if "?" not in text:
        return text
    if whole:
        head, _, query = text.partition("?")
        return f"{head}?{_mask_query(query)}"
    return _QUERY_IN_TEXT.sub(lambda m: "?" + _mask_query(m.group(1)), text)


class TokenQueryFilter(logging.Filter):
    """Masks the tokens in uvicorn's request lines (``"WebSocket /stream?token=..."``,
    ``?%74oken=...`` included: see :func:`mask_query_tokens`), whatever the redaction
    settings: the server indexes its own log directory, so a token in a log line would be
    readable by every viewer."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's arguments and message in place; never drop it."""
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "?" in a for a in record.args
        ):
            record.args = tuple(
                mask_query_tokens(a, whole=True) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = mask_query_tokens(record.msg)
        return True


def install_token_filter() -> None:
    """Add :class:`TokenQueryFilter` to uvicorn's loggers (once)."""
    for name in ("uvicorn.error", "uvicorn.access"):
        target = logging.getLogger(name)
        if not any(isinstance(f, TokenQueryFilter) for f in target.filters):
            target.addFilter(TokenQueryFilter())
