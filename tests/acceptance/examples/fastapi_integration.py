from fastapi import FastAPI, Request
from plexichat.core.logging import get_logger
from plexichat.core.logging.performance_logger import timer

app = FastAPI()
logger = get_logger("fastapi_app")

@app.middleware("http")
async def logging_middleware(request: Request, call_next):
    with timer("request_processing", tags={"endpoint": request.url.path}):
        response = await call_next(request)
        
        logger.info("Request processed", extra={
            "context": {
                "method": request.method,
                "path": request.url.path,
                "status_code": response.status_code
            }
        })
        
        return response
