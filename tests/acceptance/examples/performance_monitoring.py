from plexichat.core.logging.performance_logger import timer, record_metric, time_function

# Time operations with context manager
with timer("database_query", tags={"table": "users"}):
    result = database.query("SELECT * FROM users")

# Record custom metrics
record_metric("active_users", 1250, "count")
record_metric("response_size", 2048, "bytes", tags={"endpoint": "/api/users"})

# Automatic function timing
@time_function("user_authentication")
def authenticate_user(username, password):
    # Function implementation
    pass
