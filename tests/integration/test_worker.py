"""The worker handler fed by an SQS poller from the moto server: retries, DLQ, duplicates."""

from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.record import CreateJobRequest, Job
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES
from atlas_codex_local.poller import SqsPoller
from tests.fakes import ScriptedExtractor
from tests.support.functions import WorkerFunction, worker_with
from tests.support.memory_site import MemorySite
from tests.support.pollers import drain, poller, run_pollers, status, unfinished


@pytest.fixture
def worker(config: RuntimeConfig) -> WorkerFunction:
    return worker_with(config, ScriptedExtractor())


def submit(
    worker: WorkerFunction, *urls: str, job_type: str = "async", owner: str = "owner-a"
) -> Job:
    request = CreateJobRequest.model_validate({"urls": list(urls), "type": job_type})
    job: Job = worker.service.submit(
        owner_id=owner, request=request, correlation_id="corr-w", idempotency_key=None
    ).job
    return job


def test_every_finished_job_is_published_as_a_metric_by_its_outcome(
    worker: WorkerFunction, config: RuntimeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_codex.ground import metrics

    done = submit(worker, "https://shop.example/ok/1")
    failed = submit(worker, "https://shop.example/permanent")
    p = poller(worker, config)
    drain(p, lambda: unfinished(worker) == 0)
    emitted = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if metrics.JOBS_FINISHED in line and line.startswith("{")
    ]
    by_outcome = {e["outcome"]: e for e in emitted}
    assert set(by_outcome) == {"complete", "failed"}
    for record in emitted:
        [spec] = record["_aws"]["CloudWatchMetrics"]
        assert spec["Namespace"] == metrics.NAMESPACE
        assert spec["Dimensions"] == [["stage", "outcome"]]
        assert record["stage"] == config.stage
        assert record[metrics.JOBS_FINISHED] == 1
        assert record[metrics.JOB_MODEL_SPEND_USD] == 0
    assert len(emitted) == 2, (done.job_id, failed.job_id)


