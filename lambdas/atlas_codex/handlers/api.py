"""The REST API: a doorway. Each route parses, calls one domain function, shapes the answer.

Every error leaves through :func:`error_response` in one JSON shape
``{"error": {"code", "message", "field"?, "correlation_id"}}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from http import HTTPStatus
from typing import Annotated, Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, TypeAdapter, ValidationError

from atlas_codex import aws, body_guard, console, limits, naming, snapstart
from atlas_codex.api_models import (
    ErrorBody,
    HealthView,
    JobListView,
    JobView,
    ReextractionView,
    ResultView,
    SyncResultView,
    WebhookSecretsView,
    shown,
)
from atlas_codex.config import get_config
from atlas_codex.engine.interface import Quote
from atlas_codex.jobs.schema import (
    IDEMPOTENCY_KEY_PATTERN,
    CreateJobRequest,
    FieldError,
    IdempotencyKey,
    Job,
    JobId,
    JobStatus,
    JobType,
    ReextractRequest,
)
from atlas_codex.refusals import REFUSED, refusal
from atlas_codex.routes import (
    API_KEY_HEADER,
    CORRELATION_HEADER,
    IDEMPOTENCY_HEADER,
    REQUEST_HEADERS,
    ROUTES,
    allowed_methods,
    is_public,
)
from atlas_codex.wiring import build_key_store, build_secret_store, build_service

SYNC_SAFETY_MS: Final = 2500
"""Time kept back from the function's remaining time to hand a sync job on and answer."""
_IDEMPOTENCY_KEY: Final = TypeAdapter(IdempotencyKey)
_CORRELATION_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")

config = get_config()  # cold start: a bad environment fails here, naming the variable
logger = Logger(service=naming.service_name("api"))
service = build_service(config)
keys = build_key_store(config)
secrets = build_secret_store(config)
snapstart.register()  # with SnapStart (staging, prod), the hooks around the snapshot

_origins = list(config.cors_origins)
cors = (
    CORSConfig(
        allow_origin=_origins[0],
        extra_origins=_origins[1:],
        allow_headers=list(REQUEST_HEADERS),
        expose_headers=[CORRELATION_HEADER],
        max_age=600,
    )
    if _origins
    else None
)
app = APIGatewayRestResolver(enable_validation=True, cors=cors)


# ---------------------------------------------------------------------- errors


def _correlation_id() -> str:
    value = app.context.get("correlation_id")
    return value if isinstance(value, str) else "unknown"


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    *,
    correlation_id: str | None = None,
) -> Response[str]:
    cid = correlation_id or _correlation_id()
    body = ErrorBody.model_validate(
        {"error": {"code": code, "message": message, "field": field, "correlation_id": cid}}
    )
    return Response(
        status_code=status,
        content_type="application/json",
        body=body.model_dump_json(exclude_none=True),
        headers={CORRELATION_HEADER: cid},
    )


def json_response(status: int, payload: BaseModel) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=payload.model_dump_json(),
        headers={CORRELATION_HEADER: _correlation_id()},
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    parts = [p for p in parts if not p.startswith("function-")]
    return ".".join(parts) or None


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    errors = list(exc.errors())
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": "value_error"}
    if first.get("type") == "json_invalid":
        return error_response(400, "invalid_json", "the request body is not valid JSON")
    field = _field(tuple(first.get("loc", ())))
    context = first.get("ctx")
    cause = context.get("error") if isinstance(context, dict) else None
    if isinstance(cause, FieldError):  # a rule across fields names the one to blame
        field = f"{field}.{cause.field}" if field else cause.field
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_response(422, "validation_error", message, field)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported(exc: RequestUnsupportedContentType) -> Response[str]:
    return error_response(
        415, "unsupported_media_type", "send the body as application/json", "Content-Type"
    )


@app.exception_handler(list(REFUSED))
def _refused(exc: Exception) -> Response[str]:
    answer = refusal(exc)
    return error_response(answer.status, answer.code, answer.message, answer.field)


@app.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response[str]:
    return error_response(
        exc.status_code, HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_"), str(exc.msg)
    )


@app.not_found
def _no_route(exc: NotFoundError) -> Response[str]:
    method, path = app.current_event.http_method, app.current_event.path
    allowed = allowed_methods(path)
    if allowed:
        response = error_response(
            405, "method_not_allowed", f"{path} takes {', '.join(allowed)}, not {method}"
        )
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error_response(404, "route_not_found", f"no route {method} {path}")


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[str]:
    logger.exception("unexpected error")
    return error_response(
        500,
        "internal_error",
        "an unexpected error occurred; quote the correlation id when reporting it",
    )


