"""Injection patterns found in request fields: SQL, XSS, path traversal and log injection.

Text is cut to a maximum length, then checked as given and after URL-decoding (twice, for
double encoding) and HTML-unescaping, lower-cased. The patterns aim at what attacks look
like, not at words: ``"the union selected a leader"``, ``"O'Brien"``, ``"<b>bold</b>"``
and ``"wait..."`` do not match; ``"' OR 1=1 --"``, ``"UNION/**/SELECT"``,
``"<img src=x onerror=alert(1)>"`` and ``"..%2f..%2fetc/passwd"`` do. Every pattern is
linear in the text (no nested quantifiers), so a hostile field costs at most its length.

Log injection (CR, LF, ANSI escapes and other control characters that forge or hide log
lines) is checked only in single-line fields such as the user name or the endpoint; free
text in ``details`` may span lines.
"""

from __future__ import annotations

import html
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from .events import SecurityEventType

__all__ = ["SINGLE_LINE_FIELDS", "Finding", "find_injections", "scan_event"]

_T = SecurityEventType

_SQL = re.compile(
    "|".join(
        (
            r"(?P<tautology>['\"`]\s*\)*\s*(?:or|and|\|\||&&)\s+[\w'\"`]+\s*(?:=|<|>|like\b))",
            r"(?P<numeric_tautology>\bor\s+(?P<num>\d+)\s*=\s*(?P=num)\b)",
            r"(?P<union_select>\bunion\b[\s/*()+]*(?:all\b[\s/*()+]*)?select\b)",
            r"(?P<stacked_query>;\s*(?:drop|truncate|alter)\s+(?:table|database|schema)\b"
            r"|;\s*(?:delete\s+from|insert\s+into|shutdown\b|exec(?:ute)?\s+(?:xp_|sp_)))",
            r"(?P<quote_comment>['\"`]\s*\)*\s*(?:--|/\*|;\s*--))",
            r"(?P<time_delay>\b(?:sleep|pg_sleep|benchmark)\s*\(\s*\d|\bwaitfor\s+delay\s+')",
            r"(?P<schema_probe>\binformation_schema\b|\bxp_cmdshell\b|\bsysobjects\b"
            r"|\bload_file\s*\(|\binto\s+(?:out|dump)file\b)",
        )
    )
)
_XSS = re.compile(
    "|".join(
        (
            r"(?P<script_tag><\s*/?\s*script\b)",
            r"(?P<event_handler><[a-z!/][^>]{0,200}?[\s/\"']on[a-z]{3,24}\s*="
            r"|[\"'\s]on(?:error|load|mouseover|mouseenter|focus|blur|click|animationstart"
            r"|toggle|pageshow)\s*=)",
            r"(?P<script_url>\b(?:javascript|vbscript|livescript)\s*:\S|\bdata\s*:\s*text/html)",
            r"(?P<embedding_tag><\s*(?:iframe|frame|object|embed|applet|base|meta)\b)",
            r"(?P<dom_access>\bdocument\s*\.\s*(?:cookie|domain|write)\b"
            r"|\bwindow\s*\.\s*location\b)",
        )
    )
)
_TRAVERSAL = re.compile(
    "|".join(
        (
            r"(?P<dot_dot>(?:^|[\\/])\.\.(?:[\\/]|$))",
            r"(?P<sensitive_file>/etc/(?:passwd|shadow|group)\b|/proc/self/"
            r"|\b(?:win|boot|system)\.ini\b|\\windows\\system32\\)",
            r"(?P<null_byte>\x00)",
        )
    )
)
_OVERLONG = re.compile(r"%c0%ae|%c0%af|%c1%9c|%e0%80%ae|%u002e|%u2215|%u2216", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
# Something every pattern above needs (checked first: most field values have none of it).
_ODD = re.compile(r"[^\w.@ -]|\.\.")
_WORDS = re.compile(
    r"\.ini\b|union|information_schema|xp_cmdshell|sysobjects|outfile|dumpfile|document|window"
)


def _suspect(text: str) -> bool:
    """Whether ``text`` could match any pattern (False for plain names, numbers, IPv4)."""
    return _ODD.search(text) is not None or _WORDS.search(text.lower()) is not None


@dataclass(frozen=True, slots=True)
class Finding:
    """One injection pattern found in one field.

    Attributes:
        kind: the event type it maps to (SQL_INJECTION_ATTEMPT, XSS_ATTEMPT,
            PATH_TRAVERSAL_ATTEMPT or LOG_INJECTION_ATTEMPT).
        field: where it was found (``"endpoint"``, ``"details.query"``, ...).
        pattern: which pattern (``"union_select"``, ``"crlf"``, ...).
        sample: the matched text (at most 80 characters, as found after decoding).
    """

    kind: SecurityEventType
    field: str
    pattern: str
    sample: str


def _variants(text: str) -> list[str]:
    """The text lower-cased, plus its URL-decoded and HTML-unescaped forms when different."""
    lowered = text.lower()
    forms = [lowered]
    decoded = lowered
    if "%" in decoded or "+" in decoded:
        decoded = unquote_plus(decoded)
        if "%" in decoded:
            decoded = unquote(decoded)
    if "&" in decoded:
        decoded = html.unescape(decoded)
    if decoded != lowered:
        forms.append(decoded)
    return forms


def _match(pattern: re.Pattern[str], forms: list[str]) -> tuple[str, str] | None:
    for form in forms:
        found = pattern.search(form)
        if found is not None:
            name = found.lastgroup or "match"
            return name, found.group(0)[:80]
    return None


def find_injections(
    field: str, text: str, *, single_line: bool, max_length: int = 4096
) -> list[Finding]:
    """The injection patterns in one field's text, at most one finding per kind.

    Args:
        field: the field's name, kept in the findings.
        text: its value; only the first ``max_length`` characters are checked.
        single_line: also check for log injection (control characters).
        max_length: how much of the text is checked.
    """
    text = text[:max_length]
    findings: list[Finding] = []
    if not _suspect(text):
        return findings
    if single_line:
        control = _CONTROL.search(text)
        if control is None and "%" in text:
            control = _CONTROL.search(unquote(text))
        if control is not None:
            name = {"\r": "crlf", "\n": "crlf", "\x1b": "ansi_escape"}.get(
                control.group(0), "control_character"
            )
            findings.append(Finding(_T.LOG_INJECTION_ATTEMPT, field, name, repr(control.group(0))))
    forms = _variants(text)
    for kind, pattern in (
        (_T.SQL_INJECTION_ATTEMPT, _SQL),
        (_T.XSS_ATTEMPT, _XSS),
        (_T.PATH_TRAVERSAL_ATTEMPT, _TRAVERSAL),
    ):
        found = _match(pattern, forms)
        if found is None and kind is _T.PATH_TRAVERSAL_ATTEMPT:
            overlong = _OVERLONG.search(text)
            if overlong is not None:
                found = ("overlong_encoding", overlong.group(0))
        if found is not None:
            findings.append(Finding(kind, field, found[0], found[1]))
    return findings


SINGLE_LINE_FIELDS = (
    "user_id",
    "ip_address",
    "session_id",
    "user_agent",
    "endpoint",
    "resource",
    "action",
    "result",
    "correlation_id",
    "source",
)
"""The event fields checked for every kind, log injection included."""

_MAX_DETAIL_STRINGS = 32
_MAX_DETAIL_DEPTH = 3


def _detail_strings(value: object, path: str, depth: int, out: list[tuple[str, str]]) -> None:
    """Collect (field path, text) of the strings in ``details``, bounded in number and depth."""
    if len(out) >= _MAX_DETAIL_STRINGS:
        return
    if isinstance(value, str):
        out.append((path, value))
    elif depth < _MAX_DETAIL_DEPTH and isinstance(value, Mapping):
        for key, item in list(value.items())[:_MAX_DETAIL_STRINGS]:
            _detail_strings(item, f"{path}.{key}", depth + 1, out)
    elif depth < _MAX_DETAIL_DEPTH and isinstance(value, list | tuple):
        for index, item in enumerate(value[:_MAX_DETAIL_STRINGS]):
            _detail_strings(item, f"{path}[{index}]", depth + 1, out)


_FIELD_VALUES = operator.attrgetter(*SINGLE_LINE_FIELDS)


def scan_event(event: object, max_length: int) -> list[Finding]:
    """The injection findings of an event's request fields and ``details``, the first of
    each kind."""
    try:
        values: tuple[object, ...] = _FIELD_VALUES(event)
    except AttributeError:  # not a SecurityEvent: read what it has
        values = tuple(getattr(event, name, None) for name in SINGLE_LINE_FIELDS)
    texts: list[tuple[str, str, bool]] = []
    # One look at all fields together (a space cannot join two parts into a pattern).
    if _suspect(" ".join([v[:max_length] for v in values if isinstance(v, str)])):
        texts = [
            (name, value, True)
            for name, value in zip(SINGLE_LINE_FIELDS, values, strict=True)
            if isinstance(value, str) and value
        ]
    details = getattr(event, "details", None)
    if details:
        strings: list[tuple[str, str]] = []
        _detail_strings(details, "details", 0, strings)
        texts.extend((path, text, False) for path, text in strings)
    if not texts:
        return []
    findings: dict[SecurityEventType, Finding] = {}
    for name, text, single_line in texts:
        for finding in find_injections(name, text, single_line=single_line, max_length=max_length):
            findings.setdefault(finding.kind, finding)
    return list(findings.values())
