"""Reliability proofs against the moto server, each with its numbers in its output.

* load: 1,000 jobs submitted concurrently over HTTP, two worker pollers, a tenth of the
  messages delivered twice: every job ends in exactly one terminal state, none runs twice;
* faults: the model transport fails at random for 30% of calls (429, 500, timeouts, malformed
  output) and a worker dies mid-job: every job still reaches a terminal state.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import httpx2
import pytest

from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES
from atlas_codex_local.http_adapter import ApiServer, fresh_handler
from atlas_codex_local.poller import SqsPoller
from tests.fakes import ScriptedExtractor
from tests.support.functions import ApiFunction, WorkerFunction, api_with, worker_with
from tests.support.memory_site import MemorySite
from tests.support.model_server import Answer, ModelServer, error, extracted
from tests.support.pollers import pollers, run_pollers, unfinished

LOAD_JOBS = int(os.environ.get("ATLAS_LOAD_JOBS", "200"))
"""200 in the test suite (the emulator handles ~5 jobs/s end to end); `make bench` runs 1,000."""
CLIENTS = 16
DUPLICATE_SHARE = 0.1


@pytest.fixture
def service(config: RuntimeConfig) -> tuple[ApiFunction, WorkerFunction]:
    extractor = ScriptedExtractor()
    return api_with(config, extractor), worker_with(config, extractor)


def queued(worker: WorkerFunction, url: str) -> int:
    attrs = worker.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def run_until_done(worker: WorkerFunction, workers: list[SqsPoller], seconds: float) -> None:
    """Until every job is terminal and every message (duplicates too) was consumed."""
    run_pollers(
        workers,
        lambda: not unfinished(worker) and not queued(worker, workers[0].url),
        seconds,
        check_every_s=2,
        worker=worker,
    )


def load_proof(api: ApiFunction, worker: WorkerFunction, config: RuntimeConfig) -> dict[str, Any]:
    """The load scenario (also run by `make bench`); returns its figures."""
    key = api.keys.issue("load-owner").key
    server = ApiServer(
        api.handler, port=0, environments=lambda: fresh_handler("atlas_codex.handlers.api")
    ).start()
    latencies: list[float] = []
    job_ids: list[str] = []
    lock = threading.Lock()
    try:
        client = httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=30)

        def submit(n: int) -> None:
            body = {"urls": [f"https://shop.example/ok/{n}"], "type": "async"}
            started = time.perf_counter()
            response = client.post("/jobs", json=body)
            elapsed = time.perf_counter() - started
            assert response.status_code == 202, response.text
            with lock:
                latencies.append(elapsed)
                job_ids.append(response.json()["job_id"])

        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(submit, range(LOAD_JOBS)))
        submit_s = time.perf_counter() - started
    finally:
        server.close()
    sqs = worker.sqs
    duplicated = random.Random(7).sample(job_ids, int(LOAD_JOBS * DUPLICATE_SHARE))
    for job_id in duplicated:  # at-least-once: these messages arrive twice
        job = worker.service.manager.get(job_id)
        sqs.send_message(
            QueueUrl=config.jobs_queue_url,
            MessageBody=json.dumps({"job_id": job_id, "correlation_id": job.correlation_id}),
        )
    workers = pollers(worker, config, 2)
    started = time.perf_counter()
    run_until_done(worker, workers, seconds=max(300.0, 1.2 * LOAD_JOBS))
    process_s = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "jobs": len(set(job_ids)),
        "duplicates": len(duplicated),
        "received": sum(p.stats.received for p in workers),
        "submit_jobs_per_s": LOAD_JOBS / submit_s,
        "end_to_end_jobs_per_s": LOAD_JOBS / (submit_s + process_s),
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "job_ids": job_ids,
    }


def test_concurrent_jobs_over_http_each_end_exactly_once(
    service: tuple[ApiFunction, WorkerFunction],
    config: RuntimeConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, worker = service
    figures = load_proof(api, worker, config)
    assert figures["jobs"] == LOAD_JOBS  # no submission lost or merged
    assert figures["received"] >= LOAD_JOBS + figures["duplicates"]
    for job_id in figures["job_ids"]:
        job = worker.service.manager.get(job_id)
        assert job.status == "completed"
        assert len([c for c in job.timeline if c.status in TERMINAL_STATUSES]) == 1
    assert worker.extractor.calls == LOAD_JOBS  # no job ran twice
    with capsys.disabled():
        print(
            f"\nload: {LOAD_JOBS} jobs, {figures['duplicates']} duplicate deliveries, 2 pollers: "
            f"{figures['submit_jobs_per_s']:.0f} submissions/s, "
            f"{figures['end_to_end_jobs_per_s']:.1f} jobs/s end to end, "
            f"submission p50 {figures['p50_ms']:.0f} ms, p99 {figures['p99_ms']:.0f} ms"
        )


FAULT_JOBS = 60
FAULT_RATE = 0.3


class FlakyModel:
    """A model endpoint's script that fails 30% of calls at random (429, 500, a timeout, a
    cut answer), in the API's real shapes; the rest answer the lamp."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.calls = 0
        self.failures = 0

    def __call__(self, sent: dict[str, Any]) -> Any:
        with self.lock:
            self.calls += 1
            roll = self.random.random()
            fault = (
                self.random.choice(["429", "500", "timeout", "malformed"])
                if roll < FAULT_RATE
                else None
            )
            if fault:
                self.failures += 1
        if fault == "429":
            return error(429, "rate_limit_exceeded", "Rate limit reached", {"retry-after": "0"})
        if fault == "500":
            return error(500, None, "The server had an error")
        if fault == "timeout":
            return httpx2.ReadTimeout("timed out")
        if fault == "malformed":
            return Answer(content='{"name": "Desk lamp", "pri', completion_tokens=20)
        answer = extracted(
            {"name": "Desk lamp", "price": 12.5}, {"name": "Desk lamp", "price": "12.50 EUR"}
        )
        return Answer(content=answer, completion_tokens=20)


