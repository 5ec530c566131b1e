"""The atomic job manager against the moto server: one conditional write per status change."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest

from atlas_codex.ground import artifacts, aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.errors import (
    IdempotencyConflict,
    InvalidCursor,
    JobNotFound,
    TransitionRefused,
)
from atlas_codex.jobs.manager import JobManager, Submitted
from atlas_codex.jobs.record import CreateJobRequest, Job, JobCost, JobError, JobResult

REQUEST = CreateJobRequest(urls=["https://shop.example/item/1"])
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


def create(
    manager: JobManager,
    owner: str = "owner-a",
    *,
    request: CreateJobRequest = REQUEST,
    idempotency_key: str | None = None,
) -> Submitted:
    return manager.create(
        owner_id=owner, request=request, correlation_id="corr-1", idempotency_key=idempotency_key
    )


def soon() -> datetime:
    return utcnow() + timedelta(minutes=5)


def test_a_whole_lifecycle_costs_three_writes_and_a_status_read_one_read(
    manager: JobManager, dynamodb_calls: list[str]
) -> None:
    job = create(manager).job
    manager.claim(job.job_id, deadline_at=soon())
    manager.complete(job.job_id, JobResult(data={"price": 10}))
    writes = [c for c in dynamodb_calls if c in WRITES]
    assert writes == ["PutItem", "UpdateItem", "UpdateItem"]
    dynamodb_calls.clear()
    final = manager.get(job.job_id, owner_id="owner-a")
    assert dynamodb_calls == ["GetItem"]
    assert final.status == "completed"
    assert [c.status for c in final.timeline] == ["pending", "processing", "completed"]
    assert final.version == 3
    assert final.result == JobResult(data={"price": 10})


def test_the_same_idempotency_key_never_makes_two_jobs(manager: JobManager) -> None:
    first = create(manager, idempotency_key="order-42")
    retry = create(manager, idempotency_key="order-42")
    assert first.created
    assert not retry.created
    assert retry.job.job_id == first.job.job_id


def test_the_same_key_with_another_body_is_a_conflict(manager: JobManager) -> None:
    first = create(manager, idempotency_key="order-42").job
    other = CreateJobRequest(urls=["https://shop.example/item/2"])
    with pytest.raises(IdempotencyConflict) as caught:
        create(manager, idempotency_key="order-42", request=other)
    assert caught.value.existing.job_id == first.job_id


def test_idempotency_keys_are_per_owner(manager: JobManager) -> None:
    a = create(manager, owner="owner-a", idempotency_key="k").job
    b = create(manager, owner="owner-b", idempotency_key="k").job
    assert a.job_id != b.job_id


def test_concurrent_retries_with_one_key_make_one_job(manager: JobManager) -> None:
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: create(manager, idempotency_key="burst"), range(16)))
    assert len({o.job.job_id for o in outcomes}) == 1
    assert sum(o.created for o in outcomes) == 1


def test_a_duplicate_claim_loses_and_sees_the_current_record(manager: JobManager) -> None:
    job = create(manager).job
    manager.claim(job.job_id, deadline_at=soon())
    with pytest.raises(TransitionRefused) as caught:
        manager.claim(job.job_id, deadline_at=soon())
    assert caught.value.current.status == "processing"
    assert caught.value.current.version == 2


def test_terminal_jobs_refuse_every_change(manager: JobManager) -> None:
    job = create(manager).job
    manager.cancel(job.job_id, owner_id="owner-a")
    changes: list[Callable[[], Job]] = [
        lambda: manager.claim(job.job_id, deadline_at=soon()),
        lambda: manager.complete(job.job_id, JobResult(data=1)),
        lambda: manager.fail(job.job_id, JobError(code="boom", message="x")),
        lambda: manager.cancel(job.job_id, owner_id="owner-a"),
        lambda: manager.time_out(job.job_id, reason="late"),
    ]
    for change in changes:
        with pytest.raises(TransitionRefused) as caught:
            change()
        assert caught.value.current.status == "cancelled"
    assert manager.get(job.job_id).version == 2


def _race(first: Callable[[], Job], second: Callable[[], Job]) -> list[str]:
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(change: Callable[[], Job]) -> None:
        barrier.wait()
        try:
            outcomes.append(change().status)
        except TransitionRefused:
            outcomes.append("refused")

    threads = [threading.Thread(target=run, args=(c,)) for c in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(outcomes)


def test_cancel_racing_completion_ends_in_exactly_one_terminal_state(manager: JobManager) -> None:
    for _ in range(10):
        job_id = create(manager).job.job_id
        manager.claim(job_id, deadline_at=soon())
        outcomes = _race(
            lambda job_id=job_id: manager.complete(job_id, JobResult(data="done")),  # type: ignore[misc]
            lambda job_id=job_id: manager.cancel(job_id, owner_id="owner-a"),  # type: ignore[misc]
        )
        assert outcomes in (["completed", "refused"], ["cancelled", "refused"])
        final = manager.get(job_id)
        assert final.status in ("completed", "cancelled")
        assert final.version == 3


def test_another_owner_can_neither_see_nor_cancel_a_job(manager: JobManager) -> None:
    job = create(manager, owner="owner-a").job
    with pytest.raises(JobNotFound):
        manager.get(job.job_id, owner_id="owner-b")
    with pytest.raises(JobNotFound):
        manager.cancel(job.job_id, owner_id="owner-b")
    assert manager.get(job.job_id).status == "pending"


def test_a_missing_job_is_not_found(manager: JobManager) -> None:
    with pytest.raises(JobNotFound):
        manager.get("job_nope")
    with pytest.raises(JobNotFound):
        manager.claim("job_nope", deadline_at=soon())


def test_a_large_result_goes_to_the_bucket_and_the_job_keeps_the_key(manager: JobManager) -> None:
    job = create(manager).job
    manager.claim(job.job_id, deadline_at=soon())
    big = JobResult(data={"rows": ["x" * 1000] * 400})
    done = manager.complete(job.job_id, big)
    assert done.result is None
    assert done.result_location == artifacts.result_key(job.job_id)
    assert manager.result_of(done) == big
    url = manager.result_url(done)
    assert url is not None
    assert done.result_location in url


def test_a_late_large_result_is_refused_and_not_left_in_the_bucket(
    manager: JobManager, config: RuntimeConfig, moto_endpoint: str
) -> None:
    job = create(manager).job
    manager.claim(job.job_id, deadline_at=soon())
    manager.time_out(job.job_id, reason="deadline passed")
    with pytest.raises(TransitionRefused):
        manager.complete(job.job_id, JobResult(data={"rows": ["x" * 1000] * 400}))
    listed = aws.s3(moto_endpoint).list_objects_v2(
        Bucket=config.artifacts_bucket, Prefix=artifacts.RESULTS_PREFIX
    )
    assert listed.get("KeyCount", 0) == 0


def test_a_released_claim_can_be_claimed_again(manager: JobManager) -> None:
    job = create(manager).job
    manager.claim(job.job_id, deadline_at=soon())
    released = manager.release(job.job_id, reason="upstream 503")
    assert released.status == "pending"
    assert released.deadline_at is None
    again = manager.claim(job.job_id, deadline_at=soon())
    assert [c.status for c in again.timeline] == ["pending", "processing", "pending", "processing"]


def test_listing_is_newest_first_paginated_and_private(manager: JobManager) -> None:
    mine = [create(manager, owner="owner-a").job.job_id for _ in range(7)]
    create(manager, owner="owner-b")
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = manager.list_for_owner("owner-a", limit=3, cursor=cursor)
        seen += [j.job_id for j in page.jobs]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(mine))
    assert pages == 3


def test_listing_filters_by_status_and_type(manager: JobManager) -> None:
    a = create(manager).job
    create(manager)
    manager.cancel(a.job_id, owner_id="owner-a")
    cancelled = manager.list_for_owner("owner-a", status="cancelled")
    assert [j.job_id for j in cancelled.jobs] == [a.job_id]
    assert manager.list_for_owner("owner-a", job_type="batch").jobs == []


def test_a_cursor_cannot_be_forged_or_reused_by_another_owner(manager: JobManager) -> None:
    for _ in range(3):
        create(manager, owner="owner-a")
    cursor = manager.list_for_owner("owner-a", limit=1).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidCursor):
        manager.list_for_owner("owner-b", cursor=cursor)
    for bad in ("not-base64!!", "e30", "W10"):
        with pytest.raises(InvalidCursor):
            manager.list_for_owner("owner-a", cursor=bad)


def test_jobs_in_a_status_are_listed_through_the_index(manager: JobManager) -> None:
    a = create(manager).job
    b = create(manager).job
    manager.claim(a.job_id, deadline_at=soon())
    processing = manager.list_by_status("processing")
    assert [j.job_id for j in processing.jobs] == [a.job_id]
    assert b.job_id in [j.job_id for j in manager.list_by_status("pending").jobs]
    assert (
        manager.list_by_status("processing", updated_before=utcnow() - timedelta(hours=1)).jobs
        == []
    )


# ---------------------------------------------------------------------- batches


def batch(manager: JobManager, n: int) -> tuple[Job, list[Job]]:
    request = CreateJobRequest(
        type="batch", urls=[f"https://shop.example/item/{i}" for i in range(n)]
    )
    parent = manager.create(owner_id="owner-a", request=request, correlation_id="corr-b").job
    manager.claim(parent.job_id, deadline_at=soon())
    return parent, manager.batches.create_children(parent)


def finish(manager: JobManager, child_id: str, ok: bool) -> Job:
    manager.claim(child_id, deadline_at=soon())
    if ok:
        return manager.complete(child_id, JobResult(data={"id": child_id}))
    return manager.fail(child_id, JobError(code="fetch_failed", message="404"))


def test_a_repeated_fan_out_finds_its_children(manager: JobManager) -> None:
    parent, children = batch(manager, 3)
    again = manager.batches.create_children(parent)
    assert [c.job_id for c in again] == [c.job_id for c in children]
    assert all(c.parent_id == parent.job_id for c in children)
    assert manager.list_for_owner("owner-a").jobs == [manager.get(parent.job_id)]


def test_a_batch_s_cost_ceiling_is_shared_by_its_children_and_their_spend_summed(
    manager: JobManager,
) -> None:
    request = CreateJobRequest(
        type="batch",
        urls=[f"https://shop.example/item/{i}" for i in range(4)],
        max_cost_usd=0.02,
    )
    parent = manager.create(owner_id="owner-a", request=request, correlation_id="corr-b").job
    manager.claim(parent.job_id, deadline_at=soon())
    children = manager.batches.create_children(parent)
    assert [c.request.max_cost_usd for c in children] == [0.005] * 4
    for n, child in enumerate(children):
        manager.claim(child.job_id, deadline_at=soon())
        done = manager.complete(
            child.job_id,
            JobResult(data={"n": n}),
            cost=JobCost(estimated_usd=0.002, actual_usd=0.001),
            quality="partial" if n == 3 else "complete",
            quality_reasons=["every field is null"] if n == 3 else [],
        )
        recorded = manager.batches.record_child(done)
    assert recorded.closed
    closed = manager.get(parent.job_id)
    assert closed.cost == JobCost(estimated_usd=0.008, actual_usd=0.004)
    assert closed.quality == "partial"
    assert closed.quality_reasons == ["https://shop.example/item/3: every field is null"]


def test_the_last_child_closes_the_parent_exactly_once(manager: JobManager) -> None:
    parent, children = batch(manager, 12)

    def run(i: int) -> bool:
        child = finish(manager, children[i].job_id, ok=i % 4 != 0)
        return manager.batches.record_child(child).closed

    with ThreadPoolExecutor(6) as pool:
        closed = list(pool.map(run, range(12)))
    assert sum(closed) == 1
    final = manager.get(parent.job_id)
    assert final.status == "completed"
    assert final.children is not None
    assert (final.children.completed, final.children.failed) == (9, 3)
    result = manager.result_of(final)
    assert result is not None
    assert [p.status for p in result.pages] == ["failed" if i % 4 == 0 else "ok" for i in range(12)]


def test_a_redelivered_child_is_counted_once(manager: JobManager) -> None:
    _, children = batch(manager, 2)
    first = finish(manager, children[0].job_id, ok=True)
    manager.batches.record_child(first)
    again = manager.batches.record_child(first)
    assert not again.closed
    counts = manager.get(first.parent_id or "").children
    assert counts is not None
    assert (counts.completed, counts.done, counts.total) == (1, 1, 2)


def test_a_batch_where_every_child_failed_fails(manager: JobManager) -> None:
    parent, children = batch(manager, 2)
    for child in children:
        manager.batches.record_child(finish(manager, child.job_id, ok=False))
    final = manager.get(parent.job_id)
    assert final.status == "failed"
    assert final.error is not None
    assert final.error.code == "batch_failed"


# ---------------------------------------------------------------------- the sweeper


def test_the_sweeper_times_out_jobs_past_their_deadline_and_late_results_are_refused(
    manager: JobManager,
) -> None:
    from atlas_codex.jobs.sweeper import sweep

    stuck = create(manager).job
    manager.claim(stuck.job_id, deadline_at=utcnow() - timedelta(seconds=1))  # its worker died
    alive = create(manager).job
    manager.claim(alive.job_id, deadline_at=soon())
    report = sweep(manager)
    assert report.timed_out == [stuck.job_id]
    assert manager.get(stuck.job_id).status == "timeout"
    assert manager.get(alive.job_id).status == "processing"
    with pytest.raises(TransitionRefused):
        manager.complete(stuck.job_id, JobResult(data="late"))
    assert sweep(manager).timed_out == []  # running it again is harmless


def test_the_sweeper_leaves_a_job_that_finished_meanwhile(manager: JobManager) -> None:
    job = create(manager).job
    manager.claim(job.job_id, deadline_at=utcnow() - timedelta(seconds=1))
    manager.complete(job.job_id, JobResult(data="just in time"))
    with pytest.raises(TransitionRefused):
        manager.time_out(job.job_id, reason="swept", overdue_at=utcnow())
    assert manager.get(job.job_id).status == "completed"