def test_a_job_goes_from_the_queue_to_completed_with_its_correlation_id(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    job = submit(worker, "https://shop.example/ok/1")
    p = poller(worker, config)
    drain(p, lambda: status(worker, job.job_id) == "completed")
    done = worker.service.manager.get(job.job_id)
    assert done.result is not None
    assert done.result.data == {"url": "https://shop.example/ok/1"}
    assert done.correlation_id == "corr-w"
    assert [c.status for c in done.timeline] == ["pending", "processing", "completed"]
    assert done.fallback_chain == []
    assert p.stats.succeeded == 1


def test_a_permanent_error_fails_the_job_at_once(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    job = submit(worker, "https://shop.example/permanent")
    p = poller(worker, config)
    drain(p, lambda: status(worker, job.job_id) == "failed")
    failed = worker.service.manager.get(job.job_id)
    assert failed.error is not None
    assert failed.error.code == "fetch_failed"
    assert p.stats.received == 1


def test_a_transient_error_returns_the_message_and_the_retry_succeeds(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    job = submit(worker, "https://shop.example/flaky-1")
    p = poller(worker, config)
    drain(p, lambda: status(worker, job.job_id) == "completed")
    done = worker.service.manager.get(job.job_id)
    assert [c.status for c in done.timeline] == [
        "pending",
        "processing",
        "pending",
        "processing",
        "completed",
    ]
    assert p.stats.failed == 1


def test_retries_stop_at_the_configured_receives_and_the_job_says_why(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    job = submit(worker, "https://shop.example/transient")
    p = poller(worker, config)
    drain(p, lambda: status(worker, job.job_id) == "failed")
    failed = worker.service.manager.get(job.job_id)
    assert failed.error is not None
    assert failed.error.code == "retries_exhausted"
    assert f"after {config.jobs_max_receives} attempts" in failed.error.message
    assert p.stats.received == config.jobs_max_receives


def test_a_poison_message_reaches_the_dlq_after_the_configured_receives(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    sqs = worker.sqs
    sqs.send_message(QueueUrl=config.jobs_queue_url, MessageBody="{not a job message")
    p = poller(worker, config)
    for _ in range(config.jobs_max_receives + 2):
        p.poll_once()
    assert p.stats.received == config.jobs_max_receives
    dead = sqs.receive_message(QueueUrl=config.jobs_dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["{not a job message"]


def test_a_crashing_strategy_is_retried_then_failed_as_internal(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    job = submit(worker, "https://shop.example/crash")
    p = poller(worker, config)
    drain(p, lambda: status(worker, job.job_id) == "failed")
    failed = worker.service.manager.get(job.job_id)
    assert failed.error is not None
    assert failed.error.code == "internal_error"
    assert "bug in a strategy" not in failed.error.message


def test_a_crashing_extractor_counts_every_try_as_a_failed_message(
    worker: WorkerFunction, config: RuntimeConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    """A deploy that breaks extraction raises the worker's failed-messages alarm (RUNBOOK,
    "Function error rate"): every crashed try is a failed message, the retried ones too,
    never a planned return."""
    from atlas_codex.ground import metrics

    job = submit(worker, "https://shop.example/crash")
    p = poller(worker, config)
    drain(p, lambda: status(worker, job.job_id) == "failed")

    batches = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and metrics.MESSAGES_RECEIVED in line
    ]

    def total(name: str) -> int:
        values = [b[name] for b in batches]  # a value, or the values of one record
        return sum(sum(v) if isinstance(v, list) else v for v in values)

    received = total(metrics.MESSAGES_RECEIVED)
    assert received == config.jobs_max_receives
    assert total(metrics.MESSAGES_FAILED) == received  # 100%: far over the alarm's threshold
    assert total(metrics.MESSAGES_RETURNED) == 0


def test_a_job_past_its_deadline_times_out(
    worker: WorkerFunction, config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atlas_codex.handlers import worker as module

    monkeypatch.setattr(module, "SAFETY_MS", 500)
    monkeypatch.setattr(module, "MIN_JOB_MS", 200)
    job = submit(worker, "https://shop.example/slow-10")
    p = poller(worker, config, timeout_ms=1500)
    drain(p, lambda: status(worker, job.job_id) == "timeout")
    timed_out = worker.service.manager.get(job.job_id)
    assert timed_out.error is not None
    assert timed_out.error.code == "timeout"


def test_a_job_cancelled_while_running_stays_cancelled(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    job = submit(worker, "https://shop.example/slow-3")
    p = poller(worker, config)
    runner = threading.Thread(target=p.poll_once)
    runner.start()
    deadline = time.monotonic() + 10
    while status(worker, job.job_id) != "processing":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    worker.service.cancel(owner_id="owner-a", job_id=job.job_id)
    runner.join(timeout=20)
    final = worker.service.manager.get(job.job_id)
    assert final.status == "cancelled"
    assert final.result is None


def test_a_batch_fans_out_and_the_last_child_closes_it(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    urls = [f"https://shop.example/ok/{i}" for i in range(4)] + ["https://shop.example/permanent"]
    parent = submit(worker, *urls, job_type="batch")
    p = poller(worker, config)
    drain(p, lambda: status(worker, parent.job_id) in TERMINAL_STATUSES)
    final = worker.service.manager.get(parent.job_id)
    assert final.status == "completed"
    assert final.children is not None
    assert (final.children.total, final.children.completed, final.children.failed) == (5, 4, 1)
    result = worker.service.manager.result_of(final)
    assert result is not None
    assert [page.status for page in result.pages] == ["ok"] * 4 + ["failed"]
    # Each page keeps what its child recorded: the HTTP status and the strategy that served.
    assert [(page.http_status, page.strategy) for page in result.pages] == [
        (200, "scripted")
    ] * 4 + [(None, None)]
    # A failed child makes the batch partial, never a plain success.
    assert final.quality == "partial"
    assert final.quality_reasons == ["https://shop.example/permanent: failed"]


def test_every_job_ends_once_when_workers_race_over_duplicated_messages(
    worker: WorkerFunction, config: RuntimeConfig
) -> None:
    """200 jobs, every message delivered twice, three workers at once: each job ends in
    exactly one terminal state, none runs twice, none is lost."""
    paths = ["ok", "ok", "ok", "permanent", "flaky-1"]
    jobs = [submit(worker, f"https://shop.example/{paths[i % len(paths)]}/{i}") for i in range(200)]
    sqs = worker.sqs
    for job in jobs:  # the duplicate of every delivery
        sqs.send_message(
            QueueUrl=config.jobs_queue_url,
            MessageBody=json.dumps({"job_id": job.job_id, "correlation_id": job.correlation_id}),
        )
    pollers = [poller(worker, config) for _ in range(3)]

    def drained() -> bool:  # every job ended and every delivery, duplicates too, was handled
        return unfinished(worker) == 0 and sum(p.stats.received for p in pollers) >= 400

    run_pollers(pollers, drained, 120, check_every_s=1, worker=worker)
    finals = [worker.service.manager.get(j.job_id) for j in jobs]
    for job in finals:
        terminal_entries = [c for c in job.timeline if c.status in TERMINAL_STATUSES]
        assert len(terminal_entries) == 1, job.timeline
        expected = "failed" if "/permanent/" in job.request.urls[0] else "completed"
        assert job.status == expected
    extractor = worker.extractor
    flaky = sum(1 for j in jobs if "/flaky-1/" in j.request.urls[0])
    assert extractor.calls == 200 + flaky  # each job ran once, the flaky ones once more
    assert sum(p.stats.received for p in pollers) >= 400


def test_a_crawl_out_of_time_hands_its_frontier_on_as_a_batch(
    worker: WorkerFunction, config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every page links to the next ten: far more than the time allows. The crawl reads what
    it fetched, completes partial, and the pages it had still to read (within its budget)
    go on as a batch through the queue; no page is read twice, the budget holds."""
    import httpx

    from atlas_codex.engine.engine import Engine
    from atlas_codex.jobs.messages import JobMessage

    def linking(request: httpx.Request) -> httpx.Response:
        n = int(request.url.path.strip("/") or 0)
        time.sleep(0.6)  # a slow site
        links = "".join(f"<a href='/{n * 10 + k}'>page {n * 10 + k}</a>" for k in range(1, 11))
        body = f"<html><body><main><h1>Page {n}</h1><p>{links}</p></main></body></html>"
        return httpx.Response(200, text=body, headers={"content-type": "text/html"})

    engine = Engine(fetcher=MemorySite(default=linking).fetcher(), models_available=False)
    worker = worker_with(config, engine)
    request = CreateJobRequest.model_validate(
        {
            "urls": ["http://127.0.0.1/"],
            "selectors": {"fields": {"title": {"selector": "h1"}}},
            "crawl": {"max_pages": 30, "max_depth": 3},
        }
    )
    crawl = worker.service.submit(
        owner_id="owner-a", request=request, correlation_id="corr-crawl", idempotency_key=None
    ).job
    message = JobMessage(job_id=crawl.job_id, correlation_id="corr-crawl")
    done = worker.service.process(message, receive_count=1, deadline=time.monotonic() + 6)
    assert done is not None
    assert done.status == "completed"
    assert done.quality == "partial"
    assert any("handed on" in r for r in done.quality_reasons)
    assert done.continued_in is not None
    batch = worker.service.manager.get(done.continued_in)
    assert batch.type == "batch"
    assert batch.continues == crawl.job_id
    p = poller(worker, config)
    drain(p, lambda: status(worker, batch.job_id) in TERMINAL_STATUSES, seconds=120)
    result = worker.service.manager.result_of(done)
    assert result is not None
    crawled = [page.url for page in result.pages]
    handed = list(worker.service.manager.get(batch.job_id).request.urls)
    assert crawled
    assert handed
    assert not set(crawled) & set(handed)  # nothing read twice
    assert len(crawled) + len(handed) <= 30  # the crawl's page budget holds
    assert worker.service.manager.get(batch.job_id).status == "completed"


def test_the_messages_of_a_batch_run_side_by_side_each_logging_its_own_correlation_id(
    worker: WorkerFunction,
    config: RuntimeConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every job of the batch waits for all the others to have started: run one after the
    other, the first would wait alone and fail; run side by side, all meet and complete."""
    from atlas_codex.extraction.request import JobRequest
    from atlas_codex.extraction.result import ExtractionResult
    from atlas_codex.ground import limits

    size = limits.JOBS_PER_INVOCATION
    meeting = threading.Barrier(size, timeout=10)

    class Meeting:
        models_available = False

        def extract(self, request: JobRequest, task: object) -> ExtractionResult:
            meeting.wait()  # BrokenBarrierError when the others do not run meanwhile
            return ExtractionResult(data={"url": str(request.urls[0])}, strategy="test")

    worker = worker_with(config, Meeting())
    jobs = [
        worker.service.submit(
            owner_id="owner-a",
            request=CreateJobRequest.model_validate({"urls": [f"https://shop.example/m/{n}"]}),
            correlation_id=f"corr-{n}",
            idempotency_key=None,
        ).job
        for n in range(size)
    ]
    from atlas_codex.handlers.worker import logger as worker_logger

    lines = io.StringIO()
    output = worker_logger.registered_handler
    assert isinstance(output, logging.StreamHandler)
    stream = output.setStream(lines)  # the function's log output
    p = SqsPoller(
        sqs=worker.sqs,
        queue_url=config.jobs_queue_url,
        handler=worker.handler,
        function_name="atlas-codex-worker-local",
        timeout_ms=60_000,
        retry_delay_s=0,
        batch_size=size,
    )
    handled = 0
    try:
        for _ in range(20):  # the emulator may hand the messages over in more than one receive
            handled += p.poll_once()
            if handled == size:
                break
    finally:
        output.setStream(stream)
    assert handled == size
    assert [status(worker, j.job_id) for j in jobs] == ["completed"] * size
    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    processed = {
        line["job_id"]: line["correlation_id"]
        for line in logged
        if line.get("message") == "message processed"
    }
    assert processed == {j.job_id: j.correlation_id for j in jobs}


def test_a_site_that_asks_to_wait_gets_the_job_back_when_it_said(config: RuntimeConfig) -> None:
    """A 429 whose Retry-After is longer than a fetch may wait: the job is released and its
    message kept out of sight for that long (not the queue's visibility timeout, and not at
    once), the record saying when it is tried again."""
    import httpx

    from atlas_codex.engine.engine import Engine

    def busy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"retry-after": "120"}, text="slow down")

    site = MemorySite({"/busy": busy})
    worker = worker_with(config, Engine(fetcher=site.fetcher(), models_available=False))
    job = submit(worker, "http://127.0.0.1/busy")
    p = poller(worker, config)

    assert p.poll_once() == 1
    released = worker.service.manager.get(job.job_id)
    assert released.status == "pending"
    assert "tried again in 120 s, as asked" in (released.timeline[-1].reason or "")
    assert p.stats.failed == 1
    # The poller's own short retry did not override the site's wait: nothing to receive.
    assert p.poll_once() == 0
    sqs = worker.sqs
    attributes = sqs.get_queue_attributes(
        QueueUrl=config.jobs_queue_url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "1"
    assert site.fetches.count("/busy") == 1
