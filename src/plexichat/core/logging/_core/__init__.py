"""Private core of :mod:`plexichat.core.logging`: levels, context, events, logger, handler."""
