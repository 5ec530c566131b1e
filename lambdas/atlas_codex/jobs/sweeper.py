"""The stuck-job sweeper: no job is left behind, each change one conditional write.

* A job still **processing** past its deadline (its worker died, or its invocation was cut
  off) becomes ``timeout``. The write re-checks the status and the deadline, so a job that
  finished meanwhile is left alone, and a late result after the sweep is refused (completion
  is conditional on ``processing``).
* A job still **pending** long after every delivery of its message would have come back
  (``lost_after``: the queue's visibility timeout times its maximum receives) has lost its
  message: a failed send, a released claim whose message was consumed, a crash between
  create and send. It is re-queued, recorded in its timeline by a write conditional on it
  being unchanged since it was read; after ``max_requeues`` such re-queues it is timed out
  with the reason. A duplicate message is harmless: the second delivery loses the claim.

Both are found through the by-status index, least recently changed first.

* A job whose message reached the **dead-letter queue** (every delivery failed: a crash, a
  failure inside the idempotency layer) is ended ``failed`` with ``dead_lettered`` and the
  reason, by a write conditional on it not having ended meanwhile, within one sweep (five
  minutes) instead of waiting for the lost-message re-queue. The messages stay on the DLQ for
  the operators (RUNBOOK): this only reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.errors import JobNotFound, TransitionRefused
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.messages import JobMessage
from atlas_codex.jobs.record import Job, JobError
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES, JobStatus

MAX_PER_SWEEP: Final = 1000
REQUEUE_REASON: Final = "re-queued by the sweeper"
"""The start of the timeline reason a sweeper re-queue leaves (counted against the limit)."""
MAX_REQUEUES: Final = 3
MAX_DEAD_LETTERS_PER_SWEEP: Final = 100
DEAD_LETTERED: Final = "dead_lettered"


@dataclass
class SweepReport:
    checked: int = 0
    timed_out: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    already_done: int = 0
    dead_lettered: list[str] = field(default_factory=list)
    """Jobs ended because their message reached the dead-letter queue."""


def requeues_of(job: Job) -> int:
    """How often the sweeper has re-queued ``job``."""
    return sum(
        1
        for change in job.timeline
        if change.status == "pending" and (change.reason or "").startswith(REQUEUE_REASON)
    )


def overdue(job: Job, now: datetime) -> bool:
    """True for a processing job past its deadline."""
    return job.status == "processing" and job.deadline_at is not None and job.deadline_at < now


def sweep(
    manager: JobManager,
    *,
    now: datetime | None = None,
    notify: Callable[[Job], None] = lambda job: None,
    requeue: Callable[[Job], None] | None = None,
    lost_after: timedelta | None = None,
    max_requeues: int = MAX_REQUEUES,
    limit: int = MAX_PER_SWEEP,
    dry_run: bool = False,
    report: SweepReport | None = None,
) -> SweepReport:
    """Time out overdue jobs and, given ``requeue`` and ``lost_after``, re-queue (or, past
    ``max_requeues``, time out) pending jobs whose message is gone. With ``dry_run``, only
    list what it would do. ``report``: what an earlier step of the same sweep found."""
    now = now or utcnow()
    report = report or SweepReport()
    # updated_at of a processing job is its claim time, never after its deadline.
    for job in _jobs(manager, "processing", now, report, limit):
        if not overdue(job, now):
            continue
        if dry_run:
            report.timed_out.append(job.job_id)
            continue
        _time_out(
            manager,
            report,
            notify,
            job,
            "still processing past its deadline (swept)",
            overdue_at=now,
        )
    if requeue is None or lost_after is None:
        return report
    for job in _jobs(manager, "pending", now - lost_after, report, limit):
        waited = int((now - job.updated_at).total_seconds())
        requeued = requeues_of(job)
        if requeued >= max_requeues:
            if dry_run:
                report.timed_out.append(job.job_id)
                continue
            reason = (
                f"still pending after {requeued} re-queues: its message keeps "
                f"being lost (last change {waited} s ago)"
            )
            _time_out(
                manager,
                report,
                notify,
                job,
                reason,
                expected=frozenset({"pending"}),
                unchanged_since=job.updated_at,
            )
            continue
        if dry_run:
            report.requeued.append(job.job_id)
            continue
        try:
            marked = manager.mark_requeued(
                job, reason=f"{REQUEUE_REASON}: no message for {waited} s"
            )
        except TransitionRefused:
            report.already_done += 1
            continue
        requeue(marked)
        report.requeued.append(marked.job_id)
    return report


def _jobs(
    manager: JobManager, status: JobStatus, before: datetime, report: SweepReport, limit: int
) -> Iterator[Job]:
    cursor = None
    while report.checked < limit:
        page = manager.list_by_status(status, updated_before=before, cursor=cursor)
        for job in page.jobs:
            report.checked += 1
            yield job
        cursor = page.next_cursor
        if cursor is None:
            return


def _time_out(
    manager: JobManager,
    report: SweepReport,
    notify: Callable[[Job], None],
    job: Job,
    reason: str,
    **condition: Any,
) -> None:
    """One conditional write to ``timeout`` (``condition``: what must still hold); a job
    that changed meanwhile is left alone. The one ended is counted on its batch and told."""
    _end(
        manager,
        report,
        notify,
        report.timed_out,
        lambda: manager.time_out(job.job_id, reason=reason, **condition),
    )


def _end(
    manager: JobManager,
    report: SweepReport,
    notify: Callable[[Job], None],
    ended_list: list[str],
    write: Callable[[], Job],
) -> None:
    """One conditional write that ends a job (``write``): a job that changed meanwhile is
    left alone and counted; the one ended is listed, counted on its batch and told."""
    try:
        ended = write()
    except TransitionRefused:
        report.already_done += 1
        return
    ended_list.append(ended.job_id)
    if ended.parent_id is not None:
        manager.batches.record_child(ended)
    notify(ended)


def fail_dead_lettered(
    manager: JobManager,
    letters: list[tuple[JobMessage, int]],
    *,
    report: SweepReport,
    notify: Callable[[Job], None] = lambda job: None,
    dry_run: bool = False,
) -> SweepReport:
    """End ``failed`` every job still waiting on a message that was dead-lettered (message,
    times received); one conditional write each, so a job that ended meanwhile stays so."""
    for message, received in letters:
        try:
            job = manager.get(message.job_id)
        except JobNotFound:
            continue
        report.checked += 1
        if job.status in TERMINAL_STATUSES:
            report.already_done += 1
            continue
        if dry_run:
            report.dead_lettered.append(job.job_id)
            continue
        error = JobError(
            code=DEAD_LETTERED,
            message=(
                f"its message was moved to the dead-letter queue after {received or 'every'} "
                "delivery attempts failed (a crash or an error before the job could record "
                "its own failure); the message is kept there for the operators"
            ),
            retryable=False,
        )
        _end(
            manager,
            report,
            notify,
            report.dead_lettered,
            partial(manager.fail, job.job_id, error),
        )
    return report
