from plexichat.core.logging import get_logger, LogCategory

# Get a logger
logger = get_logger("my_module")

# Basic logging
logger.info("Application started")
logger.warning("Configuration file not found, using defaults")
logger.error("Database connection failed")

# Structured logging with context
logger.info("User login", extra={
    "category": LogCategory.SECURITY,
    "context": {
        "user_id": "user123",
        "ip_address": "192.168.1.100"
    },
    "metadata": {
        "login_method": "password",
        "success": True
    }
})
