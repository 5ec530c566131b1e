"""The composition root: builds the domain objects of one function from its configuration.

Created once per process (cold start) and reused by every invocation.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from atlas_codex.accounts.auth import ApiKeyStore
from atlas_codex.accounts.usage import UsageLedger
from atlas_codex.engine.pages.store import PageStore
from atlas_codex.extraction.contract import Extractor
from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig, get_config
from atlas_codex.ground.netguard import NetPolicy
from atlas_codex.jobs.finished import outcome_metrics
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.queue import SqsDeadLetters, SqsJobQueue
from atlas_codex.jobs.record import Job
from atlas_codex.jobs.service import JobService
from atlas_codex.jobs.submission import Notifier
from atlas_codex.notifications.live import ConnectionStore, LivePush
from atlas_codex.notifications.webhooks.delivery import WebhookQueue, WebhookSender
from atlas_codex.notifications.webhooks.secrets_store import WebhookSecretStore

if TYPE_CHECKING:
    from atlas_codex.health import HealthMonitor


@functools.cache
def extractor() -> Extractor:
    # The engine is imported when a job is first run, not at a function's cold start.
    from atlas_codex.engine.engine import build_extractor

    return build_extractor(get_config())


def build_manager(config: RuntimeConfig) -> JobManager:
    return JobManager.on_aws(
        table_name=config.jobs_table,
        bucket=config.artifacts_bucket,
        dynamodb=aws.dynamodb(config.aws_endpoint_url),
        s3=aws.lazy(aws.s3, config.aws_endpoint_url),
        ttl_days=config.job_ttl_days,
    )


def build_webhook_queue(config: RuntimeConfig) -> WebhookQueue:
    return WebhookQueue(
        sqs=aws.lazy(aws.sqs, config.aws_endpoint_url),
        queue_url=config.webhooks_queue_url,
        dlq_url=config.webhooks_dlq_url,
    )


def build_service(
    config: RuntimeConfig, *, engine: Callable[[], Extractor] | None = None
) -> JobService:
    """The job service; ``engine`` replaces the extraction engine (tests inject one)."""
    return JobService(
        manager=build_manager(config),
        queue=SqsJobQueue(
            sqs=aws.lazy(aws.sqs, config.aws_endpoint_url), queue_url=config.jobs_queue_url
        ),
        extractor=engine or extractor,
        max_receives=config.jobs_max_receives,
        notify=build_notifier(config),
        page_store=PageStore.for_config(config),
        message_lost_after=config.message_lost_after,
        webhook_policy=NetPolicy.from_host_ports(config.allowed_private_hosts),
        cost_basis=config.cost_basis,
        dead_letters=SqsDeadLetters(
            sqs=aws.lazy(aws.sqs, config.aws_endpoint_url), queue_url=config.jobs_dlq_url
        ),
    )


def build_connections(config: RuntimeConfig) -> ConnectionStore:
    return ConnectionStore(
        dynamodb=aws.dynamodb(config.aws_endpoint_url), table_name=config.connections_table
    )


def build_live_push(config: RuntimeConfig) -> LivePush | None:
    """Pushes to WebSocket subscribers, when this deployment has a WebSocket API."""
    if config.websocket_endpoint is None:
        return None
    return LivePush(
        store=build_connections(config),
        management=aws.websocket_management(config.websocket_endpoint),
    )


_OBSERVERS: list[Notifier] = []


def observe(notifier: Notifier) -> None:
    """Also call ``notifier`` after every status change made in this process (local mode
    prints a line per job event with it). Observers are called after the function's own
    hooks, and one that fails never fails the job."""
    _OBSERVERS.append(notifier)


def build_notifier(config: RuntimeConfig) -> Notifier:
    hooks: list[Notifier] = [build_webhook_queue(config).notifier(), outcome_metrics(config.stage)]
    live = build_live_push(config)
    if live is not None:
        hooks.append(live)

    def notify(job: Job) -> None:
        for hook in hooks:
            hook(job)
        for observer in list(_OBSERVERS):
            try:
                observer(job)
            except Exception:  # an observer is a bystander: it never changes the job's fate
                logging.getLogger(__name__).exception("a status observer failed")

    return notify


def build_secret_store(config: RuntimeConfig) -> WebhookSecretStore:
    return WebhookSecretStore(
        dynamodb=aws.dynamodb(config.aws_endpoint_url), table_name=config.usage_table
    )


def build_webhook_sender(config: RuntimeConfig) -> WebhookSender:
    return WebhookSender(
        manager=build_manager(config),
        secrets=build_secret_store(config),
        queue=build_webhook_queue(config),
        policy=NetPolicy.from_host_ports(config.allowed_private_hosts),
    )


def build_key_store(config: RuntimeConfig) -> ApiKeyStore:
    return ApiKeyStore(
        dynamodb=aws.dynamodb(config.aws_endpoint_url), table_name=config.usage_table
    )


def build_health_monitor(config: RuntimeConfig) -> HealthMonitor:
    from atlas_codex.health import HealthMonitor, canary_extractor, openai_model_probe

    return HealthMonitor(
        config,
        dynamodb=aws.dynamodb(config.aws_endpoint_url),
        sqs=aws.lazy(aws.sqs, config.aws_endpoint_url),
        extractor=canary_extractor,
        environ=os.environ,
        model_probe=openai_model_probe(config),
    )


def build_usage_ledger(config: RuntimeConfig) -> UsageLedger:
    return UsageLedger(
        dynamodb=aws.dynamodb(config.aws_endpoint_url),
        table_name=config.usage_table,
        stage=config.stage,
    )
