from flask import Flask, request
from plexichat.core.logging import get_logger, LogCategory

app = Flask(__name__)
logger = get_logger("flask_app")

@app.before_request
def log_request():
    logger.info("Request received", extra={
        "category": LogCategory.API,
        "context": {
            "method": request.method,
            "path": request.path,
            "ip_address": request.remote_addr
        }
    })
