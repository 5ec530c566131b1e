"""Calling the api function's handler as API Gateway would, and checking its error shape."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from atlas_codex_local.apigw import context, rest_event

Call = Any


class Function(Protocol):
    """A function built as Lambda would (a handler module, or a test's ``ApiFunction``)."""

    @property
    def handler(self) -> Callable[[dict[str, Any], Any], dict[str, Any]]: ...


def call(
    api: Function,
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: Any = None,
    raw: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    timeout_ms: int = 28_000,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    h = {"Content-Type": "application/json", **(headers or {})}
    if key is not None:
        h["x-api-key"] = key
    payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
    out = api.handler(
        rest_event(method, path, headers=h, query=query, body=payload), context(timeout_ms)
    )
    data = json.loads(out["body"]) if out.get("body") else {}
    headers_out = {k.lower(): v for k, v in (out.get("headers") or {}).items()}
    for k, v in (out.get("multiValueHeaders") or {}).items():
        headers_out.setdefault(k.lower(), v[0])
    return out["statusCode"], data, headers_out


def assert_error(status: int, data: dict[str, Any], code: str, field: str | None = None) -> None:
    assert set(data) == {"error"}
    error = data["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["correlation_id"]
    assert set(error) <= {"code", "message", "field", "correlation_id"}
    if field is not None:
        assert error["field"] == field


JOB = {
    "urls": ["https://shop.example/ok/1"],
    "selectors": {"fields": {"title": {"selector": "h1"}}},
}
