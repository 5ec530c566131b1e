"""Running jobs: a queue message's job in the worker, or a job run now for ``POST /extract``
(:class:`JobService`, on top of the submitting side in :mod:`atlas_codex.jobs.submission`).

Nothing here knows of Lambda events or HTTP. The handlers parse, call one of these, and
shape the answer.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from atlas_codex.extraction.contract import (
    DeadlineExceeded,
    ExtractionError,
    ExtractionTask,
)
from atlas_codex.extraction.result import Cost, ExtractionResult, Failure
from atlas_codex.ground import aws_cost
from atlas_codex.ground.aws_cost import FunctionName
from atlas_codex.jobs import recorded
from atlas_codex.jobs.diff import field_diff
from atlas_codex.jobs.errors import (
    JobNotFound,
    TransitionRefused,
)
from atlas_codex.jobs.messages import JobMessage
from atlas_codex.jobs.record import (
    Attempt,
    CreateJobRequest,
    Job,
    JobCost,
    JobError,
    JobResult,
)
from atlas_codex.jobs.submission import JobSubmission
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES

logger = logging.getLogger(__name__)

BATCH_DEADLINE: Final = timedelta(hours=24)
"""A batch parent waits this long for its children before the sweeper times it out."""
CANCEL_CHECK_INTERVAL_S: Final = 2.0


@dataclass(frozen=True)
class SyncRun:
    job: Job
    finished: bool
    """False when the deadline passed and the job went on asynchronously."""


KEPT_WHEN_EXHAUSTED: Final = frozenset({"dns_error"})
"""Retryable failures whose code a job keeps when its retries run out (the others end
``retries_exhausted``, naming the last error)."""


TAKEN_UP_REASON: Final = "its last try ended without an outcome; taken up by the redelivery"
"""The timeline's reason when a redelivery takes up a job whose try was cut off."""
MAX_RETURN_DELAY_S: Final = 43_200
"""The longest a released job's message is kept out of sight (SQS's visibility maximum)."""


