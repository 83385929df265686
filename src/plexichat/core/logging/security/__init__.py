"""Security features of PlexiChat Logging."""
