from plexichat.core.logging.config import get_logging_config, set_logging_profile

# Use predefined profiles
set_logging_profile("development")  # Debug-friendly settings
set_logging_profile("production")   # Production-optimized settings
set_logging_profile("testing")      # Minimal logging for tests

# Get current configuration
config = get_logging_config()
print(f"Log level: {config.level}")
print(f"Log directory: {config.directory}")
