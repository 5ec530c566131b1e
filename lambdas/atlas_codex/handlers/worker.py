"""The worker: SQS batches of job messages, with partial batch failures.

A record whose job must be retried (a transient error, or too little time left in this
invocation to start it) fails alone and returns to the queue; after the queue's maximum
receives it reaches the DLQ, and the job has been failed with the reason on that last try.
Duplicate deliveries are harmless twice over: Powertools idempotency on the message id,
and the conditional claim of the job, which a second delivery loses.
"""

from __future__ import annotations

import time
from typing import Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from atlas_codex import aws, metrics, naming
from atlas_codex.config import get_config
from atlas_codex.jobs.messages import CORRELATION_ATTRIBUTE, JobMessage
from atlas_codex.jobs.service import RetryLater
from atlas_codex.wiring import build_service

SAFETY_MS: Final = 10_000
"""Kept back from the invocation's remaining time: to record the outcome and answer."""
MIN_JOB_MS: Final = 15_000
"""Less than this left in the invocation: the record goes back to the queue unstarted."""

config = get_config()
logger = Logger(service=naming.service_name("worker"))
service = build_service(config)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
persistence = DynamoDBPersistenceLayer(
    table_name=config.idempotency_table, boto3_client=aws.dynamodb(config.aws_endpoint_url)
)
idempotency = IdempotencyConfig(event_key_jmespath="messageId", expires_after_seconds=3600)
outcomes: dict[str, int] = {"failed": 0, "returned": 0}
"""This invocation's messages that failed, and those returned on purpose (one invocation at a
time per environment)."""


class NotEnoughTime(Exception):
    """This invocation has too little time left to start the job; the queue will redeliver."""


@idempotent_function(
    data_keyword_argument="record", persistence_store=persistence, config=idempotency
)
def process(record: dict[str, Any], remaining_ms: int) -> str:
    message = JobMessage.model_validate_json(record["body"])
    logger.set_correlation_id(message.correlation_id)
    logger.append_keys(job_id=message.job_id)
    if remaining_ms - SAFETY_MS < MIN_JOB_MS:
        raise NotEnoughTime(f"{remaining_ms} ms left")
    receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
    deadline = time.monotonic() + (remaining_ms - SAFETY_MS) / 1000
    job = service.process(message, receive_count=receive_count, deadline=deadline)
    outcome = job.status if job is not None else "skipped"
    logger.info("message processed", extra={"outcome": outcome, "receive_count": receive_count})
    return outcome


def record_handler(record: SQSRecord) -> str:
    attribute = record.message_attributes[CORRELATION_ATTRIBUTE]  # None when absent
    if attribute is not None and attribute.string_value:
        logger.set_correlation_id(attribute.string_value)
    context = processor.lambda_context
    remaining = context.get_remaining_time_in_millis() if context is not None else 60_000
    try:
        return str(process(record=record.raw_event, remaining_ms=remaining))
    except (RetryLater, NotEnoughTime) as exc:
        logger.warning("message returned to the queue", extra={"reason": str(exc)})
        outcomes["returned"] += 1
        raise
    except Exception:
        logger.exception(
            "message failed; it returns to the queue, and to the DLQ after the last try"
        )
        outcomes["failed"] += 1
        raise


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    outcomes.update(failed=0, returned=0)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    metrics.publish_batch(
        "worker", config.stage, received=len(event.get("Records", [])), **outcomes
    )
    return dict(response)