# ---------------------------------------------------------------------- the door


def _header(headers: dict[str, str] | None, name: str) -> str | None:
    lowered = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == lowered:
            return value
    return None


def _utf8(raw: str, *, encoded: bool) -> str | None:
    """The body as text, or None when it is not UTF-8."""
    if not encoded:
        return raw
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def admit(event: dict[str, Any]) -> tuple[str, str | None, Response[str] | None]:
    """Before routing (and before body validation): the correlation id, the API key, the
    body's size and type. Returns the correlation id, the owner, and a refusal if any."""
    headers = event.get("headers") or {}
    given = _header(headers, CORRELATION_HEADER)
    cid = given if given and _CORRELATION_RE.fullmatch(given) else f"req-{uuid.uuid4().hex}"
    owner: str | None = None
    if not is_public(str(event.get("path") or "")):
        owner = keys.owner_of(_header(headers, API_KEY_HEADER))
        if owner is None:
            refusal = error_response(
                401,
                "unauthorized",
                "a valid API key is required in the x-api-key header",
                API_KEY_HEADER,
                correlation_id=cid,
            )
            return cid, None, refusal
    raw = event.get("body") or ""
    if event.get("httpMethod") in ("POST", "PUT", "PATCH") and raw:
        encoded = bool(event.get("isBase64Encoded"))
        size = len(raw) * 3 // 4 if encoded else len(raw.encode())
        if size > limits.MAX_REQUEST_BODY_BYTES:
            message = f"the body is {size} bytes; the limit is {limits.MAX_REQUEST_BODY_BYTES}"
            return cid, owner, error_response(413, "body_too_large", message, correlation_id=cid)
        text = _utf8(raw, encoded=encoded)
        if text is None:
            refusal = error_response(
                400,
                "invalid_json",
                "the request body is not UTF-8 encoded JSON",
                correlation_id=cid,
            )
            return cid, owner, refusal
        if _media_type(headers) != "application/json":
            refusal = error_response(
                415,
                "unsupported_media_type",
                "send the body as application/json",
                "Content-Type",
                correlation_id=cid,
            )
            return cid, owner, refusal
        problem = body_guard.inspect(text)
        if problem is not None:
            refusal = error_response(
                problem.status, problem.code, problem.message, problem.field, correlation_id=cid
            )
            return cid, owner, refusal
    return cid, owner, None


