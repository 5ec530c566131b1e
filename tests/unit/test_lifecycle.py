"""The job lifecycle's rules, on the job service itself with the job table, result store and
queue in memory (the same protocols the DynamoDB, S3 and SQS ones satisfy): each test runs
in milliseconds. tests/integration/test_table_contract.py runs these same rules on the
DynamoDB job table in the emulator, so the memory table cannot drift from the real one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from atlas_codex.extraction.contract import ExtractionTask, Quote, QuotedPages
from atlas_codex.extraction.pages import PagesUnavailable
from atlas_codex.extraction.request import JobRequest
from atlas_codex.extraction.result import ExtractionResult, PageResult
from atlas_codex.jobs.errors import NotReextractable
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.messages import JobMessage
from atlas_codex.jobs.queue import MemoryJobQueue
from atlas_codex.jobs.record import CreateJobRequest, Job, ReextractRequest
from atlas_codex.jobs.service import JobService, RetryLater
from atlas_codex.jobs.store.result_store import MemoryResultStore
from atlas_codex.jobs.store.table import JobTable, MemoryJobTable
from tests.fakes import ScriptedExtractor

MAX_RECEIVES = 3
SHOP = "https://shop.example"


def new_table() -> JobTable:
    """The job table every world starts with: the memory one here; the contract test
    (tests/integration/test_table_contract.py) runs the same rules on DynamoDB's."""
    return MemoryJobTable()


@dataclass
class World:
    """A job service over memory, and the means to play the queue's part."""

    extractor: Any = field(default_factory=ScriptedExtractor)
    inline_max: int = 350_000
    queue: MemoryJobQueue = field(default_factory=MemoryJobQueue)
    results: MemoryResultStore = field(default_factory=MemoryResultStore)
    notified: list[Job] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.manager = JobManager(
            table=new_table(),
            results=self.results,
            ttl_days=30,
            inline_result_max_bytes=self.inline_max,
        )
        self.service = JobService(
            manager=self.manager,
            queue=self.queue,
            extractor=lambda: self.extractor,
            max_receives=MAX_RECEIVES,
            notify=self.notified.append,
        )

    def submit(self, *paths: str, **body: Any) -> Job:
        request = CreateJobRequest.model_validate({"urls": [SHOP + p for p in paths], **body})
        return self.service.submit(
            owner_id="owner-a", request=request, correlation_id="corr-1", idempotency_key=None
        ).job

    def deliver(self, message: JobMessage, receive_count: int = 1) -> Job | None:
        return self.service.process(
            message, receive_count=receive_count, deadline=time.monotonic() + 30
        )

    def drain(self) -> list[str]:
        """Deliver every message as SQS would, a message released for retry coming back
        with its receive count one higher, until the queue is empty; what each did."""
        seen: list[str] = []
        pending = [(m, 1) for m in self.queue.take()]
        while pending:
            message, count = pending.pop(0)
            try:
                job = self.deliver(message, count)
                seen.append(job.status if job is not None else "nothing")
            except RetryLater:
                seen.append("released")
                pending.append((message, count + 1))
            pending.extend((m, 1) for m in self.queue.take())
        return seen

    def job(self, job_id: str) -> Job:
        return self.manager.get(job_id)


def test_a_job_is_queued_claimed_and_completed_and_each_change_is_told() -> None:
    world = World()
    job = world.submit("/ok/1")
    assert job.status == "pending"
    assert world.drain() == ["completed"]
    done = world.job(job.job_id)
    assert [c.status for c in done.timeline] == ["pending", "processing", "completed"]
    assert done.result is not None
    assert done.result.data == {"url": f"{SHOP}/ok/1"}
    assert [j.status for j in world.notified] == ["processing", "completed"]


def test_a_transient_failure_releases_the_claim_and_the_redelivery_completes() -> None:
    world = World()
    job = world.submit("/flaky-1")
    assert world.drain() == ["released", "completed"]
    statuses = [c.status for c in world.job(job.job_id).timeline]
    assert statuses == ["pending", "processing", "pending", "processing", "completed"]
    assert "upstream_unavailable" in (world.job(job.job_id).timeline[2].reason or "")


