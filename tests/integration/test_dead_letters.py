"""No job pending behind a dead letter: a job whose message reached the jobs DLQ (every
delivery failed before the job could record its own failure) is ended ``failed`` with
``dead_lettered`` by the next sweep (every five minutes), as RUNBOOK says; the message stays on
the DLQ for the operators, and a job that ended meanwhile is left as it is."""

from __future__ import annotations

from typing import Any

import boto3

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.messages import JobMessage
from atlas_codex.jobs.record import CreateJobRequest, JobResult
from atlas_codex_local.apigw import context
from tests.fakes import ScriptedExtractor
from tests.support.functions import api_with


def _dead_letter(sqs: Any, config: RuntimeConfig, job_id: str, correlation_id: str) -> None:
    body = JobMessage(job_id=job_id, correlation_id=correlation_id).model_dump_json()
    sqs.send_message(QueueUrl=config.jobs_dlq_url, MessageBody=body)


def _on_dlq(sqs: Any, config: RuntimeConfig) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=config.jobs_dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def test_a_job_whose_message_was_dead_lettered_is_failed_by_the_next_sweep(
    config: RuntimeConfig,
) -> None:
    api = api_with(config, ScriptedExtractor())
    waiting = api.service.submit(
        owner_id="owner-d",
        request=CreateJobRequest(urls=["https://shop.example/a"]),
        correlation_id="dl-1",
        idempotency_key=None,
    ).job
    finished = api.service.submit(
        owner_id="owner-d",
        request=CreateJobRequest(urls=["https://shop.example/b"]),
        correlation_id="dl-2",
        idempotency_key=None,
    ).job
    api.service.manager.claim(finished.job_id, deadline_at=utcnow())
    api.service.manager.complete(finished.job_id, JobResult(data={"ok": True}))
    for job in (waiting, finished):
        _dead_letter(api.sqs, config, job.job_id, job.correlation_id)

    report = api.service.sweep()

    ended = api.service.manager.get(waiting.job_id)
    assert ended.status == "failed"
    assert ended.error is not None
    assert ended.error.code == "dead_lettered"
    assert "dead-letter queue" in ended.error.message
    assert api.service.manager.get(finished.job_id).status == "completed"  # left as it was
    assert report.dead_lettered == [waiting.job_id]
    assert _on_dlq(api.sqs, config) == 2  # kept for the operators


def test_the_scheduled_health_run_ends_a_dead_lettered_job(
    config: RuntimeConfig, manager: JobManager
) -> None:
    from atlas_codex.handlers import health

    request = CreateJobRequest(urls=["https://shop.example/c"])
    job = manager.create(owner_id="owner-d", request=request, correlation_id="dl-3").job
    sqs = boto3.client("sqs", endpoint_url=config.aws_endpoint_url, region_name="us-east-1")
    _dead_letter(sqs, config, job.job_id, job.correlation_id)

    out = health.handler({"id": "evt-dl", "detail-type": "Scheduled Event"}, context(60_000))

    assert out["dead_lettered_jobs"] == [job.job_id]
    assert manager.get(job.job_id).status == "failed"
