"""The job indexes under a burst: every status change's index writes, counted per partition
key as DynamoDB makes them, spread over the shards instead of one key per status or owner."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from atlas_codex.ground.table_specs import INDEX_SHARDS, JOBS_BY_OWNER, JOBS_BY_STATUS, shard_keys
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest, JobResult
from atlas_codex.jobs.store.table import DynamoJobTable
from bench.aws_use import Meter, Tally

BURST = 240


def test_a_burst_of_status_changes_spreads_its_index_writes_over_every_shard(
    manager: JobManager,
) -> None:
    meter = Meter()
    assert isinstance(manager.table, DynamoJobTable)
    meter.attach(manager.table.db)
    tallies: dict[str, Tally] = {}
    request = CreateJobRequest(urls=["https://shop.example/item"])
    with meter.measuring(tallies):
        jobs = [
            manager.create(owner_id="one-big-client", request=request, correlation_id=f"c{i}").job
            for i in range(BURST)
        ]
        for job in jobs:
            manager.claim(job.job_id, deadline_at=utcnow() + timedelta(minutes=5))
        for job in jobs:
            manager.complete(job.job_id, JobResult(data={"ok": True}))
    writes: Counter[str] = tallies["worker"].index_writes

    def per_key(index: str, value: str) -> list[int]:
        return [writes[f"{index}:{key}"] for key in shard_keys(value)]

    # pending: a put at create and a delete at claim, per job; processing likewise
    for status in ("pending", "processing"):
        counts = per_key(JOBS_BY_STATUS.name, status)
        assert sum(counts) == 2 * BURST
        assert min(counts) > 0, counts  # every shard takes its share
        # unsharded, one key took all 2 x BURST; now the hottest takes about 1/INDEX_SHARDS
        assert max(counts) < 2 * (2 * BURST / INDEX_SHARDS), counts
        assert max(counts) < sum(counts) / 4, counts
    completed = per_key(JOBS_BY_STATUS.name, "completed")
    assert sum(completed) == BURST
    assert max(completed) < 2 * BURST / INDEX_SHARDS
    # one client's jobs: a put at create and one write per status change it projects
    owner = per_key(JOBS_BY_OWNER.name, "one-big-client")
    assert sum(owner) == 3 * BURST
    assert max(owner) < 2 * (3 * BURST / INDEX_SHARDS), owner
    assert max(owner) < sum(owner) / 4, owner
    # and nothing but the keys of the shards was written
    assert sum(writes.values()) == 2 * 2 * BURST + BURST + 3 * BURST


def test_listings_read_every_shard_in_order_across_pages(manager: JobManager) -> None:
    request = CreateJobRequest(urls=["https://shop.example/item"])
    made = [
        manager.create(owner_id="lister", request=request, correlation_id=f"c{i}").job
        for i in range(23)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        page = manager.list_for_owner("lister", limit=5, cursor=cursor)
        seen += [j.job_id for j in page.jobs]
        cursor = page.next_cursor
        if cursor is None:
            break
    newest_first = sorted(made, key=lambda j: (j.created_at, j.job_id), reverse=True)
    assert seen == [j.job_id for j in newest_first]
    by_status: list[str] = []
    cursor = None
    while True:
        status_page = manager.list_by_status("pending", limit=4, cursor=cursor)
        by_status += [j.job_id for j in status_page.jobs if j.owner_id == "lister"]
        cursor = status_page.next_cursor
        if cursor is None:
            break
    oldest_first = sorted(made, key=lambda j: (j.updated_at, j.job_id))
    assert by_status == [j.job_id for j in oldest_first]