def test_retries_stop_at_the_last_receive_and_the_job_says_why() -> None:
    world = World()
    job = world.submit("/transient")
    assert world.drain() == ["released"] * (MAX_RECEIVES - 1) + ["failed"]
    failed = world.job(job.job_id)
    assert failed.error is not None
    assert failed.error.code == "retries_exhausted"
    assert f"after {MAX_RECEIVES} attempts" in failed.error.message
    assert "upstream_unavailable" in failed.error.message


def test_a_permanent_failure_fails_at_once_with_its_cause() -> None:
    world = World()
    job = world.submit("/permanent")
    assert world.drain() == ["failed"]
    error = world.job(job.job_id).error
    assert error is not None
    assert (error.code, error.retryable) == ("fetch_failed", False)


def test_a_crash_is_retried_then_failed_as_internal() -> None:
    world = World()
    job = world.submit("/crash")
    assert world.drain() == ["released"] * (MAX_RECEIVES - 1) + ["failed"]
    error = world.job(job.job_id).error
    assert error is not None
    assert error.code == "internal_error"


def test_a_duplicate_delivery_loses_the_claim_and_the_job_runs_once() -> None:
    world = World()
    world.submit("/ok/1")
    [message] = world.queue.take()
    assert world.deliver(message) is not None
    assert world.deliver(message) is None
    assert world.extractor.calls == 1


def test_a_batch_fans_out_counts_each_child_once_and_the_last_closes_it() -> None:
    world = World()
    batch = world.submit("/ok/1", "/permanent", "/ok/2", type="batch")
    assert world.drain() == ["processing", "completed", "failed", "completed"]
    parent = world.job(batch.job_id)
    assert parent.status == "completed"
    assert parent.children is not None
    assert (parent.children.completed, parent.children.failed) == (2, 1)
    assert parent.quality == "partial"
    assert any("/permanent" in r for r in parent.quality_reasons)
    # A child's message delivered again counts nothing twice and reopens nothing.
    child = world.job(f"{batch.job_id}.0001")
    world.deliver(JobMessage(job_id=child.job_id, correlation_id=child.correlation_id))
    again = world.job(batch.job_id)
    assert again.children == parent.children
    assert again.version == parent.version


def test_a_batch_of_failures_fails() -> None:
    world = World()
    batch = world.submit("/permanent", "/permanent/2", type="batch")
    world.drain()
    failed = world.job(batch.job_id)
    assert failed.error is not None
    assert failed.error.code == "batch_failed"


class CancelledMeanwhile(ScriptedExtractor):
    """The client cancels the job while its extraction runs; the extraction still ends."""

    def __init__(self, cancel: Callable[[str], object]) -> None:
        super().__init__()
        self.cancel = cancel

    def extract(self, request: JobRequest, task: ExtractionTask) -> ExtractionResult:
        assert task.job_id is not None
        self.cancel(task.job_id)
        return super().extract(request, task)


def test_a_result_that_arrives_after_a_cancel_is_refused_and_the_job_stays_cancelled() -> None:
    world = World(inline_max=100)  # the result would go to the store: it must not stay there
    world.extractor = CancelledMeanwhile(
        lambda job_id: world.service.cancel(owner_id="owner-a", job_id=job_id)
    )
    job = world.submit("/ok/1")
    assert world.drain() == ["cancelled"]
    cancelled = world.job(job.job_id)
    assert [c.status for c in cancelled.timeline] == ["pending", "processing", "cancelled"]
    assert cancelled.result is None
    assert cancelled.result_location is None
    assert world.results.bodies == {}


class OutOfTime(ScriptedExtractor):
    """A crawl that read one page and ran out of time with two left."""

    def extract(self, request: JobRequest, task: ExtractionTask) -> ExtractionResult:
        if request.crawl is None:
            return super().extract(request, task)
        first = request.urls[0]
        return ExtractionResult(
            data=[{"url": first}],
            pages=[PageResult(url=first, status="ok", http_status=200)],
            strategy="navigation(direct-css)",
            quality="partial",
            quality_reasons=["the crawl's time ran out"],
            frontier=[f"{SHOP}/ok/2", f"{SHOP}/ok/3"],
        )


