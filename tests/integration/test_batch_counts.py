"""A batch counts its children in a small item of its own: a child's count never rewrites the
batch's record (70-115 KB for 1,000 URLs, about 91 write units each), a running batch's
progress is read with it, and a batch made before counts on its record as it did."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.batches import child_job_id
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest, Job, JobResult
from atlas_codex.jobs.store.table import CHILD_COUNTS_SUFFIX, ChildCounter

URLS = 300


def _item_bytes(item: dict[str, Any]) -> int:
    return len(json.dumps(item))


def _batch(manager: JobManager, n: int) -> Job:
    request = CreateJobRequest(type="batch", urls=[f"https://shop.example/p/{i}" for i in range(n)])
    parent = manager.create(owner_id="owner-b", request=request, correlation_id="c-b").job
    manager.claim(parent.job_id, deadline_at=utcnow() + timedelta(minutes=30))
    return parent


def test_counting_a_child_writes_the_small_counter_item_never_the_batch_record(
    manager: JobManager, config: RuntimeConfig, moto_endpoint: str
) -> None:
    db = aws.dynamodb(moto_endpoint)
    parent = _batch(manager, URLS)
    record = db.get_item(TableName=config.jobs_table, Key={"job_id": {"S": parent.job_id}})["Item"]
    writes: list[str] = []

    def seen(params: dict[str, Any], **_: Any) -> None:
        writes.append(params["Key"]["job_id"]["S"])

    db.meta.events.register("before-parameter-build.dynamodb.UpdateItem", seen)
    table = manager.table
    try:
        for index in range(URLS - 1):
            counter: ChildCounter = "completed" if index % 3 else "failed"
            table.count_child(parent.job_id, child_job_id(parent.job_id, index), index, counter)
        again = table.count_child(parent.job_id, child_job_id(parent.job_id, 0), 0, "failed")
    finally:
        db.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", seen)
    assert set(writes) == {parent.job_id + CHILD_COUNTS_SUFFIX}
    assert again is not None
    assert (again.done, again.failed) == (URLS - 1, 100)  # the repeat counted nothing
    # the batch's record was not written; its progress is read with it
    key = {"job_id": {"S": parent.job_id}}
    assert db.get_item(TableName=config.jobs_table, Key=key)["Item"] == record
    running = manager.get(parent.job_id)
    assert running.children is not None
    assert (running.children.completed, running.children.failed) == (199, 100)
    assert manager.list_for_owner("owner-b").jobs[0].children == running.children
    counter_item = db.get_item(
        TableName=config.jobs_table, Key={"job_id": {"S": parent.job_id + CHILD_COUNTS_SUFFIX}}
    )["Item"]
    # a few write units per count (1 KB each; its JSON form overstates DynamoDB's size),
    # against a write unit per KB of the whole record for every child before
    assert _item_bytes(counter_item) < 4_000
    assert _item_bytes(record) > 5 * _item_bytes(counter_item)


def test_a_batch_made_before_counter_items_counts_on_its_record_and_closes(
    manager: JobManager, config: RuntimeConfig, moto_endpoint: str
) -> None:
    db = aws.dynamodb(moto_endpoint)
    parent = _batch(manager, 2)
    db.delete_item(  # as a batch created by the version before
        TableName=config.jobs_table, Key={"job_id": {"S": parent.job_id + CHILD_COUNTS_SUFFIX}}
    )
    children = manager.batches.create_children(parent)
    closed = []
    for child in children:
        manager.claim(child.job_id, deadline_at=utcnow() + timedelta(minutes=5))
        done = manager.complete(child.job_id, JobResult(data={"ok": True}))
        closed.append(manager.batches.record_child(done).closed)
        manager.batches.record_child(done)  # a redelivery counts nothing
    assert closed == [False, True]
    final = manager.get(parent.job_id)
    assert final.status == "completed"
    assert final.children is not None
    assert (final.children.completed, final.children.total) == (2, 2)


def test_migration_passes_counter_items_by(
    manager: JobManager, config: RuntimeConfig, moto_endpoint: str, tmp_path: Any
) -> None:
    from atlas_codex_local.migrate import Migration

    _batch(manager, 3)
    report = Migration(
        dynamodb=aws.dynamodb(moto_endpoint),
        target_table=config.jobs_table,
        sources=[config.jobs_table],
        dry_run=True,
    ).run()
    assert report.unconvertible == []
    assert report.already_canonical == 1  # the batch; its counter item is not a record