class RetryLater(Exception):
    """The message should return to the queue (a transient failure; the claim was released).
    ``delay_s``: when the site or the models said trying again is worth it (a ``Retry-After``,
    a cooldown); None leaves the message to the queue's visibility timeout."""

    def __init__(self, message: str, *, delay_s: int | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


def return_delay(retry_after_s: float | None) -> int | None:
    """Whole seconds to keep a released message out of sight, within SQS's range."""
    if retry_after_s is None:
        return None
    return max(1, min(MAX_RETURN_DELAY_S, math.ceil(retry_after_s)))


class CrashedRetry(RetryLater):
    """The extraction raised an unexpected exception (a bug, a broken dependency): the job is
    released and its message returns to the queue, and the try counts as a failed message,
    so the failed-messages alarm sees a broken deploy before the retries run out."""


class JobService(JobSubmission):
    """The whole job service: the API side, and running a job."""

    # ------------------------------------------------------------------ run now

    def extract_now(
        self,
        *,
        owner_id: str,
        request: CreateJobRequest,
        correlation_id: str,
        idempotency_key: str | None,
        deadline: float,
    ) -> SyncRun:
        """Run a sync job inline until ``deadline`` (monotonic); past it, the job is handed
        to the queue and goes on asynchronously: the work is never thrown away."""
        self.check_webhook(request.webhook_url)
        self.check_model(request)
        outcome = self.manager.create(
            owner_id=owner_id,
            request=request,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
        )
        job = outcome.job
        if not outcome.created:
            if job.status == "pending":
                self.queue.send(job)
            return SyncRun(job=job, finished=job.status in TERMINAL_STATUSES)
        wall_deadline = self._wall_clock(deadline)
        try:
            job = self.manager.claim(job.job_id, deadline_at=wall_deadline)
        except TransitionRefused as exc:
            return SyncRun(job=exc.current, finished=exc.current.status in TERMINAL_STATUSES)
        try:
            outcome_job = self._run(job, deadline, run_on="api")
        except DeadlineExceeded:
            released = self.manager.release(
                job.job_id, reason="sync deadline passed; continuing asynchronously"
            )
            self.queue.send(released)
            return SyncRun(job=released, finished=False)
        except RetryLater as exc:
            # Released after a transient failure: the queue retries it like any async job
            # (a job left pending with no message would wait for the sweeper), when the site
            # or the models said it is worth it.
            current = self.manager.get(job.job_id)
            if current.status == "pending":
                self.queue.send(current, delay_s=exc.delay_s or 0)
            return SyncRun(job=current, finished=current.status in TERMINAL_STATUSES)
        return SyncRun(job=outcome_job, finished=outcome_job.status in TERMINAL_STATUSES)

    def _aws_usd(
        self, job: Job, outcome: ExtractionResult | None, run_s: float, run_on: FunctionName
    ) -> float | None:
        """The AWS cost of the run just ended (None without a cost basis or prices)."""
        if self.cost_basis is None:
            return None
        calls = sum(1 for a in (outcome.attempts if outcome else []) if a.model is not None)
        pages = len(outcome.pages) if outcome and outcome.pages else len(job.request.urls)
        renders = [
            p.rendered.ms for p in (outcome.pages if outcome else []) if p.rendered is not None
        ]
        try:
            return float(
                aws_cost.measured(
                    self.cost_basis,
                    page_count=pages,
                    crawl=job.request.crawl is not None,
                    model_calls=calls,
                    run_s=run_s,
                    run_on=run_on,
                    render_ms=renders,
                )
            )
        except aws_cost.UnknownRegion:
            return None

    # ------------------------------------------------------------------ worker side

    def process(self, message: JobMessage, *, receive_count: int, deadline: float) -> Job | None:
        """Handle one queue message. Returns the job as left, or None when there was nothing
        to do (a duplicate delivery, or a job that no longer exists). Raises RetryLater to
        return the message to the queue."""
        wall_deadline = self._wall_clock(deadline)
        try:
            job = self.manager.get(message.job_id)
        except JobNotFound:
            logger.warning(
                "message for a job that does not exist", extra={"job_id": message.job_id}
            )
            return None
        if job.status in TERMINAL_STATUSES:
            # Finished before, maybe by a try that crashed before its follow-ups: redo them
            # (both are idempotent), so no child goes uncounted and no webhook unsent.
            if job.parent_id is not None:
                self.manager.batches.record_child(job)
            if (
                job.webhook is not None
                and job.webhook.state == "pending"
                and not job.webhook.attempts
            ):
                self.notify(job)
            return None
        if job.type == "batch":
            return self._fan_out(job)
        now = self.clock()
        if job.status == "processing" and job.deadline_at is not None and job.deadline_at < now:
            # Its try ended without an outcome (the invocation was cut off or killed): the
            # message came back, so this delivery takes the job up (one conditional write,
            # still processing and still overdue) instead of leaving it for the sweeper.
            try:
                job = self.manager.release(job.job_id, reason=TAKEN_UP_REASON, overdue_at=now)
            except TransitionRefused as exc:
                logger.info(
                    "an overdue job changed meanwhile", extra={"status": exc.current.status}
                )
                return None
        try:
            job = self.manager.claim(job.job_id, deadline_at=wall_deadline)
        except TransitionRefused as exc:
            logger.info("duplicate delivery lost the claim", extra={"status": exc.current.status})
            return None
        self.notify(job)
        try:
            return self._run(job, deadline, receive_count=receive_count)
        except DeadlineExceeded:
            return self._terminal(
                lambda: self.manager.time_out(job.job_id, reason="the job's deadline passed")
            )

    def _fan_out(self, parent: Job) -> Job | None:
        if parent.status == "pending":
            try:
                parent = self.manager.claim(
                    parent.job_id, deadline_at=self.clock() + BATCH_DEADLINE
                )
            except TransitionRefused:
                return None
        # processing: a redelivery after a crash mid-fan-out creates nothing twice
        children = self.manager.batches.create_children(parent)
        current = self.manager.get(parent.job_id)
        if current.status == "cancelled":  # cancelled while its children were being made
            return self._cancel_children(current)
        self.queue.send_many([c for c in children if c.status == "pending"])
        return parent

    def _run(
        self,
        job: Job,
        deadline: float,
        *,
        receive_count: int = 1,
        run_on: FunctionName = "worker",
    ) -> Job:
        started = time.monotonic()
        last_check = [started]

        def with_aws(spent: Cost, outcome: ExtractionResult | None) -> JobCost:
            aws = self._aws_usd(job, outcome, time.monotonic() - started, run_on)
            return recorded.cost(spent, aws_usd=aws)

        def cancelled() -> bool:
            now = time.monotonic()
            if now - last_check[0] < CANCEL_CHECK_INTERVAL_S:
                return False
            last_check[0] = now
            return self.manager.get(job.job_id).status != "processing"

        source = job.reextraction_of
        try:
            outcome: ExtractionResult = self._extractor().extract(
                job.request,
                ExtractionTask(
                    deadline=deadline,
                    cancelled=cancelled,
                    owner_id=job.owner_id,
                    job_id=job.job_id,
                    pages_of=source.pages_job_id if source is not None else None,
                ),
            )
        except DeadlineExceeded:
            raise
        except ExtractionError as exc:
            error = recorded.error(
                Failure(code=exc.code, message=exc.message, retryable=exc.retryable)
            )
            attempts = recorded.attempts(exc.attempts or (exc.done.attempts if exc.done else []))
            done = exc.done
            if exc.retryable and receive_count < self.max_receives:
                delay = return_delay(exc.retry_after_s)
                when = f"; tried again in {delay} s, as asked" if delay is not None else ""
                self._release(job, f"{exc.code}: {exc.message}{when}")
                raise RetryLater(exc.message, delay_s=delay) from exc
            if exc.retryable:
                # A host that never resolved keeps its own code (README): a client fixes a
                # mistyped host, not a flaky site.
                code = exc.code if exc.code in KEPT_WHEN_EXHAUSTED else "retries_exhausted"
                error = recorded.error(
                    Failure(
                        code=code,
                        message=f"gave up after {receive_count} attempts; "
                        f"last error {exc.code}: {exc.message}",
                    )
                )
            cost = with_aws(done.cost if done is not None else Cost(), done)
            return self._terminal(lambda: self._fail(job, error, attempts, done, cost))
        except Exception as exc:
            logger.exception("extraction crashed")
            if receive_count < self.max_receives:
                self._release(job, f"internal error: {type(exc).__name__}")
                raise CrashedRetry(f"{type(exc).__name__}: {exc}") from exc
            error = JobError(
                code="internal_error", message=f"gave up after {receive_count} attempts"
            )
            return self._terminal(lambda: self.manager.fail(job.job_id, error))
        if time.monotonic() > deadline:
            raise DeadlineExceeded()
        result = self._result(job, outcome)
        continuation = self._hand_on_frontier(job, outcome) if outcome.frontier else None
        cost = with_aws(outcome.cost, outcome)
        ended = self._terminal(
            lambda: self.manager.complete(
                job.job_id,
                result,
                attempts=recorded.attempts(outcome.attempts),
                model=outcome.model,
                cost=cost,
                routing=recorded.notes(outcome.routing),
                warnings=recorded.notes(outcome.warnings),
                quality=outcome.quality,
                quality_reasons=recorded.notes(outcome.quality_reasons),
                continued_in=continuation.job_id if continuation else None,
            )
        )
        if continuation is not None and ended.continued_in != continuation.job_id:
            # The crawl was cancelled or timed out meanwhile: its continuation goes too.
            with contextlib.suppress(TransitionRefused):
                self.cancel(owner_id=job.owner_id, job_id=continuation.job_id)
        return ended

    def _hand_on_frontier(self, job: Job, outcome: ExtractionResult) -> Job:
        """The pages a crawl had no time for, as a batch job (one child per page, through
        the queue), linked both ways. Its id derives from the crawl's, so a retried
        completion meets the same batch instead of making a second one."""
        asked = job.request
        ceiling = asked.max_cost_usd
        if ceiling is not None:
            ceiling = max(ceiling - outcome.cost.actual_usd, 1e-9)
        request = CreateJobRequest.model_validate(
            {
                **asked.model_dump(exclude={"crawl", "urls", "max_cost_usd"}),
                "urls": outcome.frontier,
                "max_cost_usd": ceiling,
                "type": "batch",
            }
        )
        return self.submit(
            owner_id=job.owner_id,
            request=request,
            correlation_id=job.correlation_id,
            idempotency_key=f"continuation:{job.job_id}",
            continues=job.job_id,
        ).job

    def _result(self, job: Job, outcome: ExtractionResult) -> JobResult:
        diff = None
        source = job.reextraction_of
        if source is not None and source.diff:
            try:
                earlier = self.manager.result_of(self.manager.get(source.job_id))
            except JobNotFound:
                earlier = None
            diff = field_diff(earlier.data if earlier else None, outcome.data)
        return recorded.result(outcome, diff=diff)

    def _fail(
        self,
        job: Job,
        error: JobError,
        attempts: Sequence[Attempt],
        outcome: ExtractionResult | None,
        cost: JobCost,
    ) -> Job:
        """Fail the job with its spend so far, and the partial result where one is kept."""
        if outcome is None:
            return self.manager.fail(job.job_id, error, attempts=attempts, cost=cost)
        partial = self._result(job, outcome) if outcome.data is not None else None
        return self.manager.fail(
            job.job_id,
            error,
            attempts=attempts,
            model=outcome.model,
            cost=cost,
            routing=recorded.notes(outcome.routing),
            warnings=recorded.notes([*outcome.warnings, *outcome.quality_reasons]),
            partial=partial,
        )

    def _release(self, job: Job, reason: str) -> None:
        with contextlib.suppress(TransitionRefused):  # cancelled or timed out meanwhile
            self.notify(self.manager.release(job.job_id, reason=recorded.note(reason)))

    def _terminal(self, change: Callable[[], Job]) -> Job:
        """Make the final change; a job cancelled or timed out meanwhile stays so."""
        try:
            job = change()
        except TransitionRefused as exc:
            logger.info("late outcome refused", extra={"status": exc.current.status})
            return exc.current
        self._finished(job)
        return job
