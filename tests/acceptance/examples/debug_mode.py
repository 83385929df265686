from plexichat.core.logging.config import set_logging_profile

# Enable debug mode for troubleshooting
set_logging_profile("debug")
