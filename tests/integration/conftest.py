"""The AWS fixtures (moto server, local stage) live in tests/conftest.py, shared with e2e.
Here: the API handler with a scripted engine, and keys of two owners."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from atlas_codex.api import door, openapi
from atlas_codex.auth import ApiKeyStore
from atlas_codex.config import RuntimeConfig
from atlas_codex.jobs.service import JobService
from atlas_codex.webhooks.secrets_store import WebhookSecretStore
from atlas_codex.wiring import build_key_store, build_secret_store, build_service
from tests.fakes import ScriptedExtractor


@dataclass
class Api:
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

    def openapi_document(self) -> str:
        return openapi.document(self.app)


@pytest.fixture
def api(config: RuntimeConfig) -> Api:
    from atlas_codex.handlers import api as module

    extractor = ScriptedExtractor()
    service = build_service(config, engine=lambda: extractor)
    keys, secrets = build_key_store(config), build_secret_store(config)
    cors = door.cors_config(config.cors_origins)
    app = module.build_app(config=config, service=service, keys=keys, secrets=secrets, cors=cors)
    return Api(
        config=config,
        service=service,
        keys=keys,
        secrets=secrets,
        app=app,
        handler=module.make_handler(app, keys, cors),
        build_app=module.build_app,
        make_handler=module.make_handler,
    )


@pytest.fixture
def key(api: Api) -> str:
    issued: str = api.keys.issue("owner-a").key
    return issued


@pytest.fixture
def other_key(api: Api) -> str:
    issued: str = api.keys.issue("owner-b").key
    return issued
