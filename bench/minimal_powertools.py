"""The reference point for cold starts: the smallest honest Powertools REST handler."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="bench-minimal")
app = APIGatewayRestResolver()


@app.get("/ping")
def ping() -> dict[str, str]:
    return {"status": "ok"}


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
