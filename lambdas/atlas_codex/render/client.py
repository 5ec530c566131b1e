"""How the engine asks for a render: in-process (local mode) or from the render function.

The request and reply the render function takes and gives are the pydantic models here;
``handlers/render.py`` is the function, and :class:`LambdaRenderClient` invokes it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from atlas_codex.ground import limits
from atlas_codex.render.result import Rendered, RenderFailed


class RenderClient(Protocol):
    def render(
        self, url: str, *, wait_for: str | None, timeout_s: float, max_bytes: int
    ) -> Rendered: ...


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=limits.MAX_URL_LENGTH)
    wait_for: str | None = Field(default=None, max_length=limits.MAX_CSS_SELECTOR_CHARS)
    timeout_s: float = Field(gt=0, le=limits.RENDER_TIMEOUT_S)
    max_bytes: int = Field(gt=0, le=limits.RENDER_MAX_BYTES)
    correlation_id: str | None = Field(default=None, max_length=limits.MAX_CORRELATION_ID_CHARS)


class RenderReply(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: bool
    url: str | None = None
    status: int | None = None
    html: str | None = None
    truncated: bool = False
    elapsed_ms: int = 0
    waited: Literal["selector", "network-idle", "time-limit"] = "time-limit"
    blocked_requests: int = 0
    error_code: str | None = None
    error: str | None = None

    @classmethod
    def of(cls, rendered: Rendered) -> RenderReply:
        return cls(ok=True, **asdict(rendered))

    @classmethod
    def failed(cls, failure: RenderFailed) -> RenderReply:
        return cls(ok=False, error_code=failure.code, error=failure.reason)

    def rendered(self) -> Rendered:
        """The render this reply carries (every field of :class:`Rendered`, by name)."""
        if not self.ok:
            raise RenderFailed(self.error_code or "render_failed", self.error or "no reason given")
        values = {f.name: getattr(self, f.name) for f in fields(Rendered)}
        return Rendered(**{**values, "url": self.url or "", "html": self.html or ""})


class LambdaRenderClient:
    """Renders in the render function (synchronous invoke): the worker holds no browser."""

    def __init__(self, function_name: str, lambda_client: Any) -> None:
        self.function_name = function_name
        self.client = lambda_client

    def render(
        self, url: str, *, wait_for: str | None, timeout_s: float, max_bytes: int
    ) -> Rendered:
        request = RenderRequest(
            url=url, wait_for=wait_for, timeout_s=timeout_s, max_bytes=max_bytes
        )
        try:
            answer = self.client.invoke(
                FunctionName=self.function_name,
                InvocationType="RequestResponse",
                Payload=request.model_dump_json().encode(),
            )
        except Exception as exc:  # botocore's errors: the function could not be reached
            raise RenderFailed("render_unavailable", f"{type(exc).__name__}: {exc}"[:500]) from None
        body = answer["Payload"].read()
        if answer.get("FunctionError"):
            raise RenderFailed("render_failed", f"the render function failed: {body[:300]!r}")
        return RenderReply.model_validate(json.loads(body)).rendered()


def render_client_for(config: Any) -> RenderClient | None:
    """Local mode renders in-process (the browser starts on the first render); a deployed
    worker invokes the render function; without either, no page is rendered."""
    if config.stage == "local":
        from atlas_codex.ground.netguard import NetPolicy
        from atlas_codex.render.renderer import Renderer

        return Renderer(
            NetPolicy.from_host_ports(config.allowed_private_hosts),
            chromium_dir=config.chromium_dir,
        )
    if config.render_function:
        from atlas_codex.ground import aws

        return LambdaRenderClient(
            config.render_function, aws.lambda_client(config.aws_endpoint_url)
        )
    return None
