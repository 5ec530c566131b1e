"""What every route answers with: one error shape, JSON bodies with the correlation id, and
the OpenAPI description of the error statuses."""

from __future__ import annotations

from typing import Any, Final, Protocol

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from atlas_codex.ground.api_routes import CORRELATION_HEADER
from atlas_codex.jobs.views import ErrorBody


class HasContext(Protocol):
    """A resolver or one of its routers: both carry the request's context."""

    @property
    def context(self) -> dict[str, Any]: ...


def correlation_id(router: HasContext) -> str:
    """The request's correlation id (set by the door for every request)."""
    value = router.context.get("correlation_id")
    return value if isinstance(value, str) else "unknown"


def owner(router: HasContext) -> str:
    value = router.context.get("owner_id")
    assert isinstance(value, str), "the door sets the owner of every non-public route"
    return value


def error_response(
    status: int, code: str, message: str, field: str | None = None, *, correlation_id: str
) -> Response[str]:
    body = ErrorBody.model_validate(
        {
            "error": {
                "code": code,
                "message": message,
                "field": field,
                "correlation_id": correlation_id,
            }
        }
    )
    return Response(
        status_code=status,
        content_type="application/json",
        body=body.model_dump_json(exclude_none=True),
        headers={CORRELATION_HEADER: correlation_id},
    )


def json_response(status: int, payload: BaseModel, *, correlation_id: str) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=payload.model_dump_json(),
        headers={CORRELATION_HEADER: correlation_id},
    )


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ErrorBody}}}


ERRORS: Final[dict[int, Any]] = {
    400: _error("Bad request"),
    401: _error("Missing or unknown API key"),
    404: _error("Not found"),
    409: _error("Conflict"),
    410: _error("The stored pages expired"),
    413: _error("Body too large"),
    415: _error("Not JSON"),
    422: _error("Invalid request"),
}
"""The error statuses a route may answer, for the OpenAPI document."""


def responses(ok: int, model: type, description: str, *extra: int) -> dict[int, Any]:
    """A route's documented answers: its success, the door's refusals and ``extra``."""
    codes = (400, 401, 413, 415, 422, *extra)
    success = {ok: {"description": description, "content": {"application/json": {"model": model}}}}
    return success | {c: ERRORS[c] for c in codes}