def _media_type(headers: dict[str, str] | None) -> str:
    """The Content-Type's media type, lower case (media types are case-insensitive)."""
    return (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()


def _normalise_content_type(event: dict[str, Any]) -> None:
    """Media types are case-insensitive (RFC 9110); the resolver compares them as given."""
    for key in ("headers", "multiValueHeaders"):
        headers = event.get(key)
        if not isinstance(headers, dict):
            continue
        for name in [n for n in headers if n.lower() == "content-type"]:
            value = headers.pop(name)
            if isinstance(value, list):
                headers["content-type"] = [_lower_media(v) for v in value]
            elif isinstance(value, str):
                headers["content-type"] = _lower_media(value)


def _lower_media(value: str) -> str:
    media, sep, params = value.partition(";")
    return media.strip().lower() + sep + params


def _owner() -> str:
    owner = app.context.get("owner_id")
    assert isinstance(owner, str), "admit() sets the owner of every non-public route"
    return owner


# ---------------------------------------------------------------------- routes

_ERRORS: dict[int, Any] = {
    400: {"description": "Bad request", "content": {"application/json": {"model": ErrorBody}}},
    401: {
        "description": "Missing or unknown API key",
        "content": {"application/json": {"model": ErrorBody}},
    },
    404: {"description": "Not found", "content": {"application/json": {"model": ErrorBody}}},
    409: {"description": "Conflict", "content": {"application/json": {"model": ErrorBody}}},
    410: {
        "description": "The stored pages expired",
        "content": {"application/json": {"model": ErrorBody}},
    },
    413: {"description": "Body too large", "content": {"application/json": {"model": ErrorBody}}},
    415: {"description": "Not JSON", "content": {"application/json": {"model": ErrorBody}}},
    422: {"description": "Invalid request", "content": {"application/json": {"model": ErrorBody}}},
}


def _responses(ok: int, model: type, description: str, *extra: int) -> dict[int, Any]:
    codes = (400, 401, 413, 415, 422, *extra)
    return {ok: {"description": description, "content": {"application/json": {"model": model}}}} | {
        c: _ERRORS[c] for c in codes
    }


@app.post(
    "/jobs", responses=_responses(202, JobView, "The job was accepted", 409), summary="Submit a job"
)
def create_job(body: Annotated[CreateJobRequest, Body()]) -> Response[str]:
    if body.type == "sync":
        return error_response(422, "validation_error", "sync jobs are run by POST /extract", "type")
    outcome = service.submit(
        owner_id=_owner(),
        request=body,
        correlation_id=_correlation_id(),
        idempotency_key=_idempotency_key(),
    )
    return json_response(202 if outcome.created else 200, JobView.of(outcome.job))


@app.post(
    "/jobs/quote",
    responses=_responses(200, Quote, "What the job would cost; nothing billable ran"),
    summary="Quote a job",
)
def quote_job(body: Annotated[CreateJobRequest, Body()]) -> Response[str]:
    return json_response(200, service.quote(request=body, deadline=_sync_deadline()))


@app.post(
    "/jobs/<job_id>/reextract",
    responses=_responses(
        202, ReextractionView, "A new job over the stored pages was accepted", 404, 409, 410
    ),
    summary="Re-extract a job's stored pages",
)
def reextract_job(job_id: str, body: Annotated[ReextractRequest, Body()]) -> Response[str]:
    outcome, manifest = service.reextract(
        owner_id=_owner(),
        job_id=job_id,
        asked=body,
        correlation_id=_correlation_id(),
        idempotency_key=_idempotency_key(),
    )
    view = ReextractionView(job=JobView.of(outcome.job), pages_expire_at=manifest.expires_at)
    return json_response(202 if outcome.created else 200, view)


@app.post(
    "/extract",
    responses=_responses(
        200, SyncResultView, "Finished in time, or (202) continuing asynchronously", 409
    ),
    summary="Extract now",
)
def extract(body: Annotated[CreateJobRequest, Body()]) -> Response[str]:
    if body.type not in ("sync",) and "type" in body.model_fields_set:
        return error_response(
            422,
            "validation_error",
            "POST /extract runs sync jobs; use POST /jobs for others",
            "type",
        )
    request = body.model_copy(update={"type": "sync"})
    outcome = service.extract_now(
        owner_id=_owner(),
        request=request,
        correlation_id=_correlation_id(),
        idempotency_key=_idempotency_key(),
        deadline=_sync_deadline(),
    )
    job = outcome.job
    include = job.request.include_evidence
    delivered = _delivered(job, include)
    view = SyncResultView(
        job=JobView.of(job),
        result=delivered.result if delivered else None,
        delivery=delivered.delivery if delivered else None,
        url=delivered.url if delivered else None,
        expires_in_s=delivered.expires_in_s if delivered else None,
        evidence_included=delivered.evidence_included if delivered else include,
    )
    return json_response(200 if outcome.finished else 202, view)


def _delivered(job: Job, include_evidence: bool) -> ResultView | None:
    """The job's result as a response carries it: inline when it fits the record, else a
    presigned URL (a response must stay far below Lambda's 6 MB)."""
    if job.result is None and job.result_location is None:
        return None
    url = service.result_url(job, expires_in=limits.RESULT_URL_EXPIRES_S)
    if url is not None:
        return ResultView(
            job_id=job.job_id,
            delivery="url",
            url=url,
            expires_in_s=limits.RESULT_URL_EXPIRES_S,
            evidence_included=True,
        )
    return ResultView(
        job_id=job.job_id,
        delivery="inline",
        result=shown(job.result, include_evidence),
        evidence_included=include_evidence,
    )


def _sync_deadline() -> float:
    """The monotonic instant a request answered inline must finish by."""
    remaining_ms = (
        app.lambda_context.get_remaining_time_in_millis()
        if app.lambda_context
        else limits.SYNC_MAX_S * 1000
    )
    return time.monotonic() + min(limits.SYNC_MAX_S, max(remaining_ms - SYNC_SAFETY_MS, 0) / 1000)


@app.get(
    "/jobs/<job_id>", responses=_responses(200, JobView, "The job", 404), summary="A job's status"
)
def get_job(job_id: str) -> Response[str]:
    return json_response(200, JobView.of(service.get(owner_id=_owner(), job_id=job_id)))


@app.get(
    "/jobs", responses=_responses(200, JobListView, "Your jobs, newest first"), summary="List jobs"
)
def list_jobs(
    status: Annotated[JobStatus | None, Query()] = None,
    type: Annotated[JobType | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    parent: Annotated[JobId | None, Query()] = None,
) -> Response[str]:
    page = service.list(
        owner_id=_owner(),
        status=status,
        job_type=type,
        limit=limit,
        cursor=cursor,
        parent_id=parent,
    )
    return json_response(
        200, JobListView(jobs=[JobView.of(j) for j in page.jobs], next_cursor=page.next_cursor)
    )


@app.delete(
    "/jobs/<job_id>",
    responses=_responses(200, JobView, "The job, cancelled", 404, 409),
    summary="Cancel a job",
)
def cancel_job(job_id: str) -> Response[str]:
    return json_response(200, JobView.of(service.cancel(owner_id=_owner(), job_id=job_id)))


@app.get(
    "/jobs/<job_id>/result",
    responses=_responses(200, ResultView, "The result", 404, 409),
    summary="A job's result",
)
def get_result(
    job_id: str, include_evidence: Annotated[bool | None, Query()] = None
) -> Response[str]:
    job = service.get(owner_id=_owner(), job_id=job_id)
    if job.result is None and job.result_location is None:
        return error_response(
            409,
            "result_not_ready",
            f"the job is {job.status} and has no result"
            + ("" if job.status in ("failed", "cancelled", "timeout") else " yet"),
        )
    include = job.request.include_evidence if include_evidence is None else include_evidence
    view = _delivered(job, include)
    assert view is not None  # checked above
    return json_response(200, view)


@app.get(
    "/webhook-secret",
    responses=_responses(
        200, WebhookSecretsView, "Your active webhook signing secrets, newest first"
    ),
    summary="Webhook signing secrets",
)
def webhook_secrets() -> Response[str]:
    return json_response(200, WebhookSecretsView(secrets=secrets.active(_owner())))


@app.post(
    "/webhook-secret/rotate",
    responses=_responses(
        200, WebhookSecretsView, "A new secret; the previous ones keep signing for a day"
    ),
    summary="Rotate the webhook signing secret",
)
def rotate_webhook_secret() -> Response[str]:
    secrets.rotate(_owner())
    return json_response(200, WebhookSecretsView(secrets=secrets.active(_owner())))


@app.get(
    "/health",
    responses={
        200: {
            "description": "A cheap summary",
            "content": {"application/json": {"model": HealthView}},
        },
        401: _ERRORS[401],
        404: _ERRORS[404],
    },
)
def health(detail: Annotated[bool, Query()] = False) -> Response[str]:
    from atlas_codex.health import latest_report  # the monitor's code only when asked

    report = latest_report(aws.dynamodb(config.aws_endpoint_url), config.usage_table)
    if detail:
        if keys.owner_of(_header(app.current_event.headers, API_KEY_HEADER)) is None:
            return error_response(
                401,
                "unauthorized",
                "the detailed report needs a valid API key in the x-api-key header",
                API_KEY_HEADER,
            )
        if report is None:
            return error_response(404, "no_health_report", "the health monitor has not run yet")
        return json_response(200, report)
    view = HealthView(
        status=report.status if report else "ok",
        stage=config.stage,
        models="available" if config.models_available else "not configured",
        checked_at=report.checked_at if report else None,
    )
    return json_response(200, view)


_TEXT_ERRORS: Final = {404: _ERRORS[404]}


def _static(file: console.StaticFile) -> Response[str]:
    return Response(
        status_code=200,
        content_type=file.content_type,
        body=file.body,
        headers={**file.headers, CORRELATION_HEADER: _correlation_id()},
    )


@app.get(
    "/console",
    responses={
        200: {
            "description": "The job console: a page for your jobs in the browser (public; it "
            "asks for your API key and keeps it in the tab's session storage)",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
    summary="The job console",
)
def console_page() -> Response[str]:
    return _static(console.page(config.websocket_url))


@app.get(
    "/console/<asset>",
    responses={
        200: {
            "description": "One of the console's script and style files",
            "content": {
                "text/javascript": {"schema": {"type": "string"}},
                "text/css": {"schema": {"type": "string"}},
            },
        },
        **_TEXT_ERRORS,
    },
    summary="A console file",
)
def console_asset(asset: str) -> Response[str]:
    found = console.asset(asset, config.websocket_url)
    if found is None:
        return error_response(404, "not_found", f"the console has no file {asset!r}", "asset")
    return _static(found)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=openapi_document())


API_KEY_SCHEME: Final = "apiKey"


def openapi_document() -> str:
    """The OpenAPI document: the resolver's, plus what it cannot see of the door — the API
    key scheme, the headers every route reads and answers, and the statuses the door and the
    gateway answer on every route (401 without a key, 429 throttled, 500)."""
    document = json.loads(
        app.get_openapi_json_schema(
            title="Atlas Codex API",
            version="1.0.0",
            description="Web data extraction: submit jobs, poll them, fetch results. "
            "Every route but /health and /openapi.json needs an API key in the x-api-key header.",
        )
    )
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[API_KEY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": API_KEY_HEADER,
    }
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    correlation_out = {
        CORRELATION_HEADER: {
            "description": "The request's correlation id (the one sent, or a new one)",
            "schema": {"type": "string"},
        }
    }
    for route in ROUTES:
        operation = document["paths"].get(route.path, {}).get(route.method.lower())
        if operation is None:
            continue
        operation["security"] = [] if route.public else [{API_KEY_SCHEME: []}]
        parameters = operation.setdefault("parameters", [])
        parameters.append(
            {
                "name": CORRELATION_HEADER,
                "in": "header",
                "required": False,
                "description": "Your correlation id, followed through queue, worker and logs",
                "schema": {"type": "string", "pattern": _CORRELATION_RE.pattern},
            }
        )
        if route.idempotent:
            parameters.append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": False,
                    "description": "A retry with the same key answers with the first job",
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": limits.MAX_IDEMPOTENCY_KEY_CHARS,
                        "pattern": IDEMPOTENCY_KEY_PATTERN,
                    },
                }
            )
        responses = operation.setdefault("responses", {})
        extra = {"500": "Unexpected error (quote the correlation id)"}
        if not route.public:
            extra |= {"401": "Missing or unknown API key", "429": "Throttled or over quota"}
        for status, description in extra.items():
            responses.setdefault(status, {"description": description, "content": error})
        for response in responses.values():
            response.setdefault("headers", {}).update(correlation_out)
    extract = document["paths"]["/extract"]["post"]["responses"]
    extract["202"] = {
        "description": "Still running at the deadline: it goes on asynchronously (poll status_url)",
        "content": extract["200"]["content"],
        "headers": correlation_out,
    }
    return json.dumps(document)


