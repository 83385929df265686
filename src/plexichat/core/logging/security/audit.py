"""The audit trail: who did what to which resource, how it ended, and what changed.

Audit records are AUDIT-level records (the highest level) in category ``audit`` from the
logger ``plexichat.audit``. They are never sampled and never dropped: when the writer's
queue is full the logging call waits for room. ``before`` and ``after`` are written with the
values of secret-looking keys masked (:func:`~.redaction.mask_secrets`).

Record ``metadata``: ``actor``, ``action``, ``resource``, ``outcome``, then ``before``,
``after``, ``changed`` (the top-level keys whose values differ, when both are mappings) and
``reason`` when given. The bound context (``log_context``) lands in ``context`` as usual.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from .._core.errors import error_reporter
from .._core.event import safe_repr
from .._core.logger import plexi_logger
from .._core.manager import get_logging_manager
from .redaction import mask_secrets

__all__ = ["AuditLogger", "changed_keys", "get_audit_logger"]

_MESSAGE_PART = 200


def _part(value: object) -> str:
    text = value if isinstance(value, str) else safe_repr(value)
    return text if len(text) <= _MESSAGE_PART else text[: _MESSAGE_PART - 3] + "..."


def _plain(value: object) -> object:
    """An enum member as its value (``Outcome.SUCCESS`` -> ``"success"``), else the value."""
    return value.value if isinstance(value, enum.Enum) else value


def changed_keys(before: object, after: object) -> list[str] | None:
    """The top-level keys whose values differ between two mappings; None for non-mappings
    (or mappings that cannot be compared)."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return None
    marker = object()
    try:
        keys = list(before) + [k for k in after if k not in before]
        return [
            key if isinstance(key, str) else safe_repr(key)
            for key in keys
            if bool(before.get(key, marker) != after.get(key, marker))
        ]
    except Exception:  # noqa: BLE001 - hostile mappings or values: no key list
        return None


class AuditLogger:
    """Writes the audit trail: one AUDIT record per action; never raises.

    Args:
        name: the logger name of the records.

    Example:
        >>> from plexichat.core.logging.security_logger import get_audit_logger
        >>> get_audit_logger().log(
        ...     "admin", "update", "config/logging", "success",
        ...     before={"level": "INFO"}, after={"level": "DEBUG"}, reason="debugging")
    """

    def __init__(self, name: str = "plexichat.audit") -> None:
        self.name = name
        self._logger = plexi_logger(name)

    def log(
        self,
        actor: object,
        action: object,
        resource: object,
        outcome: object,
        before: object = None,
        after: object = None,
        reason: object = None,
        details: object = None,
        *,
        always: bool = False,
    ) -> None:
        """Write one audit record (nothing when ``audit_enabled`` is false).

        Args:
            actor: who acted: a user id, a service name, or a mapping such as
                ``{"user_id": "u1", "ip_address": "10.0.0.5"}``.
            action: what they did (``"update"``, ``"delete"``, ``"export"``, ...).
            resource: what they did it to (``"config/logging"``, ``"user:42"``, ...).
            outcome: how it ended (``"success"``, ``"failure"``, ``"denied"``, ...).
            before: the state before the change (secrets masked).
            after: the state after the change (secrets masked).
            reason: why (a ticket, a justification).
            details: what else identifies the action (e.g. the filters of a read; secrets
                masked).
            always: write the record even when ``audit_enabled`` is false (the log
                server's own access audit: reads of security data and exports).
        """
        try:
            manager = get_logging_manager()
            manager.ensure_configured()
            if not manager.config.audit_enabled and not always:
                return
            actor, action, resource, outcome = (
                _plain(actor), _plain(action), _plain(resource), _plain(outcome),
            )  # fmt: skip
            metadata: dict[str, Any] = {
                "actor": actor,
                "action": action,
                "resource": resource,
                "outcome": outcome,
            }
            if before is not None:
                metadata["before"] = mask_secrets(before)
            if after is not None:
                metadata["after"] = mask_secrets(after)
            changed = changed_keys(before, after)
            if changed is not None:
                metadata["changed"] = changed
            if reason is not None:
                metadata["reason"] = reason
            if details is not None:
                metadata["details"] = mask_secrets(details)
            message = f"{_part(action)} {_part(resource)}: {_part(outcome)}"
            self._logger.audit(
                message, extra={"category": "audit", "metadata": metadata}, stacklevel=2
            )
        except Exception as exc:  # noqa: BLE001 - auditing never crashes the caller
            error_reporter.report("audit-logger", f"could not write an audit record: {exc!r}")


_audit_logger: AuditLogger | None = None


def get_audit_logger() -> AuditLogger:
    """Return the process-wide :class:`AuditLogger` (logger ``plexichat.audit``)."""
    global _audit_logger
    if _audit_logger is None:
        _audit_logger = AuditLogger()
    return _audit_logger
