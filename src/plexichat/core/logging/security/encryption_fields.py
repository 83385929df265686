"""Field paths of client-side encryption and the validators of the redaction/encryption settings.

This module imports no cryptography: the configuration model uses it at validation time.

A field path is ``ROOT``, ``ROOT.KEY[.KEY...]`` or ``ROOT.*`` where ROOT is ``context``,
``metadata`` or ``performance_data``:

* ``context`` encrypts the whole object as one value;
* ``context.ip_address`` (or a nested ``context.user.email``) encrypts that value;
* ``context.*`` encrypts every value of the object separately (the keys stay readable).
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = [
    "ENCRYPTION_ROOTS",
    "FieldPath",
    "check_blind_index_fields",
    "check_encrypt_fields",
    "check_redact_keys",
    "check_redact_patterns",
    "parse_field_path",
]

ENCRYPTION_ROOTS = ("context", "metadata", "performance_data")
"""The record fields whose values can be encrypted."""

_PATH_HELP = (
    "use context, metadata or performance_data, optionally followed by .KEY (nested: "
    ".KEY.KEY) or .* (every key separately), e.g. context.ip_address or metadata.*"
)


class FieldPath(tuple[str, ...]):
    """A parsed field path: ``("context", "ip_address")``; ``("context", "*")`` for all keys.

    A tuple, so paths compare and hash by their parts.
    """

    __slots__ = ()

    @property
    def root(self) -> str:
        """The record field: ``context``, ``metadata`` or ``performance_data``."""
        return self[0]

    @property
    def whole(self) -> bool:
        """Whether the whole object is one encrypted value."""
        return len(self) == 1

    @property
    def every_key(self) -> bool:
        """Whether every value of the object is encrypted separately (``ROOT.*``)."""
        return len(self) == 2 and self[1] == "*"

    @property
    def text(self) -> str:
        """The path as written in the configuration."""
        return ".".join(self)


def parse_field_path(text: object) -> FieldPath:
    """Parse one field path.

    Args:
        text: e.g. ``"context.ip_address"``, ``"metadata.*"`` or ``"context"``.

    Returns:
        The parsed path.

    Raises:
        ValueError: naming the bad path and the allowed forms.
    """
    if not isinstance(text, str):
        raise ValueError(f"invalid field path {text!r}: expected text; {_PATH_HELP}")
    parts = tuple(p.strip() for p in text.strip().split("."))
    if parts[0] not in ENCRYPTION_ROOTS:
        raise ValueError(
            f"invalid field path {text!r}: {parts[0]!r} cannot be encrypted; {_PATH_HELP}"
        )
    if any(not p for p in parts):
        raise ValueError(f"invalid field path {text!r}: an empty name between dots; {_PATH_HELP}")
    if any("*" in p for p in parts[1:-1]) or ("*" in parts[-1] and parts[-1] != "*"):
        raise ValueError(
            f"invalid field path {text!r}: '*' is allowed only as ROOT.*; {_PATH_HELP}"
        )
    if parts[-1] == "*" and len(parts) != 2:
        raise ValueError(
            f"invalid field path {text!r}: '*' is allowed only as ROOT.*; {_PATH_HELP}"
        )
    return FieldPath(parts)


def _as_list(value: Any, field: str, example: str) -> list[str]:
    """A list setting from a list, a comma-separated string or a JSON array string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null", "[]"):
            return []
        if text.startswith("["):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise ValueError(
                    f"invalid {field} {value!r}: not a JSON array; use a comma-separated "
                    f"list or a JSON array, e.g. {example}"
                ) from None
        else:
            return [p.strip() for p in text.split(",") if p.strip()]
    if not isinstance(value, list | tuple):
        raise ValueError(f"invalid {field} {value!r}: expected a list of names, e.g. {example}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(
                f"invalid {field} entry {item!r}: every entry must be non-empty text, "
                f"e.g. {example}"
            )
        out.append(item.strip())
    return out


