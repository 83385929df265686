"""Value patterns of redaction: secrets recognised inside strings.

Each pattern replaces what it finds by ``[REDACTED:<name>]``. A cheap trigger search runs
first, so a string with nothing suspicious costs one regex search.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeAlias

__all__ = ["DEFAULT_PATTERNS", "PATTERN_NAMES", "ValueScanner", "luhn_valid"]

PATTERN_NAMES = (
    "private_key",
    "jwt",
    "url_credentials",
    "key_value",
    "bearer",
    "credit_card",
    "email",
)
"""Every value pattern, in the order they are applied.

* ``private_key``: a PEM ``-----BEGIN ... PRIVATE KEY-----`` block.
* ``jwt``: a JSON Web Token (``eyJ...`` header, payload and signature).
* ``bearer``: the credential after ``Bearer `` (HTTP authorization).
* ``url_credentials``: the password in ``scheme://user:password@host``.
* ``key_value``: the value in ``password=...``, ``api_key: ...``, ``"token": "..."`` and
  similar text, for every default secret key and every configured ``redact_keys`` entry.
* ``credit_card``: 13 to 19 digits (spaces or dashes allowed) that pass the Luhn check and
  start like a card number (2-6), so most order ids and timestamps are left alone.
* ``email``: an e-mail address (off by default: addresses are often wanted in logs).
"""

DEFAULT_PATTERNS = (
    "private_key",
    "jwt",
    "url_credentials",
    "key_value",
    "bearer",
    "credit_card",
)
"""The value patterns on by default: every pattern except ``email``."""

_SECRET_WORDS = (
    r"password|passwd|pwd|passphrase|secret|token|api[-_]?key|apikey|authorization"
    r"|cookie|private[-_]?key|credentials"
)


def luhn_valid(digits: str) -> bool:
    """Return True when the digit string passes the Luhn checksum.

    Args:
        digits: Only the digits ``0-9``.

    Returns:
        Whether the last digit is the Luhn check digit of the others.
    """
    total = 0
    for index, ch in enumerate(reversed(digits)):
        number = ord(ch) - 48
        if index % 2:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = text.replace(" ", "").replace("-", "")
    if 13 <= len(digits) <= 19 and digits[0] in "23456" and luhn_valid(digits):
        return "[REDACTED:credit_card]"
    return text


def _key_words(extra_keys: Iterable[str]) -> str:
    words = _SECRET_WORDS
    extra = [re.escape(k).replace(r"\-", "[-_]").replace("_", "[-_]") for k in extra_keys if k]
    if extra:
        words += "|" + "|".join(extra)
    return words


def _key_value_regex(words: str) -> re.Pattern[str]:
    # The match starts at the secret word itself: whatever precedes it in the key
    # (``db_``, ``x-``) stays outside the match and so is kept as it is. A leading
    # ``\b[\w-]*?`` prefix would retry every word boundary of a long ``a-a-a-...`` run
    # and rescan the run from each one (quadratic); see the module docstring.
    return re.compile(
        r"((?:" + words + r")[\"']?\s*[=:]\s*)"
        r"(?!\[REDACTED)(?!\?(?:[\s,;)&]|$))(\"[^\"]*\"|'[^']*'"
        r"|(?:basic|bearer|digest|negotiate|token)\s+[^\s,;&\"'}\]]+|[^\s,;&\"'}\]]+)",
        re.IGNORECASE,
    )


def _key_value(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[0] in "\"'" else ""
    return f"{match.group(1)}{quote}[REDACTED:key_value]{quote}"


_Replacement: TypeAlias = "str | Callable[[re.Match[str]], str]"
_Rule = tuple[Callable[[str], bool], re.Pattern[str], _Replacement]
_DIGITS4 = re.compile(r"[0-9]{4}").search

_RULES: dict[str, _Rule] = {
    "private_key": (
        lambda t: "PRIVATE KEY" in t,
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY-----|\Z)",
            re.DOTALL,
        ),
        "[REDACTED:private_key]",
    ),
    "jwt": (
        lambda t: "eyJ" in t,
        # entered once per [A-Za-z0-9_-] run, committed (atomic group) to the run's first
        # "eyJ" at a word boundary: a later "eyJ" of the same run would fail wherever the
        # first one fails, so retrying it (rescanning the run) only made "eyJa-eyJa-..."
        # quadratic
        re.compile(
            r"(?<![A-Za-z0-9_-])(?>([A-Za-z0-9_-]*?)\beyJ)"
            r"[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*"
        ),
        r"\1[REDACTED:jwt]",
    ),
    "url_credentials": (
        lambda t: "://" in t and "@" in t,
        # userinfo runs to the LAST "@" of the authority (a password may hold "@"); the match
        # starts at "://" (the scheme before it stays outside), so each authority is scanned
        # once and a long "a.a.a..." run costs nothing
        re.compile(r"(?<=[A-Za-z0-9+.-])(://[^/\s:]*:)[^/\s]+(@)"),
        r"\1[REDACTED:url_credentials]\2",
    ),
    "bearer": (
        lambda t: "earer" in t or "EARER" in t,
        re.compile(r"(\bbearer\s+)[A-Za-z0-9\-._~+/]{8,}=*", re.IGNORECASE),
        r"\1[REDACTED:bearer]",
    ),
    "credit_card": (
        lambda t: len(t) >= 13 and _DIGITS4(t) is not None,
        re.compile(r"(?<![\w.])\d(?:[ -]?\d){12,18}(?!\w)"),  # not inside a hex id
        _card,
    ),
    "email": (
        lambda t: "@" in t,
        # the whole local-part run when the match starts the run; inside a run (just after
        # a previous address, "a@b.com-x@y.org") at most 64 characters (the RFC limit): an
        # unbounded retry from every position of a long run was quadratic
        re.compile(
            r"(?:(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++|[A-Za-z0-9._%+-]{1,64}+)"
            r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
        ),
        "[REDACTED:email]",
    ),
}


def _key_value_rule(extra_keys: Iterable[str]) -> _Rule:
    words = _key_words(extra_keys)
    hint = re.compile(words, re.IGNORECASE).search

    def prefilter(text: str) -> bool:
        return ("=" in text or ":" in text) and hint(text) is not None

    return prefilter, _key_value_regex(words), _key_value


def check_pattern_names(names: Iterable[str]) -> tuple[str, ...]:
    """Return ``names`` without duplicates, or raise naming the unknown one.

    Raises:
        ValueError: a name that is not in :data:`PATTERN_NAMES`.
    """
    out: list[str] = []
    for name in names:
        if name not in PATTERN_NAMES:
            raise ValueError(
                f"unknown redaction pattern {name!r}: allowed are {', '.join(PATTERN_NAMES)} "
                '(or "none" for no value patterns)'
            )
        if name not in out:
            out.append(name)
    return tuple(out)


_CLEAN_LIMIT = 8192
_CLEAN_MAX_LENGTH = 512


class ValueScanner:
    """Applies the chosen value patterns to strings.

    Each pattern has a cheap prefilter (substring tests), and strings found clean are
    remembered (a bounded set), so repeated messages cost one set lookup.

    Args:
        names: Pattern names from :data:`PATTERN_NAMES`.
        extra_keys: Extra secret key names for the ``key_value`` pattern.

    Raises:
        ValueError: an unknown pattern name.
    """

    __slots__ = ("_clean", "_rules")

    def __init__(self, names: Iterable[str], *, extra_keys: Iterable[str] = ()) -> None:
        chosen = set(check_pattern_names(names))
        self._rules = tuple(
            _key_value_rule(extra_keys) if name == "key_value" else _RULES[name]
            for name in PATTERN_NAMES
            if name in chosen
        )
        self._clean: set[str] = set()

    def scan(self, text: str) -> str:
        """Return ``text`` with every match of the chosen patterns replaced."""
        clean = self._clean
        if text in clean:
            return text
        out = text
        for prefilter, regex, replacement in self._rules:
            if prefilter(out):
                out = regex.sub(replacement, out)
        if out == text:
            if len(text) <= _CLEAN_MAX_LENGTH:
                if len(clean) >= _CLEAN_LIMIT:
                    clean.clear()
                clean.add(text)
            return text
        return out
