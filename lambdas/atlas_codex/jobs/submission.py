"""Submitting jobs and everything the API asks of them that runs no job: create, quote,
look up, list, cancel, re-extract, sweep. :class:`atlas_codex.jobs.service.JobService` adds
the running side (a queue message's job, or one run now) on top of it.

Nothing here knows of Lambda events or HTTP. The handlers parse, call one of these, and
shape the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Final

from atlas_codex.extraction.contract import (
    Extractor,
    Quote,
)
from atlas_codex.extraction.pages import PageManifest, PageManifests, PagesUnavailable
from atlas_codex.extraction.request import needs_model
from atlas_codex.ground import aws_cost, limits
from atlas_codex.ground.aws_cost import CostBasis
from atlas_codex.ground.netguard import (
    BlockedTarget,
    DnsError,
    NetPolicy,
    Resolver,
    check_url,
    system_resolver,
)
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.batches import child_job_id
from atlas_codex.jobs.errors import (
    BudgetSpent,
    InvalidRequest,
    JobNotFound,
    ModelRequired,
    NotReextractable,
    TransitionRefused,
)
from atlas_codex.jobs.manager import JobManager, Submitted
from atlas_codex.jobs.queue import DeadLetters, JobQueue
from atlas_codex.jobs.record import (
    CreateJobRequest,
    Job,
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
from atlas_codex.jobs.vocabulary import JobStatus, JobType

CANCEL_WORKERS: Final = 8
"""Children of a cancelled batch are cancelled this many at a time."""


Notifier = Callable[[Job], None]
"""Called with the record after every status change (live status; webhooks on the last)."""


def _no_notify(job: Job) -> None:
    return None


class JobSubmission:
    """The API side of the job service: submission, quotes, reads, cancel, sweep."""

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

    def _finished(self, job: Job) -> None:
        """A job ended: counted on its batch (which may close it), and told."""
        if job.parent_id is not None:
            recorded = self.manager.batches.record_child(job)
            if recorded.closed and recorded.parent is not None:
                self.notify(recorded.parent)
        self.notify(job)
