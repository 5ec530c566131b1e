"""Webhook delivery through its own queue, on the Standard Webhooks retry schedule.

Attempt 1 goes at once; after a failure the next waits 5 s, 5 min, 30 min, 2 h, 5 h, 10 h
and 10 h (each +-10 % jitter). SQS delays stop at 15 minutes, so a message carries the
instant it is due (``not_before``) and is deferred in hops until then. Only a 2xx answer
is a success; redirects are not followed; the target passes the same SSRF guard as page
fetching. Every attempt is recorded on the job; after the last one (or at once, for a
target the guard refuses) the delivery is dead: the job says so and the message goes to
the webhooks DLQ, where the DLQ alarm sees it.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict, Field

from atlas_codex.ground import limits
from atlas_codex.ground.netguard import (
    BlockedTarget,
    DnsError,
    NetPolicy,
    Resolver,
    check_url,
    pinned_url,
    system_resolver,
)
from atlas_codex.ground.values import format_timestamp
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import Job, WebhookAttempt
from atlas_codex.jobs.views import JobView
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES, CorrelationId, JobId
from atlas_codex.notifications.webhooks import signing
from atlas_codex.notifications.webhooks.secrets_store import WebhookSecretStore

if TYPE_CHECKING:
    import httpx
    from mypy_boto3_sqs import SQSClient

logger = logging.getLogger(__name__)

RETRY_DELAYS_S: Final = (5, 300, 1800, 7200, 18000, 36000, 36000)
"""Waits before attempts 2..8; attempt 1 is immediate."""
MAX_ATTEMPTS: Final = 1 + len(RETRY_DELAYS_S)
MAX_SQS_DELAY_S: Final = 900
TIMEOUT_S: Final = 10.0
CONNECT_TIMEOUT_S: Final = 3.0
USER_AGENT: Final = "AtlasCodex-Webhooks/1.0"


class WebhookMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    job_id: JobId
    correlation_id: CorrelationId
    attempt: int = Field(ge=1, le=MAX_ATTEMPTS)
    not_before: float = Field(ge=0)


@dataclass(frozen=True)
class AttemptResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    permanent: bool = False


def payload(job: Job) -> bytes:
    event = {
        "type": f"job.{job.status}",
        "timestamp": format_timestamp(job.updated_at),
        "data": JobView.of(job).model_dump(mode="json"),
    }
    return json.dumps(event, separators=(",", ":")).encode()


class WebhookQueue:
    def __init__(self, *, sqs: SQSClient, queue_url: str, dlq_url: str) -> None:
        self.sqs = sqs
        self.url = queue_url
        self.dlq_url = dlq_url

    def send(self, message: WebhookMessage, *, now: float | None = None) -> None:
        wait = max(0.0, message.not_before - (time.time() if now is None else now))
        self.sqs.send_message(
            QueueUrl=self.url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=int(min(wait, MAX_SQS_DELAY_S)),
        )

    def dead(self, message: WebhookMessage) -> None:
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=message.model_dump_json())

    def notifier(self) -> Callable[[Job], None]:
        """For the job service: queue the first attempt when a job with a webhook ends."""

        def notify(job: Job) -> None:
            if (
                job.webhook is None
                or job.status not in TERMINAL_STATUSES
                or job.webhook.state != "pending"
            ):
                return
            self.send(
                WebhookMessage(
                    job_id=job.job_id, correlation_id=job.correlation_id, attempt=1, not_before=0
                )
            )

        return notify


class WebhookSender:
    def __init__(
        self,
        *,
        manager: JobManager,
        secrets: WebhookSecretStore,
        queue: WebhookQueue,
        policy: NetPolicy,
        resolver: Resolver = system_resolver,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.manager = manager
        self.secrets = secrets
        self.queue = queue
        self.policy = policy
        self.resolver = resolver
        if http is None:
            import httpx  # only the webhooks function sends: the api only queues

            timeout = httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
            http = httpx.Client(follow_redirects=False, timeout=timeout, trust_env=False)
        self.http = http
        self.clock = clock

    def handle(self, message: WebhookMessage) -> str:
        now = self.clock()
        if message.not_before > now + 1:
            self.queue.send(message, now=now)  # not due yet: another hop
            return "deferred"
        job = self.manager.get(message.job_id)
        if job.webhook is None or job.webhook.state != "pending":
            return "skipped"
        result = self.deliver(job)
        attempt = WebhookAttempt(
            attempt=message.attempt,
            at=datetime.fromtimestamp(now, UTC),
            status_code=result.status_code,
            error=result.error[: limits.MAX_NOTE_CHARS] if result.error else None,
        )
        if result.ok:
            self.manager.record_webhook(job.job_id, attempt, "delivered")
            return "delivered"
        if result.permanent or message.attempt >= MAX_ATTEMPTS:
            self.manager.record_webhook(job.job_id, attempt, "dead")
            self.queue.dead(message)
            logger.error(
                "webhook delivery is dead",
                extra={"job_id": job.job_id, "attempts": message.attempt},
            )
            return "dead"
        self.manager.record_webhook(job.job_id, attempt, "pending")
        delay = RETRY_DELAYS_S[message.attempt - 1] * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not secrets
        self.queue.send(
            WebhookMessage(
                job_id=job.job_id,
                correlation_id=job.correlation_id,
                attempt=message.attempt + 1,
                not_before=now + delay,
            ),
            now=now,
        )
        return "retry"

    def deliver(self, job: Job) -> AttemptResult:
        assert job.webhook is not None
        try:
            target = check_url(job.webhook.url, self.policy, self.resolver)
        except BlockedTarget as exc:
            return AttemptResult(ok=False, error=f"target refused: {exc.reason}", permanent=True)
        except DnsError as exc:  # may pass: retried on the webhook schedule
            return AttemptResult(ok=False, error=exc.reason)
        body = payload(job)
        signed = signing.headers(
            self.secrets.active(job.owner_id), job.webhook.webhook_id, int(self.clock()), body
        )
        url, host, extensions = pinned_url(target)
        headers = {
            **signed,
            **host,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Correlation-Id": job.correlation_id,
        }
        import httpx

        try:
            response = self.http.post(url, content=body, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            return AttemptResult(ok=False, error=f"{type(exc).__name__}: {exc}")
        if 200 <= response.status_code < 300:
            return AttemptResult(ok=True, status_code=response.status_code)
        why = (
            "redirects are not followed"
            if 300 <= response.status_code < 400
            else "not a 2xx answer"
        )
        return AttemptResult(
            ok=False, status_code=response.status_code, error=f"HTTP {response.status_code}: {why}"
        )
