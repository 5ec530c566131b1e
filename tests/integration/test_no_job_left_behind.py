"""No job is left behind: every path that lets go of a job queues it again or ends it, and
the sweeper finds the ones whose queue message was lost. Real engine, real fetcher, pages
served from memory with the failures a site really has (500, 429, a read that times out)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from atlas_codex.engine.engine import Engine
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.messages import JobMessage
from atlas_codex.jobs.record import CreateJobRequest
from atlas_codex.jobs.service import TAKEN_UP_REASON
from atlas_codex.jobs.sweeper import REQUEUE_REASON
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES
from tests.fakes import ScriptedExtractor
from tests.support.api_calls import call
from tests.support.functions import ApiFunction, WorkerFunction, api_with, worker_with
from tests.support.memory_site import MemorySite
from tests.support.pollers import pollers, run_pollers

PAGE = "<html><head><title>Lamp</title></head><body><h1>Desk lamp</h1></body></html>"
FAILURES = ("/status-500", "/status-429", "/read-timeout")


def failing(request: httpx.Request) -> httpx.Response:
    """The failures a site really has, by path; the lamp page elsewhere."""
    path = request.url.path
    if path.startswith("/status-"):
        return httpx.Response(int(path.split("-")[1]), text="no")
    if path.startswith("/read-timeout"):
        time.sleep(0.05)
        raise httpx.ReadTimeout("the page took too long", request=request)
    return httpx.Response(200, text=PAGE, headers={"content-type": "text/html"})


def engine() -> Engine:
    return Engine(fetcher=MemorySite(default=failing).fetcher(), models_available=False)


@pytest.fixture
def handlers(config: RuntimeConfig) -> tuple[ApiFunction, WorkerFunction]:
    real = engine()
    return api_with(config, real), worker_with(config, real)


def queued_ids(api: ApiFunction, config: RuntimeConfig) -> list[str]:
    sqs = api.sqs
    ids: list[str] = []
    while True:
        out = sqs.receive_message(
            QueueUrl=config.jobs_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        )
        if not out.get("Messages"):
            return ids
        for message in out["Messages"]:
            ids.append(json.loads(message["Body"])["job_id"])
            sqs.delete_message(
                QueueUrl=config.jobs_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def all_ended(worker: WorkerFunction, job_ids: list[str]) -> bool:
    return all(worker.service.manager.get(j).status in TERMINAL_STATUSES for j in job_ids)


# ---------------------------------------------------------------------- the sync path


@pytest.mark.parametrize("path", FAILURES)
def test_extract_on_a_failing_page_answers_202_and_queues_the_job(
    handlers: tuple[ApiFunction, WorkerFunction], key: str, config: RuntimeConfig, path: str
) -> None:
    api, _ = handlers
    status, data, _ = call(
        api, "POST", "/extract", key=key, body={"urls": [f"http://127.0.0.1{path}"]}
    )
    assert status == 202, data
    job = data["job"]
    assert job["status"] == "pending"
    assert [c["status"] for c in job["timeline"]] == ["pending", "processing", "pending"]
    assert queued_ids(api, config) == [job["job_id"]], "the released job is on the queue"


def test_extract_of_a_crashing_strategy_queues_the_job(
    config: RuntimeConfig, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = api_with(config, ScriptedExtractor())
    status, data, _ = call(
        api, "POST", "/extract", key=key, body={"urls": ["https://x.example/crash"]}
    )
    assert (status, data["job"]["status"]) == (202, "pending")
    assert queued_ids(api, config) == [data["job"]["job_id"]]


def test_nine_concurrent_sync_jobs_on_a_slow_host_are_all_queued(
    handlers: tuple[ApiFunction, WorkerFunction], config: RuntimeConfig
) -> None:
    api, _ = handlers
    request = CreateJobRequest.model_validate(
        {"urls": ["http://127.0.0.1/read-timeout"], "type": "sync"}
    )

    def one(n: int) -> str:
        outcome = api.service.extract_now(
            owner_id="owner-a",
            request=request,
            correlation_id=f"sync-{n}",
            idempotency_key=None,
            deadline=time.monotonic() + 20,
        )
        assert not outcome.finished
        return str(outcome.job.job_id)

    with ThreadPoolExecutor(9) as pool:
        submitted = list(pool.map(one, range(9)))
    assert sorted(queued_ids(api, config)) == sorted(submitted)


@pytest.mark.parametrize("path", [*FAILURES, "/ok"])
@pytest.mark.parametrize("route", ["/jobs", "/extract"])
def test_every_failure_kind_ends_the_job_on_both_routes(
    handlers: tuple[ApiFunction, WorkerFunction],
    key: str,
    config: RuntimeConfig,
    path: str,
    route: str,
) -> None:
    """Within its retries (and one sweep), each job ends: completed, or failed with why."""
    api, worker = handlers
    status, data, _ = call(api, "POST", route, key=key, body={"urls": [f"http://127.0.0.1{path}"]})
    assert status in (200, 202), data
    job_id = (data.get("job") or data)["job_id"]
    run_pollers(
        pollers(worker, config, 1),
        lambda: all_ended(worker, [job_id]),
        seconds=60,
        check_every_s=0.2,
        worker=worker,
    )
    worker.service.sweep()
    job = worker.service.manager.get(job_id)
    if path == "/ok":
        assert job.status == "completed"
    else:
        assert job.status == "failed"
        assert job.error is not None
        assert job.error.code == "retries_exhausted"
        assert path.split("-")[-1] in job.error.message or "timeout" in job.error.message


# ---------------------------------------------------------------------- the sweeper


def lost_job(api: ApiFunction) -> str:
    """A pending job whose message never reached the queue (the send was lost)."""
    request = CreateJobRequest.model_validate({"urls": ["https://shop.example/ok/lost"]})
    outcome = api.service.manager.create(
        owner_id="owner-a", request=request, correlation_id="lost-1", idempotency_key=None
    )
    return str(outcome.job.job_id)


def test_the_sweeper_requeues_a_pending_job_whose_message_was_lost(
    api: ApiFunction, config: RuntimeConfig
) -> None:
    job_id = lost_job(api)
    assert api.service.sweep().requeued == [], "a fresh pending job is left alone"
    later = utcnow() + config.message_lost_after + timedelta(seconds=1)
    report = api.service.sweep(now=later)
    assert report.requeued == [job_id]
    assert queued_ids(api, config) == [job_id]
    job = api.service.manager.get(job_id)
    assert job.status == "pending"
    assert (job.timeline[-1].reason or "").startswith(REQUEUE_REASON)
    assert api.service.sweep().requeued == [], "re-queued once per lost message"


def test_a_job_whose_message_keeps_being_lost_is_timed_out_with_the_reason(
    api: ApiFunction, config: RuntimeConfig
) -> None:
    job_id = lost_job(api)
    now = utcnow()
    for _ in range(3):
        now += config.message_lost_after + timedelta(seconds=1)
        assert api.service.sweep(now=now).requeued == [job_id]
    now += config.message_lost_after + timedelta(seconds=1)
    report = api.service.sweep(now=now)
    assert report.timed_out == [job_id]
    job = api.service.manager.get(job_id)
    assert job.status == "timeout"
    assert job.error is not None
    assert "re-queues" in job.error.message


def test_health_counts_a_pending_job_with_a_lost_message_as_stuck(
    api: ApiFunction, config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_codex.wiring import build_health_monitor

    lost_job(api)
    monitor = build_health_monitor(config)
    assert monitor._stuck(utcnow()) == 0
    assert monitor._stuck(utcnow() + config.message_lost_after + timedelta(seconds=1)) == 1


def test_a_sweep_and_a_claim_racing_on_one_job_do_not_both_win(
    api: ApiFunction, config: RuntimeConfig
) -> None:
    job_id = lost_job(api)
    later = utcnow() + config.message_lost_after + timedelta(seconds=1)
    api.service.manager.claim(job_id, deadline_at=later + timedelta(minutes=5))
    report = api.service.sweep(now=later)
    assert job_id not in report.requeued
    assert api.service.manager.get(job_id).status == "processing"


# ---------------------------------------------------------------------- cancel cascades


def message(job_id: str) -> JobMessage:
    return JobMessage(job_id=job_id, correlation_id="cascade-test")


def test_cancelling_a_batch_cancels_its_pending_and_running_children(
    config: RuntimeConfig, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_codex.handlers import api

    worker = worker_with(config, ScriptedExtractor())
    urls = [
        "https://shop.example/ok/1",
        "https://shop.example/slow-30",
        "https://shop.example/ok/3",
    ]
    status, data, _ = call(api, "POST", "/jobs", key=key, body={"urls": urls, "type": "batch"})
    assert status == 202
    parent_id = data["job_id"]
    manager = worker.service.manager
    worker.service.process(message(parent_id), receive_count=1, deadline=time.monotonic() + 30)
    child_ids = [
        j.job_id for j in manager.list_by_status("pending").jobs if j.parent_id == parent_id
    ]
    assert len(child_ids) == 3
    running = next(c for c in child_ids if manager.get(c).request.urls[0].endswith("slow-30"))
    finished = next(c for c in child_ids if manager.get(c).request.urls[0].endswith("ok/1"))
    worker.service.process(message(finished), receive_count=1, deadline=time.monotonic() + 30)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault(
            "job",
            worker.service.process(
                message(running), receive_count=1, deadline=time.monotonic() + 60
            ),
        )
    )
    thread.start()
    for _ in range(100):
        if manager.get(running).status == "processing":
            break
        time.sleep(0.05)
    status, data, _ = call(api, "DELETE", f"/jobs/{parent_id}", key=key)
    assert status == 200
    assert data["status"] == "cancelled"
    assert data["children"] == {"total": 3, "completed": 1, "failed": 0, "cancelled": 2}
    thread.join(timeout=20)
    assert not thread.is_alive(), "the running child stopped at its next check"
    assert {manager.get(c).status for c in child_ids} == {"completed", "cancelled"}
    assert manager.get(running).status == "cancelled"


# ---------------------------------------------------------------------- responses fit Lambda


def test_a_large_sync_result_is_delivered_as_a_url(
    config: RuntimeConfig, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_codex.extraction.contract import ExtractionTask
    from atlas_codex.extraction.request import JobRequest
    from atlas_codex.extraction.result import ExtractionResult, PageResult

    class Large(ScriptedExtractor):
        def extract(self, request: JobRequest, task: ExtractionTask) -> ExtractionResult:
            url = request.urls[0]
            if not url.endswith("/big"):
                return super().extract(request, task)
            return ExtractionResult(
                data={"text": "x" * 2_000_000},
                pages=[PageResult(url=url, status="ok", http_status=200)],
                strategy="scripted",
            )

    api = api_with(config, Large())
    status, data, _ = call(
        api, "POST", "/extract", key=key, body={"urls": ["https://x.example/big"]}
    )
    assert status == 200
    assert data["delivery"] == "url"
    assert data["result"] is None
    assert data["url"].startswith("http")
    assert data["expires_in_s"] > 0
    fetched = httpx.get(data["url"]).json()
    assert len(fetched["data"]["text"]) == 2_000_000
    status, small, _ = call(
        api, "POST", "/extract", key=key, body={"urls": ["https://x.example/ok"]}
    )
    assert status == 200
    assert small["delivery"] == "inline"


# ------------------------------------------------- a try the runtime killed mid-job


class Killed(BaseException):
    """What a Lambda timeout or an out-of-memory kill is to the code: nothing it can catch."""


class KilledOnce(ScriptedExtractor):
    def __init__(self) -> None:
        super().__init__()
        self.killed = False

    def extract(self, request: Any, task: Any) -> Any:
        if not self.killed:
            self.killed = True
            raise Killed()
        return super().extract(request, task)


def test_a_message_whose_try_was_killed_runs_again_once_that_try_is_over(
    config: RuntimeConfig,
) -> None:
    """The message's idempotency record left in progress by a killed try expires with the
    try (the invocation's remaining time), not after the hour its completed outcome is kept:
    the redelivery that follows the try's end runs the job instead of being refused."""
    from atlas_codex.ground import aws
    from atlas_codex.jobs.record import CreateJobRequest as Create
    from atlas_codex_local.apigw import context
    from atlas_codex_local.poller import sqs_event

    worker = worker_with(config, KilledOnce())
    job = worker.service.submit(
        owner_id="owner-k",
        request=Create.model_validate({"urls": ["https://shop.example/ok/killed"]}),
        correlation_id="corr-k",
        idempotency_key=None,
    ).job
    sqs = worker.sqs
    [message] = sqs.receive_message(
        QueueUrl=config.jobs_queue_url, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=config.jobs_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    event = sqs_event([message], queue_arn, queue_arn.split(":")[3])
    timeout_ms = 60_000
    started_ms = int(time.time() * 1000)

    with pytest.raises(Killed):
        worker.handler(event, context(timeout_ms, "atlas-codex-worker-local"))

    db = aws.dynamodb(config.aws_endpoint_url)
    items = db.scan(TableName=config.idempotency_table)["Items"]
    [left] = [i for i in items if i["status"]["S"] == "INPROGRESS"]
    in_progress_until_ms = int(left["in_progress_expiration"]["N"])
    kept_until_s = int(left["expiration"]["N"])
    # It ends with the try (the invocation's remaining time), long before the kept outcome.
    assert in_progress_until_ms <= started_ms + timeout_ms + 1_000
    assert kept_until_s * 1000 - in_progress_until_ms > 3_000_000
    # While the try may still be running, a redelivery is returned, not run twice.
    refused = worker.handler(event, context(timeout_ms, "atlas-codex-worker-local"))
    assert refused["batchItemFailures"] == [{"itemIdentifier": message["MessageId"]}]
    assert worker.service.manager.get(job.job_id).status == "processing"
    # Once the try is over (its in-progress time in the past), the redelivery runs the job.
    db.update_item(
        TableName=config.idempotency_table,
        Key={"id": left["id"]},
        UpdateExpression="SET in_progress_expiration = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time() * 1000) - 1)}},
    )
    # The killed try's deadline has passed too by the time its message comes back (the
    # queue's visibility timeout is six times the function's timeout).
    db.update_item(
        TableName=config.jobs_table,
        Key={"job_id": {"S": job.job_id}},
        UpdateExpression="SET deadline_at = :past",
        ExpressionAttributeValues={":past": {"S": "2026-01-01T00:00:00Z"}},
    )
    again = worker.handler(event, context(timeout_ms, "atlas-codex-worker-local"))
    assert again["batchItemFailures"] == []
    done = worker.service.manager.get(job.job_id)
    assert done.status == "completed"
    assert [c.status for c in done.timeline] == [
        "pending",
        "processing",
        "pending",
        "processing",
        "completed",
    ]
    assert done.timeline[2].reason == TAKEN_UP_REASON
