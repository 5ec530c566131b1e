"""The scheduled health handler and GET /health: the report a responder reads."""

from __future__ import annotations

import json
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest

from atlas_codex.ground import metrics
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest
from atlas_codex_local.apigw import context
from tests.support.api_calls import call


@pytest.fixture
def health(config: RuntimeConfig) -> ModuleType:
    from atlas_codex.handlers import health as module

    return module


@pytest.fixture
def api(config: RuntimeConfig) -> ModuleType:
    from atlas_codex.handlers import api as module

    return module


def _emf(output: str) -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and '"_aws"' in line
    ]


def test_a_scheduled_run_stores_the_report_sweeps_stuck_jobs_and_publishes_metrics(
    health: ModuleType, manager: JobManager, capsys: pytest.CaptureFixture[str]
) -> None:
    request = CreateJobRequest.model_validate({"urls": ["https://example.com/"]})
    job_id = manager.create(owner_id="o-1", request=request, correlation_id="c-1").job.job_id
    manager.claim(job_id, deadline_at=utcnow() - timedelta(seconds=5))

    out = health.handler({"id": "evt-1", "detail-type": "Scheduled Event"}, context(60_000))

    assert out["timed_out_jobs"] == [job_id]
    assert manager.get(job_id).status == "timeout"
    assert out["status"] in ("ok", "degraded")  # the stuck job degrades resources this run
    stored = health.monitor.latest()
    assert stored is not None
    assert len(stored.checks) == 8
    documents = _emf(capsys.readouterr().out)
    names = {
        m["Name"]
        for doc in documents
        for directive in doc["_aws"]["CloudWatchMetrics"]
        for m in directive["Metrics"]
    }
    assert {metrics.HEALTH_CHECKS_FAILED, metrics.BUDGET_SPENT_PERCENT} <= names
    summary = next(d for d in documents if metrics.HEALTH_CHECKS_FAILED in d)
    assert summary["_aws"]["CloudWatchMetrics"][0]["Namespace"] == metrics.NAMESPACE
    # Exactly the dimensions the alarm watches.
    assert set(summary["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]) == {"service", "stage"}
    assert summary["service"] == "atlas-codex-health"
    assert summary["stage"] == "local"


def test_health_is_a_cheap_public_summary_and_the_detail_needs_a_key(
    health: ModuleType, api: ModuleType
) -> None:
    status, data, _ = call(api, "GET", "/health")
    assert status == 200
    assert data["checked_at"] is None
    status, data, _ = call(api, "GET", "/health", query="detail=true")
    assert status == 401
    assert data["error"]["field"] == "x-api-key"

    key = api.keys.issue("owner-a").key
    status, data, _ = call(api, "GET", "/health", query="detail=true", key=key)
    assert status == 404
    assert data["error"]["code"] == "no_health_report"

    health.handler({"id": "evt-2"}, context(60_000))
    status, summary, _ = call(api, "GET", "/health")
    assert status == 200
    assert summary["checked_at"] is not None
    assert set(summary) == {"status", "stage", "models", "checked_at", "data"}
    status, report, _ = call(api, "GET", "/health", query="detail=true", key=key)
    assert status == 200
    assert {c["name"] for c in report["checks"]} >= {"dynamodb", "pipeline", "budget"}
    assert report["status"] == summary["status"]


def test_a_scheduled_run_closes_a_batch_whose_last_child_was_stuck_and_requeues_lost_jobs(
    health: ModuleType, manager: JobManager, config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep ends the stuck child, and the batch it was the last of closes: the children's
    results are read (from the bucket when large) and the batch's result written there."""
    from atlas_codex.jobs.record import JobResult

    monkeypatch.setattr(health.service.manager, "inline_max", 200)
    urls = ["https://example.com/a", "https://example.com/b"]
    batch = CreateJobRequest.model_validate({"urls": urls, "type": "batch"})
    parent = manager.create(owner_id="o-1", request=batch, correlation_id="c-2").job
    far = utcnow() + config.message_lost_after + timedelta(hours=2)
    parent = manager.claim(parent.job_id, deadline_at=far)
    done, stuck = manager.batches.create_children(parent)
    large = JobResult(data={"text": "x" * 1000})
    manager.claim(done.job_id, deadline_at=far)
    monkeypatch.setattr(manager, "inline_max", 200)
    manager.batches.record_child(manager.complete(done.job_id, large))
    manager.claim(stuck.job_id, deadline_at=utcnow() - timedelta(seconds=5))
    lost = manager.create(
        owner_id="o-1",
        request=CreateJobRequest.model_validate({"urls": ["https://example.com/c"]}),
        correlation_id="c-3",
    ).job
    hooked = CreateJobRequest.model_validate(
        {"urls": ["https://example.com/d"], "type": "webhook", "webhook_url": "https://h.example/"}
    )
    overdue = manager.create(owner_id="o-1", request=hooked, correlation_id="c-4").job
    manager.claim(overdue.job_id, deadline_at=utcnow() - timedelta(seconds=5))
    later = utcnow() + config.message_lost_after + timedelta(seconds=1)
    monkeypatch.setattr(health.service, "clock", lambda: later)
    real_sweep = health.service.sweep
    monkeypatch.setattr(health.service, "sweep", lambda: real_sweep(now=later))

    out = health.handler({"id": "evt-2", "detail-type": "Scheduled Event"}, context(60_000))

    assert {stuck.job_id, overdue.job_id} <= set(out["timed_out_jobs"])
    sent = health.service.queue.sqs.receive_message(QueueUrl=config.webhooks_queue_url)
    assert json.loads(sent["Messages"][0]["Body"])["job_id"] == overdue.job_id  # told
    assert out["requeued_jobs"] == [lost.job_id]
    closed = manager.get(parent.job_id)
    assert closed.status == "completed"
    assert closed.result_location is not None  # written to the bucket
    result = manager.result_of(closed)
    assert result is not None
    assert [p.status for p in result.pages] == ["ok", "failed"]