def test_with_30_percent_model_faults_and_a_dead_worker_every_job_ends(
    config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from atlas_codex.engine.engine import Engine
    from atlas_codex.jobs.record import CreateJobRequest
    from atlas_codex.jobs.service import TAKEN_UP_REASON
    from atlas_codex.jobs.sweeper import sweep
    from atlas_codex.llm.catalog import seeded_catalog

    model_server = FlakyModel(seed=30)
    page = "<html><body><main><h1>Desk lamp</h1><p>12.50 EUR</p></main></body></html>"
    engine = Engine(
        fetcher=MemorySite(default=page).fetcher(),
        models_available=True,
        models=ModelServer(model_server).strategies(config, catalog=seeded_catalog()),
    )
    worker = worker_with(config, engine)

    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
        "required": ["name", "price"],
    }
    jobs = [
        worker.service.submit(
            owner_id="faults",
            request=CreateJobRequest.model_validate(
                {"urls": [f"http://127.0.0.1/lamp/{n}"], "json_schema": schema}
            ),
            correlation_id=f"fault-{n}",
            idempotency_key=None,
        ).job
        for n in range(FAULT_JOBS)
    ]
    # A worker dies mid-job: it claimed the first job, then vanished without a word; the
    # job's message comes back and its redelivery takes the job up (its try is past its
    # deadline), so the sweep has nothing left to time out.
    dead = jobs[0].job_id
    worker.service.manager.claim(dead, deadline_at=utcnow())
    run_pollers(
        pollers(worker, config, 2),
        lambda: unfinished(worker) == 0,
        240,
        check_every_s=0.5,
        worker=worker,
    )
    report = sweep(worker.service.manager)  # the health monitor's sweep, run now
    assert report.timed_out == []
    assert TAKEN_UP_REASON in [c.reason for c in worker.service.manager.get(dead).timeline]

    outcomes: dict[str, int] = {}
    for job in jobs:
        final = worker.service.manager.get(job.job_id)
        assert final.status in TERMINAL_STATUSES
        if final.status != "completed":
            assert final.error is not None
            assert final.error.message
        # Every billed call is one attempt: the attempts' costs are the job's actual cost.
        billed = sum(a.cost_usd or 0.0 for a in final.attempts)
        assert billed == pytest.approx(final.cost.actual_usd, abs=1e-9), final.job_id
        outcomes[final.status] = outcomes.get(final.status, 0) + 1
    with capsys.disabled():
        print(
            f"\nfaults: {FAULT_JOBS} jobs, {model_server.calls} model calls of which "
            f"{model_server.failures} failed ({model_server.failures / model_server.calls:.0%}); "
            f"outcomes {outcomes}; nothing left in processing"
        )
    assert outcomes.get("completed", 0) >= FAULT_JOBS - 5


