"""Human sizes ("100 MB") and durations ("1 day") in configuration values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plexichat.core.logging._config.units import (
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)

OFF_VALUES: list[object] = [
    None,
    False,
    "off",
    "OFF",
    " Off ",
    "none",
    "never",
    "false",
    "0",
    "disabled",
    "",
]

DURATION_UNITS = {"minute": 60, "hour": 3600, "day": 86_400, "week": 604_800}


# --- parse_size ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100 MB", 100_000_000),
        ("100MB", 100_000_000),
        ("100 mb", 100_000_000),
        ("512 KiB", 512 * 1024),
        ("2 GiB", 2 * 1024**3),
        ("1 TiB", 1024**4),
        ("1.5 KB", 1500),
        ("10 GB", 10_000_000_000),
        ("3 TB", 3_000_000_000_000),
        ("7 k", 7000),
        ("2 m", 2_000_000),
        ("  7 b ", 7),
        ("4096", 4096),
    ],
)
def test_parse_size_reads_units(text: str, expected: int) -> None:
    """Decimal (KB, MB) and binary (KiB, MiB) units in any case, with or without a space."""
    assert parse_size(text) == expected


def test_parse_size_accepts_a_number_of_bytes() -> None:
    """A plain positive number is a number of bytes."""
    assert parse_size(4096) == 4096


def test_parse_size_decimal_text_is_exact() -> None:
    """Fractions of a unit give the exact byte count ("1.001 KB" is 1001, not 1000)."""
    assert parse_size("1.001 KB") == 1001
    assert parse_size("4.35 MB") == 4_350_000


@pytest.mark.parametrize("value", OFF_VALUES)
def test_parse_size_off_disables(value: object) -> None:
    """ "off", "none", "never", "0", "", None and YAML's False all turn a size limit off."""
    assert parse_size(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "ten",
        "-1 MB",
        "1 XB",
        "0 MB",
        "0.0001 B",
        "1e3 MB",
        "1,000 KB",
        0,
        -5,
        0.5,
        True,
        math.inf,
        math.nan,
        [1],
    ],
)
def test_parse_size_rejects_bad_values(value: object) -> None:
    """Anything that is not a positive size raises ValueError naming the value."""
    with pytest.raises(ValueError, match="invalid size") as info:
        parse_size(value)
    assert repr(value) in str(info.value)


def test_parse_size_error_lists_the_accepted_forms() -> None:
    """The error for unreadable text shows an example of each accepted form."""
    with pytest.raises(ValueError, match=r'"100 MB".*"512 KiB".*"off"'):
        parse_size("ten")


def test_parse_size_huge_text_is_exact() -> None:
    """A size too large for a float is still exact (no OverflowError)."""
    huge = "9" * 400
    assert parse_size(f"{huge} MB") == int(huge) * 1_000_000


# --- parse_duration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 day", 86_400.0),
        ("30 days", 30 * 86_400.0),
        ("12 hours", 43_200.0),
        ("1.5h", 5400.0),
        ("30 min", 1800.0),
        ("  3 MINUTES ", 180.0),
        ("90s", 90.0),
        ("45", 45.0),
        ("2 weeks", 1_209_600.0),
        ("1 year", 31_536_000.0),
        ("hourly", 3600.0),
        ("Daily", 86_400.0),
        ("weekly", 604_800.0),
    ],
)
def test_parse_duration_reads_units(text: str, expected: float) -> None:
    """Seconds, minutes, hours, days, weeks, years and the words hourly/daily/weekly."""
    assert parse_duration(text) == expected


def test_parse_duration_accepts_a_number_of_seconds() -> None:
    """A plain positive number is a number of seconds, returned as a float."""
    result = parse_duration(2.5)
    assert result == 2.5
    assert isinstance(parse_duration(45), float)


@pytest.mark.parametrize("value", OFF_VALUES)
def test_parse_duration_off_disables(value: object) -> None:
    """ "off", "none", "never", "0", "", None and YAML's False all turn a duration off."""
    assert parse_duration(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "-1 day",
        "1 fortnight",
        "ten",
        "1h30m",
        "9" * 400 + " s",
        0,
        -1,
        True,
        math.inf,
        math.nan,
        {"days": 1},
    ],
)
def test_parse_duration_rejects_bad_values(value: object) -> None:
    """Anything that is not a finite positive duration raises ValueError naming the value."""
    with pytest.raises(ValueError, match="invalid duration") as info:
        parse_duration(value)
    assert repr(value) in str(info.value)


def test_parse_duration_error_lists_the_accepted_forms() -> None:
    """The error for unreadable text shows examples and how to turn the feature off."""
    with pytest.raises(ValueError, match=r'"1 day".*"30 min".*"off"'):
        parse_duration("-1 day")


# --- format_size / format_duration --------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (None, "off"),
        (999, "999 B"),
        (1000, "1 KB"),
        (1500, "1.5 KB"),
        (1_234_567, "1234.567 KB"),
        (100_000_000, "100 MB"),
        (2_500_000_000, "2.5 GB"),
        (2 * 10**12, "2 TB"),
        (10**18, "1000000 TB"),
    ],
)
def test_format_size(size: int | None, text: str) -> None:
    """Sizes display in the largest decimal unit that keeps them exact, never in e-notation."""
    assert format_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "off"),
        (60, "1 minute"),
        (3600, "1 hour"),
        (7200, "2 hours"),
        (86_400, "1 day"),
        (172_800, "2 days"),
        (604_800, "1 week"),
        (90, "90 seconds"),
        (1.5, "1.5 seconds"),
        (10_000_000.0, "10000000 seconds"),
        (1e-7, "0.0000001 seconds"),
    ],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    """Durations display in the largest whole unit, else seconds, never in e-notation."""
    assert format_duration(seconds) == text


# --- properties ---------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10**9))
def test_mb_is_a_million_bytes(n: int) -> None:
    """ "{n} MB" is n * 1,000,000 bytes for any positive n."""
    assert parse_size(f"{n} MB") == n * 1_000_000


@given(st.integers(min_value=1, max_value=10**9))
def test_mib_is_a_power_of_two(n: int) -> None:
    """ "{n} MiB" is n * 2**20 bytes for any positive n."""
    assert parse_size(f"{n}MiB") == n * 2**20


@given(st.integers(min_value=1, max_value=10**6))
def test_thousandths_of_a_kb_are_exact(n: int) -> None:
    """A KB value with three decimals parses to exactly that many bytes."""
    assert parse_size(f"{n // 1000}.{n % 1000:03d} KB") == n


@given(st.integers(min_value=1, max_value=10**20))
def test_format_size_round_trips(size: int) -> None:
    """parse_size(format_size(n)) == n for any positive byte count."""
    assert parse_size(format_size(size)) == size


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(DURATION_UNITS)))
def test_format_duration_round_trips_whole_units(n: int, unit: str) -> None:
    """parse_duration(format_duration(n units)) == n units for whole minutes to weeks."""
    seconds = float(n * DURATION_UNITS[unit])
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False))
def test_format_duration_round_trips_any_seconds(seconds: float) -> None:
    """parse_duration(format_duration(x)) == x for any positive finite number of seconds."""
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=1, max_value=10**6))
def test_duration_in_seconds_equals_number(n: int) -> None:
    """ "{n}s", "{n} seconds" and n all mean n seconds."""
    assert parse_duration(f"{n}s") == parse_duration(f"{n} seconds") == parse_duration(n) == n
