"""Sending jobs to the work queue, with the correlation id as a message attribute: SQS on
every stage (:class:`SqsJobQueue`), a list in the lifecycle tests (:class:`MemoryJobQueue`)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final, Protocol

from atlas_codex.jobs.messages import CORRELATION_ATTRIBUTE, JobMessage
from atlas_codex.jobs.record import Job

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH_MAX: Final = 10
SEND_ATTEMPTS: Final = 5
MAX_SEND_DELAY_S: Final = 900
"""SQS delays a new message at most this long (DelaySeconds)."""


class JobQueue(Protocol):
    def send(self, job: Job, *, delay_s: int = 0) -> None:
        """Send the job's message, delivered after ``delay_s`` (at most SQS's 900 s)."""
        ...

    def send_many(self, jobs: Sequence[Job]) -> None: ...


class DeadLetters(Protocol):
    def peek(self, limit: int, *, hide_s: int = ...) -> list[tuple[JobMessage, int]]: ...


class SqsJobQueue:
    def __init__(self, *, sqs: SQSClient, queue_url: str) -> None:
        self.sqs = sqs
        self.url = queue_url

    def send(self, job: Job, *, delay_s: int = 0) -> None:
        message = JobMessage(job_id=job.job_id, correlation_id=job.correlation_id)
        self.sqs.send_message(
            QueueUrl=self.url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=max(0, min(MAX_SEND_DELAY_S, delay_s)),
            MessageAttributes={
                CORRELATION_ATTRIBUTE: {"DataType": "String", "StringValue": job.correlation_id}
            },
        )

    def send_many(self, jobs: Sequence[Job]) -> None:
        """Send in batches of ten; entries SQS refuses are sent again, then it is an error."""
        for start in range(0, len(jobs), SQS_BATCH_MAX):
            pending = {str(i): job for i, job in enumerate(jobs[start : start + SQS_BATCH_MAX])}
            for _ in range(SEND_ATTEMPTS):
                entries: list[SendMessageBatchRequestEntryTypeDef] = [
                    {
                        "Id": key,
                        "MessageBody": JobMessage(
                            job_id=job.job_id, correlation_id=job.correlation_id
                        ).model_dump_json(),
                        "MessageAttributes": {
                            CORRELATION_ATTRIBUTE: {
                                "DataType": "String",
                                "StringValue": job.correlation_id,
                            }
                        },
                    }
                    for key, job in pending.items()
                ]
                out = self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
                pending = {f["Id"]: pending[f["Id"]] for f in out.get("Failed", [])}
                if not pending:
                    break
            if pending:
                raise RuntimeError(
                    f"SQS refused {len(pending)} messages after {SEND_ATTEMPTS} attempts"
                )


DEAD_LETTER_PEEK_S: Final = 60
"""A dead letter read by the sweep is hidden this long, then back for the operators."""


class SqsDeadLetters:
    """The jobs queue's dead letters, read without consuming them: each stays on the DLQ
    for the operators (RUNBOOK), hidden from other readers for :data:`DEAD_LETTER_PEEK_S`."""

    def __init__(self, *, sqs: SQSClient, queue_url: str) -> None:
        self.sqs = sqs
        self.url = queue_url

    def peek(self, limit: int, *, hide_s: int = DEAD_LETTER_PEEK_S) -> list[tuple[JobMessage, int]]:
        """Up to ``limit`` dead letters: each message and how often it was received. Each is
        hidden ``hide_s`` from other readers (0: a dry run leaves them as they were)."""
        found: dict[str, tuple[JobMessage, int]] = {}
        seen: set[str] = set()
        while len(found) < limit:
            out = self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=SQS_BATCH_MAX,
                VisibilityTimeout=hide_s,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
            messages = out.get("Messages", [])
            if not messages or all(m.get("MessageId", "") in seen for m in messages):
                break  # the queue is read (or shows only what was already read)
            for raw in messages:
                seen.add(raw.get("MessageId", ""))
                try:
                    message = JobMessage.model_validate_json(raw.get("Body", ""))
                except ValueError:
                    continue  # not a job's message: the operators read it
                received = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "0"))
                found[raw.get("MessageId", message.job_id)] = (message, received)
        return list(found.values())[:limit]


class MemoryJobQueue:
    """The messages sent, in order, for a test to deliver (:meth:`take`)."""

    def __init__(self) -> None:
        self.messages: list[JobMessage] = []
        self.delays: dict[str, int] = {}
        """The delay each job's last message was sent with, when it had one."""
        self._lock = threading.Lock()

    def send(self, job: Job, *, delay_s: int = 0) -> None:
        with self._lock:
            self.messages.append(JobMessage(job_id=job.job_id, correlation_id=job.correlation_id))
            if delay_s:
                self.delays[job.job_id] = delay_s

    def send_many(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.send(job)

    def take(self) -> list[JobMessage]:
        """Every message sent since the last take (the queue is then empty)."""
        with self._lock:
            taken, self.messages = self.messages, []
        return taken
