"""Injection patterns: attacks that must match, look-alikes that must not, bounded cost."""

from __future__ import annotations

import time

import pytest

from plexichat.core.logging.security.detection_patterns import find_injections, scan_event
from plexichat.core.logging.security_logger import SecurityEvent, SecurityEventType

T = SecurityEventType


def kinds(text: str, *, single_line: bool = True) -> set[SecurityEventType]:
    return {f.kind for f in find_injections("field", text, single_line=single_line)}


@pytest.mark.parametrize(
    "text",
    [
        "' OR 1=1 --",
        "admin'--",
        'x" or "a"="a',
        "1 OR 1=1",
        "1' UNION SELECT username, password FROM users--",
        "1 UNION/**/ALL/**/SELECT NULL",
        "1; DROP TABLE users",
        "1'; exec xp_cmdshell 'dir'",
        "1 AND SLEEP(5)",
        "1'; WAITFOR DELAY '0:0:5'--",
        "SELECT * FROM information_schema.tables",
        "%27%20OR%201%3D1%20--",  # URL-encoded
        "1%2527%20OR%201=1",  # double-encoded quote
    ],
)
def test_sql_injection_matches(text: str) -> None:
    """Classic SQL injection payloads, plain and encoded."""
    assert T.SQL_INJECTION_ATTEMPT in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js>",
        "<img src=x onerror=alert(1)>",
        "<svg/onload=alert(1)>",
        '" onmouseover="alert(1)',
        "javascript:alert(document.cookie)",
        "<iframe src=//evil.example>",
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "data:text/html;base64,PHNjcmlwdD4=",
    ],
)
def test_xss_matches(text: str) -> None:
    """Script tags, event handlers, script URLs, encoded forms."""
    assert T.XSS_ATTEMPT in kinds(text)


@pytest.mark.parametrize(
    "text",
    [
        "../../etc/passwd",
        "..\\..\\windows\\win.ini",
        "/static/..%2f..%2fetc%2fshadow",
        "/files/%252e%252e%252fsecret",
        "/download?f=%c0%ae%c0%ae/%c0%ae%c0%ae/boot.ini",
        "/proc/self/environ",
        "image.png%00.php",
        "..",
    ],
)
def test_path_traversal_matches(text: str) -> None:
    """Dot-dot segments (plain, encoded, double-encoded, overlong), sensitive files, NUL."""
    assert T.PATH_TRAVERSAL_ATTEMPT in kinds(text)


@pytest.mark.parametrize(
    "text",
    ["bob\r\nINFO admin logged in", "bob\n", "x\x1b[31mred", "a\x00b", "a\u2028b", "/a%0d%0ab"],
)
def test_log_injection_matches_in_single_line_fields(text: str) -> None:
    """CR, LF, escapes and other control characters, also URL-encoded."""
    assert T.LOG_INJECTION_ATTEMPT in kinds(text)
    assert T.LOG_INJECTION_ATTEMPT not in kinds(text, single_line=False)


@pytest.mark.parametrize(
    "text",
    [
        "O'Brien",
        "D'Angelo and Smith",
        "rock 'n' roll",
        "it's -- really -- fine",
        "the union selected a new leader",
        "Select your plan; update later",
        "orders: 1 or 2 = 3",
        "Please sleep well",
        "<b>bold</b> and <i>italic</i>",
        "2 < 3 and 5 > 4",
        "Read JavaScript: The Good Parts",
        "wait... what?",
        "v1.2..3 release",
        "/api/v2/users/42?sort=desc&page=2",
        "C:\\Program Files\\app",
        "jean-luc.picard@example.com",
        "192.168.1.100",
        "2001:db8::1",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0",
        "50% off + free shipping & returns",
        "tab\tseparated",
    ],
)
def test_look_alikes_do_not_match(text: str) -> None:
    """Names, prose, URLs, agents and addresses are not attacks."""
    assert kinds(text) == set()


def test_findings_say_where_and_what() -> None:
    """A finding names the field, the pattern and a short sample."""
    (finding,) = find_injections("endpoint", "/q?id=1 UNION SELECT 1", single_line=True)
    assert (finding.kind, finding.field, finding.pattern) == (
        T.SQL_INJECTION_ATTEMPT, "endpoint", "union_select",
    )  # fmt: skip
    assert finding.sample == "union select"


def test_scan_event_walks_details_boundedly() -> None:
    """Nested details are scanned (bounded depth and count); first finding per kind."""
    event = SecurityEvent(
        T.DATA_ACCESS,
        details={
            "a": {"b": ["ok", "' or 1=1 --"]},
            "c": "' or 2=2 --",
            "deep": {"x": {"y": {"z": "<script>"}}},
        },
    )
    findings = scan_event(event, 4096)
    assert [(f.kind, f.field) for f in findings] == [(T.SQL_INJECTION_ATTEMPT, "details.a.b[1]")]
    many = SecurityEvent(
        T.DATA_ACCESS, details={f"k{i}": "fine" for i in range(100)} | {"z": "<script>"}
    )
    assert scan_event(many, 4096) == []  # past the first 32 strings


def test_hostile_input_costs_linear_time() -> None:
    """Long adversarial strings are checked in milliseconds (no catastrophic backtracking)."""
    payloads = [
        "'" + " " * 4000 + "or",
        "<a" + " " * 4000,
        "<" + "a" * 4095,
        "../" * 1365,
        "%" * 4096,
        "/*" * 2048,
        "union " * 682,
        "' or " * 819,
    ]
    start = time.perf_counter()
    for text in payloads:
        find_injections("f", text, single_line=True, max_length=4096)
    assert time.perf_counter() - start < 1.0


def test_overlong_utf8_dots_alone() -> None:
    """Overlong UTF-8 encodings of '.' and '/' are traversal even without a known file."""
    (finding,) = find_injections("endpoint", "/files/%c0%ae%c0%ae%c0%afsecret", single_line=False)
    assert finding.pattern in ("overlong_encoding", "dot_dot")
    (overlong,) = find_injections("endpoint", "/files/%u002e%u002e", single_line=False)
    assert overlong.pattern == "overlong_encoding"


def test_scan_event_reads_any_object_and_caps_nested_details() -> None:
    """A duck-typed event is read attribute by attribute; nested strings stop at 32."""

    class Request:
        endpoint = "/a/../../etc/passwd"

    (finding,) = scan_event(Request(), 4096)
    assert (finding.kind, finding.field) == (T.PATH_TRAVERSAL_ATTEMPT, "endpoint")
    nested = {"a": [f"ok {i}" for i in range(40)], "b": "<script>"}
    assert scan_event(SecurityEvent(T.DATA_ACCESS, details=nested), 4096) == []
