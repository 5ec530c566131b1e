"""Webhooks end to end on the moto server: signed per Standard Webhooks (checked with the
independent `standardwebhooks` package), retried on the schedule, never redirected."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.netguard import NetPolicy
from atlas_codex.jobs.record import CreateJobRequest, Job, WebhookState
from atlas_codex.notifications.webhooks import delivery
from atlas_codex.notifications.webhooks.delivery import MAX_ATTEMPTS, WebhookMessage
from atlas_codex_local.poller import SqsPoller
from tests.fakes import ScriptedExtractor
from tests.support.functions import WorkerFunction, worker_with
from tests.support.receiver import Receiver


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([])
    yield r
    r.close()


@pytest.fixture
def modules(
    config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
) -> tuple[WorkerFunction, ModuleType]:
    from atlas_codex.handlers import webhooks

    worker = worker_with(config, ScriptedExtractor())
    monkeypatch.setattr(
        webhooks.sender, "policy", NetPolicy.from_host_ports([f"127.0.0.1:{receiver.port}"])
    )
    # The same receiver is allowed where the job is submitted (checked there too).
    worker.service.webhook_policy = webhooks.sender.policy
    # Simulated time: retries are handed over at once (deliver_all treats them as due).
    monkeypatch.setattr(delivery, "MAX_SQS_DELAY_S", 0)
    return worker, webhooks


def hook(job: Job) -> WebhookState:
    assert job.webhook is not None
    return job.webhook


def run_job(worker: WorkerFunction, config: RuntimeConfig, url: str, hook: str) -> Job:
    request = CreateJobRequest(type="webhook", urls=[url], webhook_url=hook)
    job: Job = worker.service.submit(
        owner_id="owner-h", request=request, correlation_id="corr-h", idempotency_key=None
    ).job
    poller = SqsPoller(
        sqs=worker.sqs,
        queue_url=config.jobs_queue_url,
        handler=worker.handler,
        function_name="worker",
        timeout_ms=60_000,
        retry_delay_s=0,
    )
    while poller.poll_once():
        pass
    done: Job = worker.service.manager.get(job.job_id)
    return done


def deliver_all(
    webhooks: ModuleType, config: RuntimeConfig, *, now: float | None = None
) -> list[str]:
    """Hand every message on the webhooks queue to the sender, due or not (time is simulated)."""
    sqs = webhooks.sender.queue.sqs
    outcomes: list[str] = []
    while True:
        got = sqs.receive_message(QueueUrl=config.webhooks_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not got:
            return outcomes
        for m in got:
            message = WebhookMessage.model_validate_json(m["Body"])
            due = message.model_copy(update={"not_before": 0})
            outcomes.append(webhooks.sender.handle(due))
            sqs.delete_message(QueueUrl=config.webhooks_queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_a_finished_job_is_delivered_signed_and_verifiable(
    modules: tuple[WorkerFunction, ModuleType], config: RuntimeConfig, receiver: Receiver
) -> None:
    worker, webhooks = modules
    job = run_job(worker, config, "https://shop.example/ok/1", receiver.url)
    assert job.status == "completed"
    assert deliver_all(webhooks, config) == ["delivered"]
    headers, body = receiver.requests[0]
    secret = webhooks.sender.secrets.active("owner-h")[0]
    event = Webhook(secret).verify(body, headers)
    assert event["type"] == "job.completed"
    assert event["data"]["job_id"] == job.job_id
    assert headers["webhook-id"] == f"msg_{job.job_id}"
    assert headers["x-correlation-id"] == "corr-h"
    final = worker.service.manager.get(job.job_id)
    assert hook(final).state == "delivered"
    assert [(a.attempt, a.status_code) for a in hook(final).attempts] == [(1, 200)]


def test_a_failed_attempt_is_retried_with_the_same_webhook_id(
    modules: tuple[WorkerFunction, ModuleType], config: RuntimeConfig, receiver: Receiver
) -> None:
    worker, webhooks = modules
    receiver.statuses[:] = [500, 503]
    job = run_job(worker, config, "https://shop.example/ok/2", receiver.url)
    assert deliver_all(webhooks, config) == ["retry", "retry", "delivered"]
    ids = {h["webhook-id"] for h, _ in receiver.requests}
    assert ids == {f"msg_{job.job_id}"}
    final = worker.service.manager.get(job.job_id)
    assert [(a.attempt, a.status_code) for a in hook(final).attempts] == [
        (1, 500),
        (2, 503),
        (3, 200),
    ]


def test_redirects_are_not_followed_and_count_as_failures(
    modules: tuple[WorkerFunction, ModuleType], config: RuntimeConfig, receiver: Receiver
) -> None:
    worker, webhooks = modules
    receiver.statuses[:] = [302]
    job = run_job(worker, config, "https://shop.example/ok/3", receiver.url)
    assert deliver_all(webhooks, config) == ["retry", "delivered"]
    attempt = hook(worker.service.manager.get(job.job_id)).attempts[0]
    assert attempt.status_code == 302
    assert "redirects are not followed" in (attempt.error or "")
    assert len(receiver.requests) == 2  # nothing went to the Location


def test_a_delivery_dies_after_the_last_attempt_and_is_visible(
    modules: tuple[WorkerFunction, ModuleType], config: RuntimeConfig, receiver: Receiver
) -> None:
    worker, webhooks = modules
    receiver.statuses[:] = [500] * MAX_ATTEMPTS
    job = run_job(worker, config, "https://shop.example/ok/4", receiver.url)
    assert deliver_all(webhooks, config) == ["retry"] * (MAX_ATTEMPTS - 1) + ["dead"]
    final = worker.service.manager.get(job.job_id)
    assert hook(final).state == "dead"
    assert len(hook(final).attempts) == MAX_ATTEMPTS
    dead = webhooks.sender.queue.sqs.receive_message(QueueUrl=config.webhooks_dlq_url)["Messages"]
    assert json.loads(dead[0]["Body"])["job_id"] == job.job_id


def test_a_target_the_ssrf_guard_refuses_is_dead_at_once(
    modules: tuple[WorkerFunction, ModuleType],
    config: RuntimeConfig,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker, webhooks = modules
    # Refused at submission too (tests/integration/test_hostile_input.py); here the target
    # turns internal only after it was accepted (a name re-pointed, DNS rebinding).
    monkeypatch.setattr(worker.service, "webhook_policy", None)
    job = run_job(worker, config, "https://shop.example/ok/5", "http://10.0.0.1/hook")
    assert _through_the_handler(webhooks, config)["batchItemFailures"] == []
    webhook = hook(worker.service.manager.get(job.job_id))
    assert webhook.state == "dead"
    assert "target refused" in (webhook.attempts[0].error or "")
    assert receiver.requests == []
    dead = webhooks.sender.queue.sqs.receive_message(QueueUrl=config.webhooks_dlq_url)
    assert json.loads(dead["Messages"][0]["Body"])["job_id"] == job.job_id


def test_during_a_rotation_both_secrets_verify(
    modules: tuple[WorkerFunction, ModuleType], config: RuntimeConfig, receiver: Receiver
) -> None:
    worker, webhooks = modules
    old = webhooks.sender.secrets.active("owner-h")[0]
    new = webhooks.sender.secrets.rotate("owner-h")
    run_job(worker, config, "https://shop.example/ok/6", receiver.url)
    deliver_all(webhooks, config)
    headers, body = receiver.requests[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers)["type"] == "job.completed"


def test_a_message_not_yet_due_is_deferred(
    modules: tuple[WorkerFunction, ModuleType],
    config: RuntimeConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, webhooks = modules
    import time

    monkeypatch.setattr(delivery, "MAX_SQS_DELAY_S", 900)
    later = WebhookMessage(
        job_id="job_x", correlation_id="c", attempt=4, not_before=time.time() + 7200
    )
    assert webhooks.sender.handle(later) == "deferred"
    again = webhooks.sender.queue.sqs.receive_message(
        QueueUrl=config.webhooks_queue_url, AttributeNames=["All"]
    )
    assert again.get("Messages", []) == []  # delayed by the queue (15 minutes at most)


def _through_the_handler(webhooks: ModuleType, config: RuntimeConfig) -> dict[str, Any]:
    """The webhooks function as Lambda invokes it: one SQS event of what is on the queue."""
    from atlas_codex_local.apigw import context as lambda_context
    from atlas_codex_local.poller import sqs_event

    sqs = webhooks.sender.queue.sqs
    got = sqs.receive_message(
        QueueUrl=config.webhooks_queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    arn = sqs.get_queue_attributes(QueueUrl=config.webhooks_queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    event = sqs_event(got, arn, arn.split(":")[3])
    out: dict[str, Any] = webhooks.handler(
        event, lambda_context(30_000, "atlas-codex-webhooks-local")
    )
    return out


def test_the_webhooks_function_signs_a_new_owner_s_first_webhook(
    modules: tuple[WorkerFunction, ModuleType], config: RuntimeConfig, receiver: Receiver
) -> None:
    worker, webhooks = modules
    job = run_job(worker, config, "https://shop.example/ok/7", receiver.url)
    assert _through_the_handler(webhooks, config)["batchItemFailures"] == []
    headers, body = receiver.requests[0]
    secret = webhooks.sender.secrets.active("owner-h")[0]  # made on that first delivery
    assert Webhook(secret).verify(body, headers)["data"]["job_id"] == job.job_id
    assert hook(worker.service.manager.get(job.job_id)).state == "delivered"


def test_the_webhooks_function_schedules_a_failed_attempt_again(
    modules: tuple[WorkerFunction, ModuleType], config: RuntimeConfig, receiver: Receiver
) -> None:
    worker, webhooks = modules
    receiver.statuses[:] = [503]
    job = run_job(worker, config, "https://shop.example/ok/9", receiver.url)
    assert _through_the_handler(webhooks, config)["batchItemFailures"] == []
    again = webhooks.sender.queue.sqs.receive_message(QueueUrl=config.webhooks_queue_url)
    message = json.loads(again["Messages"][0]["Body"])
    assert (message["job_id"], message["attempt"]) == (job.job_id, 2)
