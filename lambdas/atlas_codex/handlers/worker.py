"""The worker: SQS batches of job messages, run side by side, with partial batch failures.

The messages of a batch run at once, each in its own thread: a job spends most of its time
waiting on pages and models, so one invocation carries up to ``batch_size`` jobs
(stacks/functions.py) and the queue's event source, which runs at most 1,000 batches at once,
carries that many times more jobs (docs/CAPACITY.md). Each message's log lines carry its own
correlation id and job id (Powertools' thread-local keys).

A record whose job must be retried (a transient error, or too little time left in this
invocation to start it) fails alone and returns to the queue: after the queue's visibility
timeout, or sooner or later when the site or the models said when (a ``Retry-After``, a
cooldown: the message's visibility is set to that delay); after the queue's maximum
receives it reaches the DLQ, and the job has been failed with the reason on that last try.
Duplicate deliveries are harmless twice over: Powertools idempotency on the message id,
and the conditional claim of the job, which a second delivery loses.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from atlas_codex.ground import aws, metrics, naming
from atlas_codex.ground.config import RuntimeConfig, get_config
from atlas_codex.jobs.messages import CORRELATION_ATTRIBUTE, JobMessage
from atlas_codex.jobs.service import CrashedRetry, JobService, RetryLater
from atlas_codex.wiring import build_service

SAFETY_MS: Final = 10_000
"""Kept back from the invocation's remaining time: to record the outcome and answer."""
MIN_JOB_MS: Final = 15_000
"""Less than this left in the invocation: the record goes back to the queue unstarted."""

config = get_config()
logger = Logger(service=naming.service_name("worker"))
persistence = DynamoDBPersistenceLayer(
    table_name=config.idempotency_table, boto3_client=aws.dynamodb(config.aws_endpoint_url)
)
idempotency = IdempotencyConfig(event_key_jmespath="messageId", expires_after_seconds=3600)


class NotEnoughTime(Exception):
    """This invocation has too little time left to start the job; the queue will redeliver."""


class ReturnedLater:
    """Messages returned to the queue with a delay of their own: their visibility is set to
    when the site or the models said trying again is worth it (a ``Retry-After``, a
    cooldown), instead of the queue's visibility timeout."""

    def __init__(self, set_visibility: Callable[[str, int], None]) -> None:
        self._set_visibility = set_visibility
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def later(self, message_id: str, receipt_handle: str, delay_s: int) -> None:
        self._set_visibility(receipt_handle, delay_s)
        with self._lock:
            self._ids.add(message_id)

    def taken(self, message_id: str) -> bool:
        """Whether this message's return was set here (asked once; local mode's poller
        leaves such a message's visibility alone)."""
        with self._lock:
            if message_id in self._ids:
                self._ids.discard(message_id)
                return True
            return False


class MessageTally:
    """This invocation's messages that failed, and those returned on purpose."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, outcome: str) -> None:
        with self._lock:
            self.counts[outcome] += 1


def make_handler(
    service: JobService, returns: ReturnedLater
) -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    """The worker's Lambda handler, running the queue's messages through ``service`` (the
    module builds it from the stage's configuration; a test, with the engine it injects);
    messages a job asks back later go through ``returns``."""

    @idempotent_function(
        data_keyword_argument="record", persistence_store=persistence, config=idempotency
    )
    def process(record: dict[str, Any], remaining_ms: int) -> str:
        message = JobMessage.model_validate_json(record["body"])
        logger.thread_safe_append_keys(correlation_id=message.correlation_id, job_id=message.job_id)
        if remaining_ms - SAFETY_MS < MIN_JOB_MS:
            raise NotEnoughTime(f"{remaining_ms} ms left")
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1"))
        deadline = time.monotonic() + (remaining_ms - SAFETY_MS) / 1000
        job = service.process(message, receive_count=receive_count, deadline=deadline)
        outcome: str = job.status if job is not None else "skipped"
        if job is not None and job.error is not None and job.error.code == "internal_error":
            outcome = "crashed"  # the last try crashed too: the job failed, the message ends
        logger.info("message processed", extra={"outcome": outcome, "receive_count": receive_count})
        return outcome

    def run_record(raw: dict[str, Any], context: LambdaContext, outcomes: MessageTally) -> bool:
        """One message, start to end; False when it must return to the queue."""
        record = SQSRecord(raw)
        attribute = record.message_attributes[CORRELATION_ATTRIBUTE]  # None when absent
        if attribute is not None and attribute.string_value:
            logger.thread_safe_append_keys(correlation_id=attribute.string_value)
        try:
            outcome = process(record=raw, remaining_ms=context.get_remaining_time_in_millis())
            if outcome == "crashed":
                outcomes.add("failed")  # counted, so the failed-messages alarm sees it
            return True
        except CrashedRetry as exc:
            # A crash is an error even while it is retried: counted as a failed message.
            logger.error("extraction crashed; the message returns to the queue: %s", exc)
            outcomes.add("failed")
            return False
        except (RetryLater, NotEnoughTime) as exc:
            delay = exc.delay_s if isinstance(exc, RetryLater) else None
            logger.warning(
                "message returned to the queue", extra={"reason": str(exc), "delay_s": delay}
            )
            if delay is not None:
                try:
                    returns.later(record.message_id, record.receipt_handle, delay)
                except Exception:  # the queue's own visibility timeout still returns it
                    logger.exception("the message's return delay could not be set")
            outcomes.add("returned")
            return False
        except Exception:
            logger.exception(
                "message failed; it returns to the queue, and to the DLQ after the last try"
            )
            outcomes.add("failed")
            return False
        finally:
            logger.thread_safe_clear_keys()

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        idempotency.register_lambda_context(context)
        records: list[dict[str, Any]] = list(event.get("Records", []))
        outcomes = MessageTally()
        if len(records) > 1:
            with ThreadPoolExecutor(len(records), thread_name_prefix="message") as pool:
                done = list(pool.map(lambda r: run_record(r, context, outcomes), records))
        else:
            done = [run_record(r, context, outcomes) for r in records]
        metrics.publish_batch(
            "worker",
            config.stage,
            received=len(records),
            failed=outcomes.counts["failed"],
            returned=outcomes.counts["returned"],
        )
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]}
                for r, ok in zip(records, done, strict=True)
                if not ok
            ]
        }

    return handler


def sqs_returns(stage: RuntimeConfig) -> ReturnedLater:
    """Returns set on the stage's jobs queue (``sqs:ChangeMessageVisibility``, which the
    queue's event source grants the worker)."""

    def set_visibility(receipt_handle: str, delay_s: int) -> None:
        aws.sqs(stage.aws_endpoint_url).change_message_visibility(
            QueueUrl=stage.jobs_queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=delay_s
        )

    return ReturnedLater(set_visibility)


service = build_service(config)
returns = sqs_returns(config)
handler = make_handler(service, returns)
