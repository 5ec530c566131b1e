"""The public room: the health summary (its detail with a key) and the console's files."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from atlas_codex import console
from atlas_codex.accounts.auth import ApiKeyStore
from atlas_codex.api import answers
from atlas_codex.api.answers import ERRORS
from atlas_codex.api.door import header
from atlas_codex.ground import aws
from atlas_codex.ground.api_routes import API_KEY_HEADER, CORRELATION_HEADER
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.views import HealthView


def public_routes(config: RuntimeConfig, keys: ApiKeyStore) -> Router:
    router = Router()

    def cid() -> str:
        return answers.correlation_id(router)

    @router.get(
        "/health",
        responses={
            200: {
                "description": "A cheap summary",
                "content": {"application/json": {"model": HealthView}},
            },
            401: ERRORS[401],
            404: ERRORS[404],
        },
    )
    def health(detail: Annotated[bool, Query()] = False) -> Response[str]:
        from atlas_codex.health import latest_report  # the monitor's code only when asked

        report = latest_report(aws.dynamodb(config.aws_endpoint_url), config.usage_table)
        if detail:
            if keys.owner_of(header(router.current_event.headers, API_KEY_HEADER)) is None:
                return answers.error_response(
                    401,
                    "unauthorized",
                    "the detailed report needs a valid API key in the x-api-key header",
                    API_KEY_HEADER,
                    correlation_id=cid(),
                )
            if report is None:
                message = "the health monitor has not run yet"
                return answers.error_response(
                    404, "no_health_report", message, correlation_id=cid()
                )
            return answers.json_response(200, report, correlation_id=cid())
        view = HealthView(
            status=report.status if report else "ok",
            stage=config.stage,
            models="available" if config.models_available else "not configured",
            checked_at=report.checked_at if report else None,
        )
        return answers.json_response(200, view, correlation_id=cid())

    def static(file: console.StaticFile) -> Response[str]:
        return Response(
            status_code=200,
            content_type=file.content_type,
            body=file.body,
            headers={**file.headers, CORRELATION_HEADER: cid()},
        )

    @router.get(
        "/console",
        responses={
            200: {
                "description": "The job console: a page for your jobs in the browser (public; "
                "it asks for your API key and keeps it in the tab's session storage)",
                "content": {"text/html": {"schema": {"type": "string"}}},
            }
        },
        summary="The job console",
    )
    def console_page() -> Response[str]:
        return static(console.page(config.websocket_url))

    @router.get(
        "/console/<asset>",
        responses={
            200: {
                "description": "One of the console's script and style files",
                "content": {
                    "text/javascript": {"schema": {"type": "string"}},
                    "text/css": {"schema": {"type": "string"}},
                },
            },
            404: ERRORS[404],
        },
        summary="A console file",
    )
    def console_asset(asset: str) -> Response[str]:
        found = console.asset(asset, config.websocket_url)
        if found is None:
            message = f"the console has no file {asset!r}"
            return answers.error_response(404, "not_found", message, "asset", correlation_id=cid())
        return static(found)

    return router