def check_redact_keys(value: Any) -> list[str]:
    """Validate ``redact_keys``: extra secret key names, added to the built-in list.

    Raises:
        ValueError: an entry that is not text or has no letters or digits.
    """
    from .redaction import normalize_key

    keys = _as_list(value, "redact_keys", '["ssn", "iban"]')
    for key in keys:
        if not normalize_key(key).replace("_", ""):
            raise ValueError(
                f"invalid redact_keys entry {key!r}: a key needs a letter or digit, "
                'e.g. "ssn" or "x-session-secret"'
            )
    return list(dict.fromkeys(keys))


_UNSET_WORDS = ("", "null", "Null", "NULL", "None", "~", "[]")
"""Text of an unset or templated-away setting (``""``, YAML/JSON ``null``, Python's
``None``, an empty JSON array): it means the default patterns, never "no patterns"."""


def check_redact_patterns(value: Any) -> list[str]:
    """Validate ``redact_patterns``; ``"none"`` means no value patterns, ``"default"``
    stands for the default set and ``"all"`` for every pattern.

    An empty or blank text, ``null``, ``None`` or ``[]`` (how an unset variable often
    arrives through a template) means the default set: only the explicit word ``none``
    (or ``off``), or an empty list given in code or YAML, turns the value patterns off.

    Raises:
        ValueError: naming the unknown pattern and the allowed ones.
    """
    from .redaction_patterns import DEFAULT_PATTERNS, PATTERN_NAMES, check_pattern_names

    if value is None or (isinstance(value, str) and value.strip() in _UNSET_WORDS):
        return list(DEFAULT_PATTERNS)
    names: list[str] = []
    for name in _as_list(value, "redact_patterns", '["jwt", "credit_card", "email"]'):
        lowered = name.lower()
        if lowered == "default":
            names.extend(DEFAULT_PATTERNS)
        elif lowered == "all":
            names.extend(PATTERN_NAMES)
        elif lowered not in ("none", "off"):
            names.append(lowered)
    return list(check_pattern_names(names))


def check_encrypt_fields(value: Any) -> list[str]:
    """Validate ``encrypt_fields``; returns the normalized paths without duplicates.

    Raises:
        ValueError: naming the bad path and the allowed forms.
    """
    paths = [
        parse_field_path(p).text for p in _as_list(value, "encrypt_fields", "context.ip_address")
    ]
    return list(dict.fromkeys(paths))


def check_blind_index_fields(value: Any, encrypt_fields: list[str] | None) -> list[str]:
    """Validate ``blind_index_fields`` against ``encrypt_fields``.

    A blind index is kept for one encrypted value, so a listed field is encrypted on its
    own (also when ``encrypt_fields`` does not name it); it must not lie inside a larger
    object that ``encrypt_fields`` encrypts as one value.

    Raises:
        ValueError: naming the path and what to change.
    """
    encrypted = {parse_field_path(p) for p in encrypt_fields or []}
    out: list[str] = []
    for raw in _as_list(value, "blind_index_fields", "context.ip_address"):
        path = parse_field_path(raw)
        if path.whole:
            raise ValueError(
                f"invalid blind_index_fields entry {raw!r}: a blind index is kept per value; "
                f"name a key ({path.root}.KEY) or every key ({path.root}.*)"
            )
        inside = [
            FieldPath(path[:i]) for i in range(1, len(path)) if FieldPath(path[:i]) in encrypted
        ]
        if len(path) > 2 and FieldPath((path.root, "*")) in encrypted:
            inside.append(FieldPath(path[:2]))
        if inside:
            raise ValueError(
                f"invalid blind_index_fields entry {raw!r}: encrypt_fields encrypts "
                f"{inside[0].text!r} as one value, so {path.text!r} has no value of its own; "
                f"encrypt {path.text!r} separately or drop it from blind_index_fields"
            )
        out.append(path.text)
    return list(dict.fromkeys(out))
