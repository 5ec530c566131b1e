"""What the API and the worker do with jobs: plain functions over the manager and the queue.

Nothing here knows of Lambda events or HTTP. The handlers parse, call one of these, and
shape the answer.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from atlas_codex.extraction.contract import (
    DeadlineExceeded,
    ExtractionError,
    ExtractionTask,
    Extractor,
    Quote,
)
from atlas_codex.extraction.pages import PageManifest, PageManifests, PagesUnavailable
from atlas_codex.extraction.request import needs_model
from atlas_codex.extraction.result import Cost, ExtractionResult, Failure
from atlas_codex.ground import aws_cost, limits
from atlas_codex.ground.aws_cost import CostBasis, FunctionName
from atlas_codex.ground.netguard import (
    BlockedTarget,
    DnsError,
    NetPolicy,
    Resolver,
    check_url,
    system_resolver,
)
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs import recorded
from atlas_codex.jobs.batches import child_job_id
from atlas_codex.jobs.diff import field_diff
from atlas_codex.jobs.errors import (
    BudgetSpent,
    InvalidRequest,
    JobNotFound,
    ModelRequired,
    NotReextractable,
    TransitionRefused,
)
from atlas_codex.jobs.manager import JobManager, Submitted
from atlas_codex.jobs.messages import JobMessage
from atlas_codex.jobs.queue import DeadLetters, JobQueue
from atlas_codex.jobs.record import (
    Attempt,
    CreateJobRequest,
    Job,
    JobCost,
    JobError,
    JobResult,
    ReextractionOf,
    ReextractRequest,
)
from atlas_codex.jobs.store.table import JobPage
from atlas_codex.jobs.sweeper import (
    MAX_DEAD_LETTERS_PER_SWEEP,
    SweepReport,
    fail_dead_lettered,
    sweep,
)
from atlas_codex.jobs.vocabulary import TERMINAL_STATUSES, JobStatus, JobType

logger = logging.getLogger(__name__)

BATCH_DEADLINE: Final = timedelta(hours=24)
"""A batch parent waits this long for its children before the sweeper times it out."""
CANCEL_CHECK_INTERVAL_S: Final = 2.0
CANCEL_WORKERS: Final = 8
"""Children of a cancelled batch are cancelled this many at a time."""


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


Notifier = Callable[[Job], None]
"""Called with the record after every status change (live status; webhooks on the last)."""


def _no_notify(job: Job) -> None:
    return None


class JobService:
    def __init__(
        self,
        *,
        manager: JobManager,
        queue: JobQueue,
        extractor: Callable[[], Extractor],
        max_receives: int,
        notify: Notifier = _no_notify,
        clock: Callable[[], datetime] = utcnow,
        page_store: PageManifests | None = None,
        message_lost_after: timedelta | None = None,
        webhook_policy: NetPolicy | None = None,
        resolver: Resolver = system_resolver,
        cost_basis: CostBasis | None = None,
        dead_letters: DeadLetters | None = None,
    ) -> None:
        self.dead_letters = dead_letters
        """The jobs queue's dead letters, read by the sweep (None: not read)."""
        self.cost_basis = cost_basis
        """The stage's facts AWS cost is estimated from (None: quotes and records carry no
        AWS estimate)."""
        self.webhook_policy = webhook_policy
        """The SSRF policy webhook targets are checked against at submission (None: no check)."""
        self.resolver = resolver
        self.page_store = page_store
        self.message_lost_after = message_lost_after
        """A pending job unchanged this long has lost its message (see the sweeper)."""
        self.manager = manager
        self.queue = queue
        self._extractor = extractor
        self.max_receives = max_receives
        self.notify = notify
        self.clock = clock

    def _wall_clock(self, deadline: float) -> datetime:
        """The wall-clock instant of a ``time.monotonic()`` deadline (what the record keeps)."""
        return self.clock() + timedelta(seconds=max(deadline - time.monotonic(), 0))

    # ------------------------------------------------------------------ API side

    def submit(
        self,
        *,
        owner_id: str,
        request: CreateJobRequest,
        correlation_id: str,
        idempotency_key: str | None,
        reextraction_of: ReextractionOf | None = None,
        continues: str | None = None,
    ) -> Submitted:
        """Create the job and queue it. A retry of a job still pending queues it again:
        if the first enqueue was lost the job still runs, and a duplicate loses the claim."""
        self.check_webhook(request.webhook_url)
        self.check_model(request)
        outcome = self.manager.create(
            owner_id=owner_id,
            request=request,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            reextraction_of=reextraction_of,
            continues=continues,
        )
        if outcome.created or outcome.job.status == "pending":
            self.queue.send(outcome.job)
        return outcome

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

    def check_model(self, request: CreateJobRequest) -> None:
        """Refuse, at submission, a job that needs a model when none is configured: it could
        only end with a page dump that does not answer it."""
        field = needs_model(request, request.type)
        if field is None:
            return
        extractor = self._extractor()
        if not extractor.models_available:
            raise ModelRequired(field)
        budget = extractor.model_budget()
        if budget is not None and budget.spent:
            raise BudgetSpent(field, budget.limit_usd, budget.spent_usd)

    def check_webhook(self, url: str | None) -> None:
        """Refuse, at submission, a webhook target the delivery would refuse (a private,
        loopback or metadata address, a port not allowed): otherwise the job would run and its
        webhook end in the dead-letter queue, paging the on-call. A name that does not
        resolve now is accepted: DNS failures may pass, and delivery retries them."""
        if url is None or self.webhook_policy is None:
            return
        try:
            check_url(url, self.webhook_policy, self.resolver)
        except BlockedTarget as exc:
            raise InvalidRequest(
                "webhook_url", f"the webhook target is refused: {exc.reason}"
            ) from None
        except DnsError:
            return

    def quote(self, *, request: CreateJobRequest, deadline: float) -> Quote:
        """What the job would cost: its pages fetched now, no model called, nothing stored;
        the model spend from the engine, the AWS cost from the measured use (``aws_cost``)."""
        quote = self._extractor().quote(request.job_request(), deadline=deadline)
        if self.cost_basis is None:
            return quote
        try:
            aws = aws_cost.quote(
                self.cost_basis,
                page_count=quote.pages.expected,
                crawl=request.crawl is not None,
                model_calls=quote.model_calls,
                worst_model_calls=quote.worst_model_calls,
                page_timeout_s=limits.PAGE_FETCH_TIMEOUT_S,
                model_timeout_s=limits.MODEL_CALL_MAX_S,
                concurrency=limits.CRAWL_CONCURRENCY if request.crawl is not None else 1,
                # "auto" renders only a page that needs it: none expected, every one at worst
                renders=quote.pages.expected if request.render == "always" else 0,
                worst_renders=0 if request.render == "never" else quote.pages.expected,
            )
        except aws_cost.UnknownRegion as exc:
            return quote.model_copy(update={"notes": [*quote.notes, f"aws_usd: {exc}"]})
        return quote.model_copy(update={"aws_usd": aws})

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

    def reextract(
        self,
        *,
        owner_id: str,
        job_id: str,
        asked: ReextractRequest,
        correlation_id: str,
        idempotency_key: str | None,
    ) -> tuple[Submitted, PageManifest]:
        """A new job that runs the ``asked`` extraction over ``job_id``'s stored pages (no
        fetch), linked to it, with a field-by-field diff against its result when asked."""
        source = self.manager.get(job_id, owner_id=owner_id)
        if source.type == "batch":
            raise NotReextractable(
                source, "a batch keeps its pages under its child jobs: re-extract those"
            )
        if source.status not in ("completed", "failed"):
            raise NotReextractable(
                source, f"the job is {source.status}; only a finished job's pages can be reused"
            )
        pages_of = source.reextraction_of.pages_job_id if source.reextraction_of else None
        if self.page_store is None:
            raise PagesUnavailable(pages_of or source.job_id)
        manifest = self.page_store.manifest(pages_of or source.job_id)
        outcome = self.submit(
            owner_id=owner_id,
            request=asked.job_request(source.request),
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            reextraction_of=ReextractionOf(
                job_id=source.job_id, diff=asked.diff, pages_of=pages_of
            ),
        )
        return outcome, manifest

    def get(self, *, owner_id: str, job_id: str) -> Job:
        return self.manager.get(job_id, owner_id=owner_id)

    def result_url(self, job: Job, *, expires_in: int) -> str | None:
        """A presigned URL of a result kept in the bucket (None: it is inline)."""
        return self.manager.result_url(job, expires_in=expires_in)

    def list(
        self,
        *,
        owner_id: str,
        status: JobStatus | None,
        job_type: JobType | None,
        limit: int,
        cursor: str | None,
        parent_id: str | None = None,
    ) -> JobPage:
        """The owner's top-level jobs, or the children of their batch ``parent_id``."""
        return self.manager.list_for_owner(
            owner_id,
            status=status,
            job_type=job_type,
            limit=limit,
            cursor=cursor,
            parent_id=parent_id,
        )

    def cancel(self, *, owner_id: str, job_id: str) -> Job:
        """Cancel a job; a batch's pending and running children are cancelled with it (a
        running child stops at its next cancellation check), and its counts say so."""
        job = self.manager.cancel(job_id, owner_id=owner_id)
        self._finished(job)
        if job.type == "batch":
            job = self._cancel_children(job)
        return job

    def _cancel_children(self, parent: Job) -> Job:
        """One conditional write per child not yet finished (a child that finished, or was
        never made, is left as it is), each counted on the parent; the parent as it is now."""

        def cancel_child(index: int) -> None:
            try:
                child = self.manager.transition(
                    child_job_id(parent.job_id, index),
                    "cancelled",
                    reason=f"its batch {parent.job_id} was cancelled",
                )
            except (TransitionRefused, JobNotFound):
                return
            self.manager.batches.record_child(child)
            self.notify(child)

        with ThreadPoolExecutor(CANCEL_WORKERS) as pool:
            list(pool.map(cancel_child, range(len(parent.request.urls))))
        return self.manager.get(parent.job_id)

    def sweep(self, *, now: datetime | None = None) -> SweepReport:
        """End the jobs whose message was dead-lettered; time out jobs processing past their
        deadline; re-queue (or end) pending jobs whose message is gone. Every job ended here
        is notified like any other."""
        report = SweepReport()
        if self.dead_letters is not None:
            fail_dead_lettered(
                self.manager,
                self.dead_letters.peek(MAX_DEAD_LETTERS_PER_SWEEP),
                report=report,
                notify=self.notify,
            )
        return sweep(
            self.manager,
            now=now,
            notify=self.notify,
            requeue=self.queue.send,
            lost_after=self.message_lost_after,
            report=report,
        )

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

    def _finished(self, job: Job) -> None:
        if job.parent_id is not None:
            recorded = self.manager.batches.record_child(job)
            if recorded.closed and recorded.parent is not None:
                self.notify(recorded.parent)
        self.notify(job)
