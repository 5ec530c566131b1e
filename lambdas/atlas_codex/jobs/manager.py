"""The atomic job manager: every status change is one conditional write.

A single job's lifecycle costs three DynamoDB writes — create (conditional put), claim
and finish (conditional updates) — and a status read costs one read. A refused change
raises :class:`TransitionRefused` carrying the record as it is
(``ReturnValuesOnConditionCheckFailure``), never a silent no-op.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from atlas_codex.ground import artifacts, limits
from atlas_codex.ground.values import format_timestamp, utcnow
from atlas_codex.jobs.batches import Batches
from atlas_codex.jobs.errors import IdempotencyConflict, JobNotFound, TransitionRefused
from atlas_codex.jobs.record import (
    PARTIAL_RESULT_ERRORS,
    Attempt,
    ChildCounters,
    CreateJobRequest,
    Job,
    JobCost,
    JobError,
    JobResult,
    Quality,
    ReextractionOf,
    StatusChange,
    WebhookAttempt,
    WebhookDeliveryState,
    WebhookState,
)
from atlas_codex.jobs.store.result_store import ResultStore, S3ResultStore
from atlas_codex.jobs.store.table import (
    Change,
    DynamoJobTable,
    Expect,
    JobPage,
    JobTable,
    OwnerQuery,
    Refused,
)
from atlas_codex.jobs.vocabulary import JobStatus, JobType, new_job_id, sources_of

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def request_hash(request: CreateJobRequest, reextraction_of: ReextractionOf | None = None) -> str:
    """A stable digest of what the client asked for, to tell a retry from a new request."""
    asked = request.model_dump(mode="json")
    if reextraction_of is not None:
        asked["reextraction_of"] = reextraction_of.model_dump(mode="json")
    canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotent_job_id(owner_id: str, key: str) -> str:
    """The job id an owner's idempotency key maps to: the same key can only make one job."""
    digest = int.from_bytes(hashlib.sha256(f"{owner_id}\x00{key}".encode()).digest()[:17], "big")
    chars = [_CROCKFORD[(digest >> (5 * i)) & 31] for i in range(26)]
    return "job_" + "".join(reversed(chars))


@dataclass(frozen=True)
class Submitted:
    job: Job
    created: bool
    """False when an idempotency-key retry returned the first job."""


