"""The log server: REST API, WebSocket live tail, tokens and roles, the web viewer.

The public names are in :mod:`plexichat.core.logging.log_api`.
"""
