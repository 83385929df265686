"""Framework integrations: request logging for FastAPI and Flask, query metrics for SQLAlchemy.

The framework modules are imported on their own (each needs its framework installed):

- :mod:`plexichat.core.logging.integrations.fastapi`: ``add_logging_middleware(app)``,
  ``LoggingMiddleware`` (pure ASGI);
- :mod:`plexichat.core.logging.integrations.flask`: ``init_app(app)``;
- :mod:`plexichat.core.logging.integrations.sqlalchemy`: ``instrument_engine(engine)``.

This package itself needs none of them: :func:`endpoint_stats` reads the per-endpoint request
counts, error rates and response-time percentiles the HTTP integrations record, and
:func:`statement_shape` is the SQL normalisation the slow-query log uses.

Example:
    >>> from plexichat.core.logging.integrations import endpoint_stats
    >>> for (method, route), s in endpoint_stats().items():  # doctest: +SKIP
    ...     print(method, route, s.requests, s.error_rate, s.p95)
"""

from __future__ import annotations

from ._http import REQUEST_ID_HEADER
from ._sqlshape import statement_kind, statement_shape
from ._stats import EndpointStats, endpoint_stats

__all__ = [
    "REQUEST_ID_HEADER",
    "EndpointStats",
    "endpoint_stats",
    "statement_kind",
    "statement_shape",
]
