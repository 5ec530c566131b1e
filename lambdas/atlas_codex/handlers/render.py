"""The render function: one page in headless Chromium, behind the SSRF proxy.

The browser starts on the first request and stays for the execution environment. The
function has no table, queue or bucket: it only renders what the worker asks for.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from atlas_codex.ground.config import RenderConfig
from atlas_codex.ground.netguard import NetPolicy
from atlas_codex.render.client import RenderReply, RenderRequest
from atlas_codex.render.renderer import Renderer
from atlas_codex.render.result import RenderFailed

logger = Logger(service="atlas-codex-render")
_renderer: Renderer | None = None


def renderer() -> Renderer:
    global _renderer
    if _renderer is None:
        config = RenderConfig.from_env()
        _renderer = Renderer(
            NetPolicy.from_host_ports(config.allowed_private_hosts),
            chromium_dir=config.chromium_dir,
        )
    return _renderer


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    try:
        request = RenderRequest.model_validate(event)
    except ValidationError as exc:
        return RenderReply(
            ok=False, error_code="validation_error", error=str(exc)[:500]
        ).model_dump()
    if request.correlation_id:
        logger.append_keys(correlation_id=request.correlation_id)
    try:
        rendered = renderer().render(
            request.url,
            wait_for=request.wait_for,
            timeout_s=request.timeout_s,
            max_bytes=request.max_bytes,
        )
    except RenderFailed as exc:
        logger.info("render failed", extra={"url": request.url, "code": exc.code})
        return RenderReply.failed(exc).model_dump()
    logger.info(
        "rendered",
        extra={"url": request.url, "ms": rendered.elapsed_ms, "waited": rendered.waited},
    )
    return RenderReply.of(rendered).model_dump()
