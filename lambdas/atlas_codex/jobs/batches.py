"""A batch's children: one per URL, made once (their ids derive from the batch's), each
counted once on the batch when it ends (its id is a key of the batch's outcome map), and
the child whose count reaches the total closes the batch with every child's data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import JsonValue

from atlas_codex.ground import limits
from atlas_codex.jobs.errors import JobNotFound, TransitionRefused
from atlas_codex.jobs.record import (
    ChildCounters,
    CreateJobRequest,
    Job,
    JobCost,
    JobError,
    JobResult,
    PageOutcome,
    Quality,
)
from atlas_codex.jobs.store.table import ChildCounter, JobTable
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES, JobStatus, JobType


class Records(Protocol):
    """What a batch's children need of the job manager that owns them (the manager answers
    it; this module does not import it)."""

    table: JobTable

    def new_job(
        self,
        *,
        job_id: str | None,
        job_type: JobType,
        owner_id: str,
        correlation_id: str,
        request: CreateJobRequest,
        parent_id: str | None = None,
    ) -> Job: ...

    def get(self, job_id: str, *, owner_id: str | None = None) -> Job: ...

    def result_of(self, job: Job) -> JobResult | None: ...

    def transition(
        self,
        job_id: str,
        to: JobStatus,
        *,
        reason: str | None = None,
        fields: Mapping[str, Any] | None = None,
        expected: frozenset[JobStatus] | None = None,
    ) -> Job: ...

    def complete(
        self,
        job_id: str,
        result: JobResult,
        *,
        cost: JobCost | None = None,
        quality: Quality = "complete",
        quality_reasons: Sequence[str] = (),
        children: ChildCounters | None = None,
    ) -> Job: ...


def child_job_id(parent_id: str, index: int) -> str:
    return f"{parent_id}.{index:04d}"


def child_index(child_id: str) -> int:
    """Which of its batch's URLs a child serves (the inverse of :func:`child_job_id`)."""
    return int(child_id.rsplit(".", 1)[1])


@dataclass(frozen=True)
class ChildRecorded:
    parent: Job | None
    """The batch, when this child's count closed it."""
    closed: bool
    """True when this child's outcome was the last one and it closed the parent."""


class Batches:
    def __init__(self, manager: Records) -> None:
        self.manager = manager

    def create_children(self, parent: Job) -> list[Job]:
        """One child per URL, with ids derived from the parent's, so a repeated fan-out
        finds its children instead of making new ones."""
        children = []
        share = parent.request.max_cost_usd
        if share is not None:
            # The batch's ceiling holds for the batch: each child may spend an equal share.
            share = share / len(parent.request.urls)
        for index, url in enumerate(parent.request.urls):
            request = CreateJobRequest.model_validate(
                {
                    **parent.request.model_dump(),
                    "urls": [url],
                    "webhook_url": None,
                    "type": "async",
                    "max_cost_usd": share,
                }
            )
            child = self.manager.new_job(
                job_id=child_job_id(parent.job_id, index),
                job_type="async",
                owner_id=parent.owner_id,
                correlation_id=parent.correlation_id,
                request=request,
                parent_id=parent.job_id,
            )
            existing = self.manager.table.put_new(child)
            children.append(existing or child)
        return children

    def record_child(self, child: Job) -> ChildRecorded:
        """Count a finished child on its parent, once, and close the parent if it was last.

        The count is idempotent (the child's id is a key of the parent's outcome map), so
        a redelivered child re-records harmlessly and no child is ever lost or counted twice.
        """
        if child.parent_id is None or child.status not in TERMINAL_STATUSES:
            raise ValueError("only a finished child of a batch is recorded")
        counter: ChildCounter = (
            "completed"
            if child.status == "completed"
            else "failed"
            if child.status == "failed"
            else "cancelled"
        )
        counts = self.manager.table.count_child(
            child.parent_id, child.job_id, child_index(child.job_id), counter
        )
        if counts is None:
            raise JobNotFound(child.parent_id)
        if counts.done < counts.total:
            return ChildRecorded(parent=None, closed=False)
        parent = self.manager.get(child.parent_id)  # read once per batch, by its last child
        if parent.status in TERMINAL_STATUSES:
            return ChildRecorded(parent=parent, closed=False)
        return ChildRecorded(parent=self._close(parent, counts), closed=True)

    def _close(self, parent: Job, counts: ChildCounters) -> Job:
        ids = [child_job_id(parent.job_id, index) for index in range(counts.total)]
        children = self.manager.table.get_many(ids)
        pages: list[PageOutcome] = []
        data: list[JsonValue] = []
        for child in children:
            result = self.manager.result_of(child) if child.status == "completed" else None
            # The child's own page record: its HTTP status and the strategy that served it.
            read = result.pages[0] if result is not None and result.pages else None
            pages.append(
                PageOutcome(
                    url=child.request.urls[0],
                    status="ok" if child.status == "completed" else "failed",
                    http_status=read.http_status if read is not None else None,
                    strategy=read.strategy if read is not None else None,
                    missing=list(read.missing) if read is not None else [],
                    unverified=list(read.unverified) if read is not None else [],
                    quality_problems=list(read.quality_problems) if read is not None else [],
                    error=child.error
                    or (
                        None
                        if child.status == "completed"
                        else JobError(code=child.status, message=f"child {child.status}")
                    ),
                    data=result.data if result else None,
                )
            )
            data.append(
                {
                    "job_id": child.job_id,
                    "status": child.status,
                    "data": result.data if result else None,
                }
            )
        spent = JobCost(
            estimated_usd=sum(c.cost.estimated_usd for c in children),
            actual_usd=sum(c.cost.actual_usd for c in children),
        )
        if counts.completed == 0:
            error = JobError(
                code="batch_failed", message=f"none of the {counts.total} pages succeeded"
            )
            try:
                return self.manager.transition(
                    parent.job_id,
                    "failed",
                    reason=error.code,
                    fields={
                        "error": error.model_dump(mode="json"),
                        "cost": spent.model_dump(mode="json"),
                        "children": counts.model_dump(mode="json"),
                    },
                    expected=frozenset({"processing"}),
                )
            except TransitionRefused as exc:
                return exc.current
        reasons = [
            f"{child.request.urls[0]}: "
            + ("; ".join(child.quality_reasons) or "partial" if child.quality else child.status)
            for child in children
            if child.status != "completed" or child.quality == "partial"
        ]
        try:
            return self.manager.complete(
                parent.job_id,
                JobResult(data=data, pages=pages),
                cost=spent,
                quality="partial" if reasons else "complete",
                quality_reasons=[r[: limits.MAX_NOTE_CHARS] for r in reasons][: limits.MAX_NOTES],
                children=counts,
            )
        except TransitionRefused as exc:  # cancelled or timed out meanwhile: it stays so
            return exc.current
