"""The REST API's Lambda entry point: builds the rooms (``atlas_codex.api``) into one resolver,
answers every failure in one error shape, and runs each request through the door.

Every error leaves as ``{"error": {"code", "message", "field"?, "correlation_id"}}``.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from atlas_codex.accounts.auth import ApiKeyStore
from atlas_codex.api import answers, door, openapi
from atlas_codex.api.jobs import job_routes, submission_routes
from atlas_codex.api.public import public_routes
from atlas_codex.api.refusals import REFUSED, refusal
from atlas_codex.api.resolver import RequestResolver
from atlas_codex.api.webhook_secrets import secret_routes
from atlas_codex.ground import naming, snapstart
from atlas_codex.ground.api_routes import CORRELATION_HEADER, allowed_methods
from atlas_codex.ground.config import RuntimeConfig, get_config
from atlas_codex.ground.values import FieldError
from atlas_codex.jobs.service import JobService
from atlas_codex.notifications.webhooks.secrets_store import WebhookSecretStore
from atlas_codex.wiring import build_key_store, build_secret_store, build_service

logger = Logger(service=naming.service_name("api"))


def build_app(
    *,
    config: RuntimeConfig,
    service: JobService,
    keys: ApiKeyStore,
    secrets: WebhookSecretStore,
    cors: CORSConfig | None,
) -> APIGatewayRestResolver:
    """The resolver: the rooms' routes and one answer for every way a request can fail."""
    app = RequestResolver(enable_validation=True, cors=cors)
    app.include_router(submission_routes(service))
    app.include_router(job_routes(service))
    app.include_router(secret_routes(secrets))
    app.include_router(public_routes(config, keys))

    def error(status: int, code: str, message: str, field: str | None = None) -> Response[str]:
        cid = answers.correlation_id(app)
        return answers.error_response(status, code, message, field, correlation_id=cid)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json() -> Response[str]:
        return Response(
            status_code=200, content_type="application/json", body=openapi.document(app)
        )

    @app.exception_handler(RequestValidationError)
    def _invalid_request(exc: RequestValidationError) -> Response[str]:
        errors = list(exc.errors())
        first = (
            errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "value_error"}
        )
        if first.get("type") == "json_invalid":
            return error(400, "invalid_json", "the request body is not valid JSON")
        field = _field(tuple(first.get("loc", ())))
        context = first.get("ctx")
        cause = context.get("error") if isinstance(context, dict) else None
        if isinstance(cause, FieldError):  # a rule across fields names the one to blame
            field = f"{field}.{cause.field}" if field else cause.field
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        if len(errors) > 1:
            message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        return error(422, "validation_error", message, field)

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported(exc: RequestUnsupportedContentType) -> Response[str]:
        message = "send the body as application/json"
        return error(415, "unsupported_media_type", message, "Content-Type")

    @app.exception_handler(list(REFUSED))
    def _refused(exc: Exception) -> Response[str]:
        answer = refusal(exc)
        return error(answer.status, answer.code, answer.message, answer.field)

    @app.exception_handler(door.BadHeader)
    def _bad_header(exc: door.BadHeader) -> Response[str]:
        return error(400, "invalid_header", f"{exc.header}: {exc}", exc.header)

    @app.exception_handler(ServiceError)
    def _service_error(exc: ServiceError) -> Response[str]:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        return error(exc.status_code, code, str(exc.msg))

    @app.not_found
    def _no_route(exc: NotFoundError) -> Response[str]:
        method, path = app.current_event.http_method, app.current_event.path
        allowed = allowed_methods(path)
        if allowed:
            message = f"{path} takes {', '.join(allowed)}, not {method}"
            response = error(405, "method_not_allowed", message)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return error(404, "route_not_found", f"no route {method} {path}")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response[str]:
        logger.exception("unexpected error")
        message = "an unexpected error occurred; quote the correlation id when reporting it"
        return error(500, "internal_error", message)

    return app


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    parts = [p for p in parts if not p.startswith("function-")]
    return ".".join(parts) or None


config = get_config()  # cold start: a bad environment fails here, naming the variable
service = build_service(config)
keys = build_key_store(config)
secrets = build_secret_store(config)
snapstart.register()  # with SnapStart (staging, prod), the hooks around the snapshot
cors = door.cors_config(config.cors_origins)
app = build_app(config=config, service=service, keys=keys, secrets=secrets, cors=cors)


def openapi_document() -> str:
    return openapi.document(app)


def make_handler(app: APIGatewayRestResolver, keys: ApiKeyStore, cors: CORSConfig | None) -> Any:
    """The Lambda handler of ``app``: each request through the door, then the resolver."""

    # Named ``handler`` like every function's entry point (the tests' IAM trace finds the
    # function making an AWS call by this frame).
    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        head = event.get("httpMethod") == "HEAD"
        if head:  # served as its GET, answered without the body (RFC 9110 9.3.2)
            event = {**event, "httpMethod": "GET"}
        response = _handle(event, context)
        if head:
            response["body"] = ""
            response["isBase64Encoded"] = False
        return response

    def _handle(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        admission = door.admit(event, keys)
        cid, owner = admission.correlation_id, admission.owner
        # Keys of this thread's log lines only (local mode resolves requests side by side).
        logger.thread_safe_clear_keys()
        logger.thread_safe_append_keys(correlation_id=cid)
        if admission.refusal is not None:
            return door.proxy_response(admission.refusal, event, cors)
        door.normalise_content_type(event)
        app.append_context(correlation_id=cid, owner_id=owner)
        if owner is not None:
            logger.thread_safe_append_keys(owner_id=owner)
        response = app.resolve(event, context)
        response.setdefault("headers", {})[CORRELATION_HEADER] = cid
        if response.get("multiValueHeaders") is not None:
            response["multiValueHeaders"][CORRELATION_HEADER] = [cid]
        return response

    return handler


handler = make_handler(app, keys, cors)
