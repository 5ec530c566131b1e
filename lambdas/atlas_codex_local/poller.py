"""Feeds a Lambda handler from an SQS queue the way the event source mapping does.

Receives batches, hands them to the handler as an SQS event, deletes only the records the
handler did not report as failed (partial batch responses), and leaves the failed ones to
come back: after the queue's ``maxReceiveCount`` the queue's redrive policy moves them to
the DLQ. ``retry_delay_s`` shortens the wait before a failed record is seen again (the
deployed queue waits its visibility timeout), unless the handler set that wait itself.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from atlas_codex_local.apigw import context as lambda_context

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


UNREACHABLE_WAIT_S: Final = 1.0
"""How long a poller waits before trying again when the emulator cannot be reached."""


@dataclass
class PollStats:
    received: int = 0
    succeeded: int = 0
    failed: int = 0


def sqs_event(messages: list[MessageTypeDef], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    records = []
    for m in messages:
        attributes: dict[str, dict[str, Any]] = {
            k: {
                "stringValue": v.get("StringValue"),
                "binaryValue": v.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": v["DataType"],
            }
            for k, v in m.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": {str(k): v for k, v in m.get("Attributes", {}).items()},
                "messageAttributes": attributes,
                "md5OfBody": hashlib.md5(m["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


class SqsPoller:
    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        handler: Handler,
        function_name: str,
        timeout_ms: int,
        batch_size: int = 10,
        retry_delay_s: int = 1,
        idle_sleep_s: float = 0.2,
        returned_later: Callable[[str], bool] = lambda _message_id: False,
    ) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.timeout_ms = timeout_ms
        self.batch_size = batch_size
        self.retry_delay_s = retry_delay_s
        self.idle_sleep_s = idle_sleep_s
        self.returned_later = returned_later
        """Whether the handler set a failed message's return itself (a site's Retry-After):
        its visibility is then left as the handler set it."""
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.region = self.queue_arn.split(":")[3]
        self.stats = PollStats()
        self._lock = threading.Lock()

    def poll_once(self) -> int:
        """One receive and one invocation; returns how many messages were handled."""
        out = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=0,  # the emulator must not be long-polled (see emulator.py)
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = out.get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, self.queue_arn, self.region)
        response = self.handler(event, lambda_context(self.timeout_ms, self.function_name))
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)
                ],
            )
        for m in messages:
            if m["MessageId"] in failed and not self.returned_later(m["MessageId"]):
                self.sqs.change_message_visibility(
                    QueueUrl=self.url,
                    ReceiptHandle=m["ReceiptHandle"],
                    VisibilityTimeout=self.retry_delay_s,
                )
        with self._lock:
            self.stats.received += len(messages)
            self.stats.succeeded += len(done)
            self.stats.failed += len(failed)
        return len(messages)

    def run(self, stop: threading.Event) -> None:
        from botocore.exceptions import EndpointConnectionError

        while not stop.is_set():
            try:
                polled = self.poll_once()
            except EndpointConnectionError:
                # The emulator is gone: local mode's watch says so once and stops; a poller
                # that died with a traceback here would say nothing useful.
                stop.wait(UNREACHABLE_WAIT_S)
                continue
            if polled == 0:
                stop.wait(self.idle_sleep_s)