def _idempotency_key() -> str | None:
    key = _header(app.current_event.headers, IDEMPOTENCY_HEADER)
    if key is None:
        return None
    try:
        return _IDEMPOTENCY_KEY.validate_python(key)
    except ValidationError:
        raise _BadHeader(
            IDEMPOTENCY_HEADER,
            f"must be 1 to {limits.MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters",
        ) from None


class _BadHeader(Exception):
    def __init__(self, header: str, message: str) -> None:
        self.header = header
        super().__init__(message)


@app.exception_handler(_BadHeader)
def _bad_header(exc: _BadHeader) -> Response[str]:
    return error_response(400, "invalid_header", f"{exc.header}: {exc}", exc.header)


def _proxy_response(response: Response[str], event: dict[str, Any]) -> dict[str, Any]:
    """A refusal made before routing, in the REST proxy response form, with CORS headers."""
    headers: dict[str, str] = {"Content-Type": "application/json"}
    headers.update({k: v for k, v in response.headers.items() if isinstance(v, str)})
    origin = _header(event.get("headers"), "Origin")
    if cors is not None and origin:
        allowed = cors.allowed_origin(origin)
        if allowed:
            headers.update(cors.to_dict(allowed))
    return {
        "statusCode": response.status_code,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "body": response.body,
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    cid, owner, refusal = admit(event)
    logger.set_correlation_id(cid)
    if refusal is not None:
        return _proxy_response(refusal, event)
    _normalise_content_type(event)
    app.append_context(correlation_id=cid, owner_id=owner)
    if owner is not None:
        logger.append_keys(owner_id=owner)
    response = app.resolve(event, context)
    response.setdefault("headers", {})[CORRELATION_HEADER] = cid
    if response.get("multiValueHeaders") is not None:
        response["multiValueHeaders"][CORRELATION_HEADER] = [cid]
    return response
