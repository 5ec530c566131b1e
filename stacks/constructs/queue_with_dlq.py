"""A work queue and its dead-letter queue, redriven after the configured receives."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex.ground.naming import QueueResource
from atlas_codex_stage.settings import QueueSettings
from stacks import nag


class QueueWithDlq(Construct):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        stage: str,
        queue: QueueResource,
        dlq: QueueResource,
        settings: QueueSettings,
    ) -> None:
        super().__init__(scope, cid)
        self.dlq = sqs.Queue(
            self,
            "Dlq",
            queue_name=naming.queue_name(dlq, stage),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(settings.dlq_retention_days),
        )
        nag.acknowledge(
            self.dlq,
            "Serverless",
            "SQSRedrivePolicy",
            "This is the dead-letter queue itself; its depth is alarmed and an operator "
            "redrives it after fixing the cause.",
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            queue_name=naming.queue_name(queue, stage),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=Duration.seconds(settings.visibility_timeout_s),
            retention_period=Duration.days(settings.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=settings.max_receive_count, queue=self.dlq
            ),
        )