def test_a_crawl_out_of_time_hands_its_frontier_on_as_one_batch_linked_both_ways() -> None:
    world = World(extractor=OutOfTime())
    crawl = world.submit("/ok/1", crawl={"max_pages": 3}, max_cost_usd=1.0)
    world.drain()
    done = world.job(crawl.job_id)
    assert done.status == "completed"
    assert done.continued_in is not None
    batch = world.job(done.continued_in)
    assert batch.continues == crawl.job_id
    assert batch.type == "batch"
    assert batch.request.urls == [f"{SHOP}/ok/2", f"{SHOP}/ok/3"]
    assert batch.status == "completed"
    assert batch.request.max_cost_usd == pytest.approx(1.0)  # nothing was spent yet


def test_a_result_too_large_for_the_record_is_kept_in_the_store_and_read_back() -> None:
    world = World(inline_max=10)
    job = world.submit("/ok/1")
    world.drain()
    done = world.job(job.job_id)
    assert done.result is None
    assert done.result_location is not None
    assert set(world.results.bodies) == {done.result_location}
    result = world.manager.result_of(done)
    assert result is not None
    assert result.data == {"url": f"{SHOP}/ok/1"}
    assert world.service.result_url(done, expires_in=60) is not None


def test_re_extraction_is_refused_for_a_batch_an_unfinished_job_and_pages_never_kept() -> None:
    world = World()
    asked = ReextractRequest.model_validate({"instruction": "the price"})

    def reextract(job: Job) -> object:
        return world.service.reextract(
            owner_id="owner-a",
            job_id=job.job_id,
            asked=asked,
            correlation_id="corr-2",
            idempotency_key=None,
        )

    pending = world.submit("/ok/1")
    with pytest.raises(NotReextractable, match="pending"):
        reextract(pending)
    batch = world.submit("/ok/2", "/ok/3", type="batch")
    world.drain()
    with pytest.raises(NotReextractable, match="batch"):
        reextract(batch)
    with pytest.raises(PagesUnavailable):  # this service keeps no pages
        reextract(world.job(pending.job_id))


def test_a_sync_job_runs_inline_and_past_its_deadline_goes_on_through_the_queue() -> None:
    world = World()
    request = CreateJobRequest.model_validate({"urls": [f"{SHOP}/ok/1"], "type": "sync"})
    now = world.service.extract_now(
        owner_id="owner-a",
        request=request,
        correlation_id="corr-1",
        idempotency_key=None,
        deadline=time.monotonic() + 5,
    )
    assert (now.finished, now.job.status) == (True, "completed")
    assert world.queue.take() == []

    slow = CreateJobRequest.model_validate({"urls": [f"{SHOP}/slow-1"], "type": "sync"})
    later = world.service.extract_now(
        owner_id="owner-a",
        request=slow,
        correlation_id="corr-1",
        idempotency_key=None,
        deadline=time.monotonic() + 0.05,
    )
    assert (later.finished, later.job.status) == (False, "pending")
    assert [m.job_id for m in world.queue.take()] == [later.job.job_id]


def test_listings_page_through_an_owners_jobs_newest_first() -> None:
    world = World()
    made = [world.submit(f"/ok/{n}") for n in range(5)]
    first = world.service.list(owner_id="owner-a", status=None, job_type=None, limit=2, cursor=None)
    assert first.next_cursor is not None
    rest = world.service.list(
        owner_id="owner-a", status=None, job_type=None, limit=10, cursor=first.next_cursor
    )
    listed = [j.job_id for j in [*first.jobs, *rest.jobs]]
    assert listed == [j.job_id for j in sorted(made, key=lambda j: j.created_at, reverse=True)]
    assert rest.next_cursor is None


def test_a_quote_calls_no_model_and_creates_no_job() -> None:
    world = World()
    request = CreateJobRequest.model_validate({"urls": [f"{SHOP}/ok/1"]})
    quote = world.service.quote(request=request, deadline=time.monotonic() + 5)
    assert isinstance(quote, Quote)
    assert quote.pages == QuotedPages(expected=1, fetched=0)
    assert (
        world.service.list(
            owner_id="owner-a", status=None, job_type=None, limit=10, cursor=None
        ).jobs
        == []
    )
