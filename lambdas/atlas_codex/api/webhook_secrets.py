"""The webhook-secrets room: the owner's signing secrets, and their rotation."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from atlas_codex.api import answers
from atlas_codex.api.answers import responses
from atlas_codex.jobs.views import WebhookSecretsView
from atlas_codex.notifications.webhooks.secrets_store import WebhookSecretStore


def secret_routes(secrets: WebhookSecretStore) -> Router:
    router = Router()

    @router.get(
        "/webhook-secret",
        responses=responses(
            200, WebhookSecretsView, "Your active webhook signing secrets, newest first"
        ),
        summary="Webhook signing secrets",
    )
    def webhook_secrets() -> Response[str]:
        view = WebhookSecretsView(secrets=secrets.active(answers.owner(router)))
        return answers.json_response(200, view, correlation_id=answers.correlation_id(router))

    @router.post(
        "/webhook-secret/rotate",
        responses=responses(
            200, WebhookSecretsView, "A new secret; the previous ones keep signing for a day"
        ),
        summary="Rotate the webhook signing secret",
    )
    def rotate_webhook_secret() -> Response[str]:
        owner = answers.owner(router)
        secrets.rotate(owner)
        view = WebhookSecretsView(secrets=secrets.active(owner))
        return answers.json_response(200, view, correlation_id=answers.correlation_id(router))

    return router