class JobManager:
    """Reads and writes job records. Knows nothing of Lambda, HTTP or queues."""

    def __init__(
        self,
        *,
        table: JobTable,
        results: ResultStore,
        ttl_days: int,
        clock: Callable[[], datetime] = utcnow,
        inline_result_max_bytes: int = limits.INLINE_RESULT_MAX_BYTES,
    ) -> None:
        self.table = table
        self.results = results
        self.ttl = timedelta(days=ttl_days)
        self.clock = clock
        self.inline_max = inline_result_max_bytes
        self.batches = Batches(self)
        """A batch's children: made once, each counted once, the last closing the batch."""

    @classmethod
    def on_aws(
        cls,
        *,
        table_name: str,
        bucket: str,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        ttl_days: int,
        clock: Callable[[], datetime] = utcnow,
        inline_result_max_bytes: int = limits.INLINE_RESULT_MAX_BYTES,
    ) -> JobManager:
        """The manager of a stage: records in its jobs table, large results in its bucket."""
        return cls(
            table=DynamoJobTable(dynamodb=dynamodb, table_name=table_name),
            results=S3ResultStore(s3=s3, bucket=bucket),
            ttl_days=ttl_days,
            clock=clock,
            inline_result_max_bytes=inline_result_max_bytes,
        )

    # ------------------------------------------------------------------ create

    def create(
        self,
        *,
        owner_id: str,
        request: CreateJobRequest,
        correlation_id: str,
        idempotency_key: str | None = None,
        reextraction_of: ReextractionOf | None = None,
        continues: str | None = None,
    ) -> Submitted:
        """One conditional put. With an idempotency key the id is derived from (owner, key),
        so a retry meets the first job: same request -> that job, other request -> conflict."""
        digest = request_hash(request, reextraction_of)
        job_id = idempotent_job_id(owner_id, idempotency_key) if idempotency_key else None
        job = self.new_job(
            job_id=job_id,
            job_type=request.type,
            owner_id=owner_id,
            correlation_id=correlation_id,
            request=request,
            idempotency_key=idempotency_key,
            digest=digest,
            reextraction_of=reextraction_of,
            continues=continues,
        )
        for _ in range(3):
            existing = self.table.put_new(job)
            if existing is None:
                return Submitted(job=job, created=True)
            if idempotency_key is None:  # a random id met another job: draw again
                job = job.model_copy(update={"job_id": new_job_id()})
                continue
            if existing.owner_id == owner_id and existing.request_hash == digest:
                return Submitted(job=existing, created=False)
            raise IdempotencyConflict(existing)
        raise RuntimeError("could not find a free job id")  # pragma: no cover - 2^80 random bits

    def new_job(
        self,
        *,
        job_id: str | None,
        job_type: JobType,
        owner_id: str,
        correlation_id: str,
        request: CreateJobRequest,
        idempotency_key: str | None = None,
        digest: str | None = None,
        parent_id: str | None = None,
        reextraction_of: ReextractionOf | None = None,
        continues: str | None = None,
    ) -> Job:
        now = self.clock()
        job_id = job_id or new_job_id(now)
        webhook = (
            WebhookState(webhook_id=f"msg_{job_id}", url=request.webhook_url)
            if request.webhook_url is not None
            else None
        )
        return Job(
            job_id=job_id,
            type=job_type,
            status="pending",
            owner_id=owner_id,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
            request_hash=digest,
            request=request.job_request(),
            created_at=now,
            updated_at=now,
            timeline=[StatusChange(status="pending", at=now)],
            parent_id=parent_id,
            children=ChildCounters(total=len(request.urls)) if job_type == "batch" else None,
            ttl=int((now + self.ttl).timestamp()),
            webhook=webhook,
            reextraction_of=reextraction_of,
            continues=continues,
        )

    # ------------------------------------------------------------------ read

    def get(self, job_id: str, *, owner_id: str | None = None) -> Job:
        """One strongly consistent read. Another owner's job is not found, never visible."""
        job = self.table.get(job_id)
        if job is None or (owner_id is not None and job.owner_id != owner_id):
            raise JobNotFound(job_id)
        return job

    def list_for_owner(
        self,
        owner_id: str,
        *,
        status: JobStatus | None = None,
        job_type: JobType | None = None,
        limit: int = 20,
        cursor: str | None = None,
        parent_id: str | None = None,
    ) -> JobPage:
        """An owner's top-level jobs (or the children of their batch ``parent_id``), newest
        first, through the by-owner index."""
        query = OwnerQuery(owner_id=owner_id, parent_id=parent_id, status=status, job_type=job_type)
        return self.table.owner_page(query, limit=limit, cursor=cursor)

    def list_by_status(
        self,
        status: JobStatus,
        *,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs in one status, least recently changed first, through the by-status index."""
        return self.table.status_page(
            status, updated_before=updated_before, limit=limit, cursor=cursor
        )

    # ------------------------------------------------------------------ transitions

    def transition(
        self,
        job_id: str,
        to: JobStatus,
        *,
        reason: str | None = None,
        fields: Mapping[str, Any] | None = None,
        remove: Sequence[str] = (),
        owner_id: str | None = None,
        expected: frozenset[JobStatus] | None = None,
        overdue_at: datetime | None = None,
        unchanged_since: datetime | None = None,
    ) -> Job:
        """One conditional update: the status must be one the table allows to become ``to``
        (and, with ``overdue_at``, the job's deadline must have passed by then; with
        ``unchanged_since``, the record must not have changed since that ``updated_at``)."""
        sources = expected if expected is not None else sources_of(to)
        if not sources:
            raise ValueError(f"no status may become {to}")
        for name in fields or {}:
            if name not in Job.model_fields:
                raise ValueError(f"{name!r} is not a field of the job record")
        entry = StatusChange(
            status=to, at=self.clock(), reason=reason[: limits.MAX_NOTE_CHARS] if reason else None
        )
        expect = Expect(
            statuses=frozenset(sources),
            owner_id=owner_id,
            overdue_at=overdue_at,
            unchanged_since=unchanged_since,
        )
        try:
            return self.table.change(
                job_id, Change(status=to, entry=entry, fields=fields or {}, remove=remove), expect
            )
        except Refused as refused:
            current = refused.current
            if current is None or (owner_id is not None and current.owner_id != owner_id):
                raise JobNotFound(job_id) from None
            raise TransitionRefused(current, to) from None

    def claim(self, job_id: str, *, deadline_at: datetime) -> Job:
        """``pending -> processing``; a duplicate delivery loses this race."""
        return self.transition(
            job_id,
            "processing",
            fields={"deadline_at": format_timestamp(deadline_at)},
            expected=frozenset({"pending"}),
        )

    def release(self, job_id: str, *, reason: str, overdue_at: datetime | None = None) -> Job:
        """``processing -> pending`` after a transient error, so a redelivery can claim again
        (with ``overdue_at``: only when the try's deadline had passed by then)."""
        return self.transition(
            job_id,
            "pending",
            reason=reason,
            remove=("deadline_at",),
            expected=frozenset({"processing"}),
            overdue_at=overdue_at,
        )

    def complete(
        self,
        job_id: str,
        result: JobResult,
        *,
        attempts: Sequence[Attempt] = (),
        model: str | None = None,
        cost: JobCost | None = None,
        routing: Sequence[str] = (),
        warnings: Sequence[str] = (),
        quality: Quality = "complete",
        quality_reasons: Sequence[str] = (),
        continued_in: str | None = None,
        children: ChildCounters | None = None,
    ) -> Job:
        """``processing -> completed``. A result over the inline limit goes to the bucket first.
        ``children``: a batch's final counts, kept on its record."""
        fields = _outcome_fields(attempts, model, cost, routing, warnings)
        fields["quality"] = quality
        if children is not None:
            fields["children"] = children.model_dump(mode="json")
        if continued_in is not None:
            fields["continued_in"] = continued_in
        if quality_reasons:
            fields["quality_reasons"] = list(quality_reasons)
        return self._finish_with_result(job_id, "completed", result, fields, reason=None)

    def fail(
        self,
        job_id: str,
        error: JobError,
        *,
        attempts: Sequence[Attempt] = (),
        model: str | None = None,
        cost: JobCost | None = None,
        routing: Sequence[str] = (),
        warnings: Sequence[str] = (),
        partial: JobResult | None = None,
    ) -> Job:
        """``-> failed``, with the spend so far; ``partial`` keeps what was extracted before
        a failure that allows it (a cost ceiling reached, an empty extraction)."""
        fields = _outcome_fields(attempts, model, cost, routing, warnings)
        fields["error"] = error.model_dump(mode="json")
        if partial is not None and error.code in PARTIAL_RESULT_ERRORS:
            return self._finish_with_result(job_id, "failed", partial, fields, reason=error.code)
        return self.transition(job_id, "failed", reason=error.code, fields=fields)

    def _finish_with_result(
        self,
        job_id: str,
        to: JobStatus,
        result: JobResult,
        fields: dict[str, Any],
        *,
        reason: str | None,
    ) -> Job:
        body = result.model_dump_json().encode()
        key = None
        if len(body) > self.inline_max:
            key = artifacts.result_key(job_id)
            self.results.put(key, body)
            fields["result_location"] = key
        else:
            fields["result"] = result.model_dump(mode="json")
        try:
            return self.transition(
                job_id, to, reason=reason, fields=fields, expected=frozenset({"processing"})
            )
        except TransitionRefused:
            if key is not None:  # a late result: refused, and not left behind
                self.results.delete(key)
            raise

    def cancel(self, job_id: str, *, owner_id: str) -> Job:
        return self.transition(
            job_id, "cancelled", reason="cancelled by the client", owner_id=owner_id
        )

    def time_out(
        self,
        job_id: str,
        *,
        reason: str,
        overdue_at: datetime | None = None,
        unchanged_since: datetime | None = None,
        expected: frozenset[JobStatus] | None = None,
    ) -> Job:
        return self.transition(
            job_id,
            "timeout",
            reason=reason,
            fields={"error": JobError(code="timeout", message=reason).model_dump(mode="json")},
            overdue_at=overdue_at,
            unchanged_since=unchanged_since,
            expected=expected,
        )

    def mark_requeued(self, job: Job, *, reason: str) -> Job:
        """A pending job whose queue message was lost, about to be sent again: one
        conditional write (still pending, unchanged since it was read) that records why in
        the timeline, so two sweeps never both re-queue it."""
        return self.transition(
            job.job_id,
            "pending",
            reason=reason,
            expected=frozenset({"pending"}),
            unchanged_since=job.updated_at,
        )

    def result_of(self, job: Job) -> JobResult | None:
        """The job's result, read from the bucket when it was too large for the record."""
        if job.result is not None:
            return job.result
        if job.result_location is None:
            return None
        return JobResult.model_validate_json(self.results.get(job.result_location))

    def result_url(self, job: Job, *, expires_in: int = 900) -> str | None:
        if job.result_location is None:
            return None
        return self.results.url(job.result_location, expires_in=expires_in)

    def record_webhook(
        self, job_id: str, attempt: WebhookAttempt, state: WebhookDeliveryState
    ) -> Job:
        """Append a delivery attempt and set where the webhook stands (not a status change)."""
        return self.table.add_webhook_attempt(job_id, attempt, state)


# ---------------------------------------------------------------------- helpers


def _outcome_fields(
    attempts: Sequence[Attempt],
    model: str | None,
    cost: JobCost | None,
    routing: Sequence[str],
    warnings: Sequence[str],
) -> dict[str, Any]:
    """How an extraction went, as record fields (set on completion and on failure alike)."""
    fields: dict[str, Any] = {}
    if attempts:
        fields["attempts"] = [a.model_dump(mode="json") for a in attempts]
        fields["fallback_chain"] = [a.strategy for a in attempts]
    if model is not None:
        fields["model"] = model
    if cost is not None:
        fields["cost"] = cost.model_dump(mode="json")
    if routing:
        fields["routing"] = list(routing)
    if warnings:
        fields["warnings"] = list(warnings)
    return fields
