"""API Gateway REST proxy events from plain HTTP requests, for local mode and the tests."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs


def rest_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: str = "",
    body: bytes | str | None = None,
    stage: str = "local",
    source_ip: str = "127.0.0.1",
) -> dict[str, Any]:
    """The event API Gateway's REST proxy integration hands the function."""
    headers = dict(headers or {})
    params = parse_qs(query, keep_blank_values=True) if query else {}
    raw = body.encode() if isinstance(body, str) else body
    try:
        text = raw.decode() if raw is not None else None
        encoded = False
    except UnicodeDecodeError:
        text = base64.b64encode(raw).decode() if raw is not None else None
        encoded = True
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method.upper(),
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": {k: v[-1] for k, v in params.items()} or None,
        "multiValueQueryStringParameters": params or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/{proxy+}",
            "httpMethod": method.upper(),
            "path": f"/{stage}{path}",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "apiKey": headers.get("x-api-key")},
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


@dataclass(frozen=True)
class LambdaContextStub:
    """The attributes of a Lambda context object that our handlers and Powertools read."""

    function_name: str = "atlas-codex-local"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:atlas-codex-local"
    aws_request_id: str = "local"
    timeout_ms: int = 28_000
    started: float = 0.0

    def get_remaining_time_in_millis(self) -> int:
        import time

        return max(int(self.timeout_ms - (time.monotonic() - self.started) * 1000), 0)


def context(
    timeout_ms: int = 28_000, function_name: str = "atlas-codex-local"
) -> LambdaContextStub:
    import time

    return LambdaContextStub(
        function_name=function_name,
        timeout_ms=timeout_ms,
        started=time.monotonic(),
        aws_request_id=str(uuid.uuid4()),
    )
