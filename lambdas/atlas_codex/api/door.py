"""The door: what is checked before a request is routed (and before its body is parsed),
and how a refusal made there is answered."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from typing import Any, Final

from aws_lambda_powertools.event_handler import CORSConfig, Response
from pydantic import TypeAdapter, ValidationError

from atlas_codex.accounts.auth import ApiKeyStore
from atlas_codex.api.answers import error_response
from atlas_codex.ground import body_guard, limits
from atlas_codex.ground.api_routes import (
    API_KEY_HEADER,
    CORRELATION_HEADER,
    IDEMPOTENCY_HEADER,
    REQUEST_HEADERS,
    is_public,
)
from atlas_codex.jobs.vocabulary import IdempotencyKey

CORRELATION_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_IDEMPOTENCY_KEY: Final = TypeAdapter(IdempotencyKey)


@dataclass(frozen=True)
class Admission:
    correlation_id: str
    owner: str | None
    """None on public routes."""
    refusal: Response[str] | None = None


def header(headers: dict[str, str] | None, name: str) -> str | None:
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


def admit(event: dict[str, Any], keys: ApiKeyStore) -> Admission:
    """Before routing (and before body validation): the correlation id, the API key, the
    body's size and type."""
    headers = event.get("headers") or {}
    given = header(headers, CORRELATION_HEADER)
    cid = given if given and CORRELATION_RE.fullmatch(given) else f"req-{uuid.uuid4().hex}"
    owner: str | None = None
    if not is_public(str(event.get("path") or "")):
        owner = keys.owner_of(header(headers, API_KEY_HEADER))
        if owner is None:
            message = "a valid API key is required in the x-api-key header"
            refusal = error_response(
                401, "unauthorized", message, API_KEY_HEADER, correlation_id=cid
            )
            return Admission(cid, None, refusal)
    raw = event.get("body") or ""
    if event.get("httpMethod") in ("POST", "PUT", "PATCH") and raw:
        encoded = bool(event.get("isBase64Encoded"))
        size = len(raw) * 3 // 4 if encoded else len(raw.encode())
        if size > limits.MAX_REQUEST_BODY_BYTES:
            message = f"the body is {size} bytes; the limit is {limits.MAX_REQUEST_BODY_BYTES}"
            refusal = error_response(413, "body_too_large", message, correlation_id=cid)
            return Admission(cid, owner, refusal)
        text = _utf8(raw, encoded=encoded)
        if text is None:
            message = "the request body is not UTF-8 encoded JSON"
            return Admission(
                cid, owner, error_response(400, "invalid_json", message, correlation_id=cid)
            )
        if media_type(headers) != "application/json":
            refusal = error_response(
                415,
                "unsupported_media_type",
                "send the body as application/json",
                "Content-Type",
                correlation_id=cid,
            )
            return Admission(cid, owner, refusal)
        problem = body_guard.inspect(text)
        if problem is not None:
            refusal = error_response(
                problem.status, problem.code, problem.message, problem.field, correlation_id=cid
            )
            return Admission(cid, owner, refusal)
    return Admission(cid, owner)


def media_type(headers: dict[str, str] | None) -> str:
    """The Content-Type's media type, lower case (media types are case-insensitive)."""
    return (header(headers, "Content-Type") or "").split(";")[0].strip().lower()


def normalise_content_type(event: dict[str, Any]) -> None:
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


class BadHeader(Exception):
    def __init__(self, header_name: str, message: str) -> None:
        self.header = header_name
        super().__init__(message)


def idempotency_key(headers: dict[str, str] | None) -> str | None:
    """The request's ``Idempotency-Key``, checked (:class:`BadHeader` when malformed)."""
    key = header(headers, IDEMPOTENCY_HEADER)
    if key is None:
        return None
    try:
        return _IDEMPOTENCY_KEY.validate_python(key)
    except ValidationError:
        raise BadHeader(
            IDEMPOTENCY_HEADER,
            f"must be 1 to {limits.MAX_IDEMPOTENCY_KEY_CHARS} visible ASCII characters",
        ) from None


def cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """The resolver's CORS, from the stage's allowed origins (None: no browser origins)."""
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=list(REQUEST_HEADERS),
        expose_headers=[CORRELATION_HEADER],
        max_age=600,
    )


def proxy_response(
    response: Response[str], event: dict[str, Any], cors: CORSConfig | None
) -> dict[str, Any]:
    """A refusal made before routing, in the REST proxy response form, with CORS headers."""
    headers: dict[str, str] = {"Content-Type": "application/json"}
    headers.update({k: v for k, v in response.headers.items() if isinstance(v, str)})
    origin = header(event.get("headers"), "Origin")
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
