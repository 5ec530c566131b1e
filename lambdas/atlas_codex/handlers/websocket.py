"""The WebSocket API: connect with an API key, subscribe to a job, disconnect.

``$connect`` takes the key from the ``x-api-key`` header or the ``api_key`` query parameter
(browsers cannot set headers on a WebSocket) and refuses the connection without a valid
one. ``subscribe`` (``{"action": "subscribe", "job_id": "..."}``) is accepted for the
owner's own jobs only, and answers at once with the job's current status.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, ValidationError

from atlas_codex.api.refusals import refusal
from atlas_codex.ground import naming
from atlas_codex.ground.config import get_config
from atlas_codex.jobs.errors import JobNotFound
from atlas_codex.jobs.vocabulary import JobId
from atlas_codex.wiring import build_connections, build_key_store, build_live_push, build_manager

config = get_config()
logger = Logger(service=naming.service_name("websocket"))
keys = build_key_store(config)
connections = build_connections(config)
manager = build_manager(config)
live = build_live_push(config)


class Subscribe(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    action: Literal["subscribe"]
    job_id: JobId


def _reply(
    http_status: int,
    code: str | None = None,
    message: str | None = None,
    field: str | None = None,
    **data: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = dict(data)
    if code is not None:
        error = {"code": code, "message": message, "field": field}
        error["correlation_id"] = logger.get_correlation_id() or "unknown"
        body = {"error": {k: v for k, v in error.items() if v is not None}}
    return {"statusCode": http_status, "body": json.dumps(body)}


def _api_key(event: dict[str, Any]) -> str | None:
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "x-api-key":
            return str(value)
    value = (event.get("queryStringParameters") or {}).get("api_key")
    return str(value) if value else None


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event.get("requestContext", {})
    route = request.get("routeKey")
    connection_id = request.get("connectionId")
    logger.set_correlation_id(request.get("requestId"))
    if not connection_id:
        return _reply(400, "bad_request", "not a WebSocket event")
    if route == "$connect":
        owner = keys.owner_of(_api_key(event))
        if owner is None:
            return _reply(
                401,
                "unauthorized",
                "a valid API key is required (x-api-key header or api_key parameter)",
            )
        connections.connect(connection_id, owner)
        return _reply(200, connected=True)
    if route == "$disconnect":
        connections.disconnect(connection_id)
        return _reply(200, disconnected=True)
    owner = connections.owner_of(connection_id)
    if owner is None:
        return _reply(401, "unauthorized", "this connection is not registered; connect again")
    try:
        message = Subscribe.model_validate_json(event.get("body") or "")
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        return _reply(422, "validation_error", str(first["msg"]), field or None)
    try:
        job = manager.get(message.job_id, owner_id=owner)
    except JobNotFound as exc:  # answered as the REST API answers it
        answer = refusal(exc)
        return _reply(answer.status, answer.code, answer.message, answer.field)
    connections.subscribe(connection_id, job.job_id)
    if live is not None:
        live.send(connection_id, job)
    return _reply(200, subscribed=job.job_id, status=job.status)