SYNC_JOBS = int(os.environ.get("ATLAS_SYNC_JOBS", "40"))
"""Sync jobs in the sync-path proof (`make bench` runs more)."""


class FlakySite:
    """Pages that fail the way sites do: per page, a seeded plan of 0-3 failures (500, 429,
    a read that times out) before it answers; some pages never answer at all."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.plans: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.failures = 0
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        with self.lock:
            self.requests += 1
            plan = self.plans.setdefault(
                path,
                self.random.choices(
                    ["500", "429", "timeout"], k=self.random.choice([0, 1, 2, 3, 9])
                ),
            )
            step = plan.pop(0) if plan else None
            if step is not None:
                self.failures += 1
        if step == "timeout":
            raise httpx.ReadTimeout("too slow", request=request)
        if step is not None:
            return httpx.Response(int(step))
        html = "<html><head><title>Lamp</title></head><body><h1>Desk lamp</h1></body></html>"
        return httpx.Response(200, text=html, headers={"content-type": "text/html"})


def test_sync_jobs_under_site_faults_all_end(
    config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sync path under faults: every /extract that could not finish inline is queued,
    and every job ends (completed, or failed after its retries) within its retries plus one
    sweep; none is left pending or processing."""
    from atlas_codex.engine.engine import Engine
    from atlas_codex.jobs.record import CreateJobRequest

    site = FlakySite(seed=15)
    fetcher = MemorySite(default=site).fetcher()
    engine = Engine(fetcher=fetcher, models_available=False)
    api, worker = api_with(config, engine), worker_with(config, engine)

    def extract(n: int) -> tuple[str, bool]:
        request = CreateJobRequest.model_validate(
            {"urls": [f"http://127.0.0.1/lamp/{n}"], "type": "sync"}
        )
        outcome = api.service.extract_now(
            owner_id="sync-faults",
            request=request,
            correlation_id=f"sync-{n}",
            idempotency_key=None,
            deadline=time.monotonic() + 20,
        )
        return outcome.job.job_id, outcome.finished

    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        answered = list(pool.map(extract, range(SYNC_JOBS)))
    inline = sum(1 for _, finished in answered if finished)
    run_pollers(
        pollers(worker, config, 2),
        lambda: unfinished(worker) == 0,
        seconds=240,
        check_every_s=0.5,
        worker=worker,
    )
    worker.service.sweep()
    assert unfinished(worker) == 0
    outcomes: dict[str, int] = {}
    for job_id, _ in answered:
        final = worker.service.manager.get(job_id)
        assert final.status in ("completed", "failed"), final.status
        if final.status == "failed":
            assert final.error is not None
            assert final.error.code == "retries_exhausted"
        outcomes[final.status] = outcomes.get(final.status, 0) + 1
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\nsync: {SYNC_JOBS} /extract jobs, {site.requests} page requests of which "
            f"{site.failures} failed (500, 429, timeouts); {inline} answered inline, "
            f"{SYNC_JOBS - inline} queued and retried; outcomes {outcomes}; none pending or "
            f"processing after {elapsed:.1f} s"
        )
    assert outcomes.get("completed", 0) >= 1
    assert outcomes.get("failed", 0) >= 1
