"""The stuck-job sweeper: a job still processing past its deadline (its worker died, or
its invocation was cut off) becomes ``timeout`` with one conditional write, found through
the by-status index. The write re-checks the status and the deadline, so a job that
finished meanwhile is left alone, and a late result after the sweep is refused (completion
is conditional on ``processing``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from atlas_codex.jobs.errors import TransitionRefused
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.schema import Job, utcnow

MAX_PER_SWEEP: Final = 1000


@dataclass
class SweepReport:
    checked: int = 0
    timed_out: list[str] = field(default_factory=list)
    already_done: int = 0


def sweep(
    manager: JobManager,
    *,
    now: datetime | None = None,
    notify: Callable[[Job], None] = lambda job: None,
    limit: int = MAX_PER_SWEEP,
    dry_run: bool = False,
) -> SweepReport:
    """Time out overdue jobs; with ``dry_run``, only list the ones it would time out."""
    now = now or utcnow()
    report = SweepReport()
    cursor = None
    while report.checked < limit:
        # updated_at of a processing job is its claim time, never after its deadline.
        page = manager.list_by_status("processing", updated_before=now, cursor=cursor)
        for job in page.jobs:
            report.checked += 1
            if job.deadline_at is None or job.deadline_at >= now:
                continue
            if dry_run:
                report.timed_out.append(job.job_id)
                continue
            try:
                timed_out = manager.time_out(
                    job.job_id, reason="still processing past its deadline (swept)", overdue_at=now
                )
            except TransitionRefused:
                report.already_done += 1
                continue
            report.timed_out.append(timed_out.job_id)
            if timed_out.parent_id is not None:
                manager.record_child(timed_out)
            notify(timed_out)
        cursor = page.next_cursor
        if cursor is None:
            break
    return report
