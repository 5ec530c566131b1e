"""The api and worker functions as Lambda would build them, with the engine a test injects
(``make_handler`` of each handler module): no test monkeypatches a module's service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from atlas_codex.accounts.auth import ApiKeyStore
from atlas_codex.api import door, openapi
from atlas_codex.extraction.contract import Extractor
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.service import JobService
from atlas_codex.notifications.webhooks.secrets_store import WebhookSecretStore
from atlas_codex.wiring import build_key_store, build_secret_store, build_service


@dataclass
class WorkerFunction:
    service: JobService
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    extractor: Any
    """The engine the test gave it (a scripted one has ``calls``)."""
    returned_later: Callable[[str], bool]
    """Whether the handler set a returned message's visibility itself (the poller's seam)."""

    @property
    def sqs(self) -> Any:
        """The SQS client its queue sends with."""
        return getattr(self.service.queue, "sqs")  # noqa: B009 - the SQS queue's client


def worker_with(config: RuntimeConfig, extractor: Extractor | Any) -> WorkerFunction:
    from atlas_codex.handlers import worker

    service = build_service(config, engine=lambda: extractor)
    returns = worker.sqs_returns(config)
    return WorkerFunction(
        service=service,
        handler=worker.make_handler(service, returns),
        extractor=extractor,
        returned_later=returns.taken,
    )


@dataclass
class ApiFunction:
    """The api function as Lambda would build it, with a scripted engine injected: the same
    names the handler module has (``handler``, ``service``, ``keys``...)."""

    config: RuntimeConfig
    service: JobService
    keys: ApiKeyStore
    secrets: WebhookSecretStore
    app: APIGatewayRestResolver
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    build_app: Callable[..., APIGatewayRestResolver]
    make_handler: Callable[..., Any]

    @property
    def sqs(self) -> Any:
        """The SQS client its queue sends with."""
        return getattr(self.service.queue, "sqs")  # noqa: B009 - the SQS queue's client

    def openapi_document(self) -> str:
        return openapi.document(self.app)


def api_with(config: RuntimeConfig, extractor: Extractor | Any) -> ApiFunction:
    from atlas_codex.handlers import api as module

    service = build_service(config, engine=lambda: extractor)
    keys, secrets = build_key_store(config), build_secret_store(config)
    cors = door.cors_config(config.cors_origins)
    app = module.build_app(config=config, service=service, keys=keys, secrets=secrets, cors=cors)
    return ApiFunction(
        config=config,
        service=service,
        keys=keys,
        secrets=secrets,
        app=app,
        handler=module.make_handler(app, keys, cors),
        build_app=module.build_app,
        make_handler=module.make_handler,
    )
