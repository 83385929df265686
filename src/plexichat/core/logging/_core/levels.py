"""Log levels and categories, registered with the stdlib ``logging`` module."""

from __future__ import annotations

import enum
import logging

__all__ = [
    "AUDIT",
    "SECURITY",
    "TRACE",
    "LogCategory",
    "LogLevel",
    "category_value",
    "level_name",
    "parse_level",
    "severity_number",
]

TRACE = 5
SECURITY = 60
AUDIT = 70


class LogLevel(enum.IntEnum):
    """The eight levels; SECURITY and AUDIT rank above CRITICAL so no threshold drops them.

    Values are the stdlib numbers, so ``logger.log(LogLevel.TRACE, ...)`` and
    ``logging.getLevelName("SECURITY")`` both work.
    """

    TRACE = TRACE
    DEBUG = logging.DEBUG
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = logging.CRITICAL
    SECURITY = SECURITY
    AUDIT = AUDIT


class LogCategory(enum.StrEnum):
    """What a record is about; the value (lower case) is what lands in the JSON ``category``."""

    SYSTEM = "system"
    SECURITY = "security"
    PERFORMANCE = "performance"
    API = "api"
    DATABASE = "database"
    AUTH = "auth"
    PLUGIN = "plugin"
    BACKUP = "backup"
    CLUSTERING = "clustering"
    MONITORING = "monitoring"
    USER = "user"
    AUDIT = "audit"
    NETWORK = "network"
    CACHE = "cache"


def _register() -> None:
    for member in (LogLevel.TRACE, LogLevel.SECURITY, LogLevel.AUDIT):
        logging.addLevelName(int(member), member.name)


_register()

# OpenTelemetry logs data model severity numbers; SECURITY and AUDIT sit in the FATAL range
# above CRITICAL (21), as they rank above it here.
_SEVERITY: dict[int, int] = {
    TRACE: 1,
    logging.DEBUG: 5,
    logging.INFO: 9,
    logging.WARNING: 13,
    logging.ERROR: 17,
    logging.CRITICAL: 21,
    SECURITY: 22,
    AUDIT: 23,
}
_SORTED_LEVELS = sorted(_SEVERITY)


def severity_number(levelno: int) -> int:
    """Return the OpenTelemetry severity number for a stdlib level number.

    Custom levels take the number of the nearest standard level at or below them.
    """
    found = _SEVERITY.get(levelno)
    if found is not None:
        return found
    best = 1
    for known in _SORTED_LEVELS:
        if known <= levelno:
            best = _SEVERITY[known]
    return best


_NAMES: dict[int, str] = {int(m): m.name for m in LogLevel}


def level_name(levelno: int) -> str:
    """Return the name of a level number (``"Level 25"`` for unnamed custom levels)."""
    name = _NAMES.get(levelno)
    if name is None:
        found: object = logging.getLevelName(levelno)
        name = found if isinstance(found, str) else f"Level {levelno}"
    return name


LEVEL_CHOICES = tuple(m.name for m in LogLevel)


def parse_level(value: object) -> int:
    """Turn a level name (any case), number or :class:`LogLevel` into a level number.

    Raises:
        ValueError: naming the bad value and the allowed names.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid log level {value!r}: allowed are {', '.join(LEVEL_CHOICES)}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid log level {value!r}: a level number must be >= 0")
        return int(value)
    if isinstance(value, str):
        text = value.strip().upper()
        if text.isdigit():
            return int(text)
        if text == "WARN":
            text = "WARNING"
        if text == "FATAL":
            text = "CRITICAL"
        if text in LogLevel.__members__:
            return int(LogLevel[text])
        registered = logging.getLevelName(text)
        if isinstance(registered, int):
            return registered
    raise ValueError(f"invalid log level {value!r}: allowed are {', '.join(LEVEL_CHOICES)}")


def category_value(category: object) -> str:
    """Return the JSON value of a category: an enum's value, a string as given, else its str()."""
    if isinstance(category, LogCategory):
        return category.value
    if isinstance(category, str):
        return category
    if isinstance(category, enum.Enum):
        return str(category.value)
    try:
        return str(category)
    except Exception:  # noqa: BLE001 - a hostile __str__
        return f"<unprintable {type(category).__name__}>"
