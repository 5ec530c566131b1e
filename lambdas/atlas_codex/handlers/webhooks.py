"""The webhook sender: batches from the webhooks queue, one delivery attempt per message."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from atlas_codex.ground import metrics, naming
from atlas_codex.ground.config import get_config
from atlas_codex.notifications.webhooks.delivery import WebhookMessage
from atlas_codex.wiring import build_webhook_sender

config = get_config()
logger = Logger(service=naming.service_name("webhooks"))
sender = build_webhook_sender(config)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
outcomes: dict[str, int] = {"failed": 0}


def record_handler(record: SQSRecord) -> str:
    message = WebhookMessage.model_validate_json(record.body)
    logger.set_correlation_id(message.correlation_id)
    try:
        outcome = sender.handle(message)
    except Exception:
        logger.exception("webhook message failed; it returns to the queue")
        outcomes["failed"] += 1
        raise
    logger.info(
        "webhook handled",
        extra={"job_id": message.job_id, "attempt": message.attempt, "outcome": outcome},
    )
    return outcome


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes.update(failed=0)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    # A retry is re-sent with its delay by the sender and the message succeeds: none returned.
    metrics.publish_batch(
        "webhooks",
        config.stage,
        received=len(event.get("Records", [])),
        failed=outcomes["failed"],
        returned=0,
    )
    return dict(response)
