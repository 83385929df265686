"""Private configuration internals behind :mod:`plexichat.core.logging.config`."""
