"""Private implementation of the ``plexichat-logs`` commands, one module per command group."""
