"""Queues: jobs (consumed by the worker) and webhooks (consumed by the sender), each with a DLQ."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex_stage.settings import StageSettings
from stacks.constructs.queue_with_dlq import QueueWithDlq


class MessagingStack(Stack):
    def __init__(self, scope: Construct, settings: StageSettings, **kwargs: Any) -> None:
        super().__init__(scope, naming.stack_name("messaging", settings.stage), **kwargs)
        self.jobs = QueueWithDlq(
            self,
            "Jobs",
            stage=settings.stage,
            queue="queue",
            dlq="dlq",
            settings=settings.jobs_queue,
        )
        self.webhooks = QueueWithDlq(
            self,
            "Webhooks",
            stage=settings.stage,
            queue="webhooks",
            dlq="webhooks-dlq",
            settings=settings.webhooks_queue,
        )
        for cid, queue in (
            ("JobsQueueUrl", self.jobs.queue),
            ("JobsDlqUrl", self.jobs.dlq),
            ("WebhooksQueueUrl", self.webhooks.queue),
            ("WebhooksDlqUrl", self.webhooks.dlq),
        ):
            CfnOutput(self, cid, value=queue.queue_url)
        Tags.of(self).add("atlas-codex:layer", "messaging")
