"""The by-status index as the health monitor and the ops CLI read it."""

from __future__ import annotations

from datetime import timedelta

from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest
from atlas_codex.jobs.store.status_index import StatusIndex
from atlas_codex.jobs.store.table import DynamoJobTable


def test_every_match_is_found_across_pages_and_the_oldest_change_is_the_first(
    manager: JobManager,
) -> None:
    request = CreateJobRequest(urls=["https://shop.example/a"])
    made = [
        manager.create(owner_id="owner-a", request=request, correlation_id=f"c-{i}").job
        for i in range(5)
    ]
    assert isinstance(manager.table, DynamoJobTable)
    index = StatusIndex(dynamodb=manager.table.db, table_name=manager.table.name)
    first = index.page("pending", limit=2)
    assert len(first.items) == 2
    assert first.next_start is not None  # more to read
    later = utcnow() + timedelta(seconds=1)
    assert sum(1 for _ in index.all_before("pending", later)) == 5
    assert sum(1 for _ in index.all_before("pending", made[0].created_at)) == 0
    assert index.oldest_change("pending") == min(j.updated_at for j in made)
    assert index.oldest_change("processing") is None
    newest = index.page("pending", newest_first=True, limit=1).items[0]["job_id"]["S"]
    assert newest == max(made, key=lambda j: j.updated_at).job_id
