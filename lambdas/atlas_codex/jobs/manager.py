"""The atomic job manager: every status change is one conditional write.

A single job's lifecycle costs three DynamoDB writes — create (conditional put), claim
and finish (conditional updates) — and a status read costs one read. A refused change
raises :class:`TransitionRefused` carrying the record as it is
(``ReturnValuesOnConditionCheckFailure``), never a silent no-op.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import ClientError
from pydantic import JsonValue

from atlas_codex import artifacts, limits
from atlas_codex.dynamo import attribute_value, from_attribute_value
from atlas_codex.jobs.errors import (
    IdempotencyConflict,
    InvalidCursor,
    JobNotFound,
    TransitionRefused,
)
from atlas_codex.jobs.index_reader import (
    ShardPosition,
    batch_get_jobs,
    check_positions,
    query_sharded,
)
from atlas_codex.jobs.schema import (
    PARTIAL_RESULT_ERRORS,
    TERMINAL_STATUSES,
    Attempt,
    ChildCounters,
    CreateJobRequest,
    Job,
    JobCost,
    JobError,
    JobResult,
    JobStatus,
    JobType,
    PageOutcome,
    Quality,
    ReextractionOf,
    StatusChange,
    WebhookAttempt,
    WebhookDeliveryState,
    WebhookState,
    check_id,
    new_job_id,
    sources_of,
    to_dynamo,
)
from atlas_codex.tables import JOBS, JOBS_BY_OWNER, JOBS_BY_STATUS, Index, shard_key, sharded_keys
from atlas_codex.values import TIMESTAMP_FORMAT, format_timestamp, utcnow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CHILD_OUTCOMES: Final = "child_outcomes"


def _wire(value: Any) -> dict[str, Any]:
    return attribute_value(to_dynamo(value))


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attribute_value(v) for k, v in item.items()}


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


def child_job_id(parent_id: str, index: int) -> str:
    return f"{parent_id}.{index:04d}"


@dataclass(frozen=True)
class CreateOutcome:
    job: Job
    created: bool
    """False when an idempotency-key retry returned the first job."""


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class ChildRecorded:
    parent: Job
    closed: bool
    """True when this child's outcome was the last one and it closed the parent."""


class JobManager:
    """Reads and writes job records. Knows nothing of Lambda, HTTP or queues."""

    def __init__(
        self,
        *,
        table_name: str,
        bucket: str,
        dynamodb: DynamoDBClient,
        s3: S3Client,
        ttl_days: int,
        clock: Callable[[], datetime] = utcnow,
        inline_result_max_bytes: int = limits.INLINE_RESULT_MAX_BYTES,
    ) -> None:
        self.table = table_name
        self.bucket = bucket
        self.db = dynamodb
        self.s3 = s3
        self.ttl = timedelta(days=ttl_days)
        self.clock = clock
        self.inline_max = inline_result_max_bytes

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
    ) -> CreateOutcome:
        """One conditional put. With an idempotency key the id is derived from (owner, key),
        so a retry meets the first job: same request -> that job, other request -> conflict."""
        digest = request_hash(request, reextraction_of)
        job_id = idempotent_job_id(owner_id, idempotency_key) if idempotency_key else None
        job = self._new_job(
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
            existing = self._put_new(job)
            if existing is None:
                return CreateOutcome(job=job, created=True)
            if idempotency_key is None:  # a random id met another job: draw again
                job = job.model_copy(update={"job_id": new_job_id()})
                continue
            if existing.owner_id == owner_id and existing.request_hash == digest:
                return CreateOutcome(job=existing, created=False)
            raise IdempotencyConflict(existing)
        raise RuntimeError("could not find a free job id")  # pragma: no cover - 2^80 random bits

    def _new_job(
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

    def _put_new(self, job: Job) -> Job | None:
        """Put ``job`` if its id is free; return the existing record otherwise."""
        item = job_to_wire_item(job)
        try:
            self.db.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression="attribute_not_exists(job_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return _job_from_failure(exc)
        return None

    # ------------------------------------------------------------------ read

    def get(self, job_id: str, *, owner_id: str | None = None) -> Job:
        """One strongly consistent read. Another owner's job is not found, never visible."""
        out = self.db.get_item(
            TableName=self.table, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        if "Item" not in out:
            raise JobNotFound(job_id)
        job = _job_from_item(out["Item"])
        if owner_id is not None and job.owner_id != owner_id:
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
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters = ["attribute_not_exists(parent_id)"]
        if parent_id is not None:  # a cursor is a place in the owner's index: any filter
            names["#parent"] = "parent_id"
            values[":parent"] = {"S": parent_id}
            filters = ["#parent = :parent"]
        if status is not None:
            names["#status"] = "status"
            values[":status"] = {"S": status}
            filters.append("#status = :status")
        if job_type is not None:
            names["#type"] = "type"
            values[":type"] = {"S": job_type}
            filters.append("#type = :type")
        return self._sharded_page(
            JOBS_BY_OWNER,
            owner_id,
            limit=limit,
            cursor=cursor,
            newest_first=True,
            filters=" AND ".join(filters),
            names=names,
            values=values,
        )

    def list_by_status(
        self,
        status: JobStatus,
        *,
        updated_before: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> JobPage:
        """Jobs in one status, least recently changed first, through the by-status index."""
        values: dict[str, Any] = {}
        if updated_before is not None:
            values[":before"] = {"S": format_timestamp(updated_before)}
        return self._sharded_page(
            JOBS_BY_STATUS,
            status,
            limit=limit,
            cursor=cursor,
            newest_first=False,
            sort_condition=("<", ":before") if updated_before is not None else None,
            values=values,
        )

    def _sharded_page(
        self,
        index: Index,
        value: str,
        *,
        limit: int,
        cursor: str | None,
        newest_first: bool,
        **query: Any,
    ) -> JobPage:
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        positions = _decode_cursor(cursor, index, value) if cursor else None
        page = query_sharded(
            self.db,
            table=self.table,
            index=index,
            value=value,
            limit=limit,
            newest_first=newest_first,
            positions=positions,
            **query,
        )
        jobs = self._batch_get([item[JOBS.partition_key]["S"] for item in page.items])
        next_cursor = (
            _encode_cursor(index, value, page.positions) if page.positions is not None else None
        )
        return JobPage(jobs=jobs, next_cursor=next_cursor)

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
        sources = sorted(expected if expected is not None else sources_of(to))
        if not sources:
            raise ValueError(f"no status may become {to}")
        now = self.clock()
        names = {
            "#status": "status",
            "#version": "version",
            "#updated": "updated_at",
            "#timeline": "timeline",
            "#id": "job_id",
            "#status_key": JOBS_BY_STATUS.partition_key,
        }
        entry = StatusChange(
            status=to, at=now, reason=reason[: limits.MAX_NOTE_CHARS] if reason else None
        )
        values: dict[str, Any] = {
            ":to": {"S": to},
            ":one": {"N": "1"},
            ":now": _wire(format_timestamp(now)),
            ":entry": _wire([entry.model_dump(mode="json")]),
            ":status_key": {"S": shard_key(to, job_id)},
        }
        sets = [
            "#status = :to",
            "#status_key = :status_key",
            "#version = #version + :one",
            "#updated = :now",
            "#timeline = list_append(#timeline, :entry)",
        ]
        for i, (field, value) in enumerate((fields or {}).items()):
            if field not in Job.model_fields:
                raise ValueError(f"{field!r} is not a field of the job record")
            names[f"#f{i}"] = field
            values[f":f{i}"] = _wire(value)
            sets.append(f"#f{i} = :f{i}")
        expression = "SET " + ", ".join(sets)
        if remove:
            for i, field in enumerate(remove):
                names[f"#r{i}"] = field
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
        for i, status in enumerate(sources):
            values[f":s{i}"] = {"S": status}
        condition = f"attribute_exists(#id) AND #status IN ({', '.join(f':s{i}' for i in range(len(sources)))})"
        if owner_id is not None:
            names["#owner"] = "owner_id"
            values[":owner"] = {"S": owner_id}
            condition += " AND #owner = :owner"
        if overdue_at is not None:
            names["#deadline"] = "deadline_at"
            values[":overdue"] = {"S": format_timestamp(overdue_at)}
            condition += " AND #deadline < :overdue"
        if unchanged_since is not None:
            values[":seen"] = {"S": format_timestamp(unchanged_since)}
            condition += " AND #updated = :seen"
        try:
            out = self.db.update_item(
                TableName=self.table,
                Key={"job_id": {"S": job_id}},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            current = _job_from_failure(exc)
            if current is None or (owner_id is not None and current.owner_id != owner_id):
                raise JobNotFound(job_id) from None
            raise TransitionRefused(current, to) from None
        return _job_from_item(out["Attributes"])

    def claim(self, job_id: str, *, deadline_at: datetime) -> Job:
        """``pending -> processing``; a duplicate delivery loses this race."""
        return self.transition(
            job_id,
            "processing",
            fields={"deadline_at": format_timestamp(deadline_at)},
            expected=frozenset({"pending"}),
        )

    def release(self, job_id: str, *, reason: str) -> Job:
        """``processing -> pending`` after a transient error, so a redelivery can claim again."""
        return self.transition(
            job_id,
            "pending",
            reason=reason,
            remove=("deadline_at",),
            expected=frozenset({"processing"}),
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
    ) -> Job:
        """``processing -> completed``. A result over the inline limit goes to the bucket first."""
        fields = _outcome_fields(attempts, model, cost, routing, warnings)
        fields["quality"] = quality
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
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"
            )
            fields["result_location"] = key
        else:
            fields["result"] = result.model_dump(mode="json")
        try:
            return self.transition(
                job_id, to, reason=reason, fields=fields, expected=frozenset({"processing"})
            )
        except TransitionRefused:
            if key is not None:  # a late result: refused, and not left behind
                self.s3.delete_object(Bucket=self.bucket, Key=key)
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
        body = self.s3.get_object(Bucket=self.bucket, Key=job.result_location)["Body"].read()
        return JobResult.model_validate_json(body)

    def result_url(self, job: Job, *, expires_in: int = 900) -> str | None:
        if job.result_location is None:
            return None
        return self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": job.result_location},
            ExpiresIn=expires_in,
        )

    def record_webhook(
        self, job_id: str, attempt: WebhookAttempt, state: WebhookDeliveryState
    ) -> Job:
        """Append a delivery attempt and set where the webhook stands (not a status change)."""
        out = self.db.update_item(
            TableName=self.table,
            Key={"job_id": {"S": job_id}},
            UpdateExpression="SET #w.#state = :state, #w.#attempts = list_append(#w.#attempts, :attempt)",
            ConditionExpression="attribute_exists(#w)",
            ExpressionAttributeNames={"#w": "webhook", "#state": "state", "#attempts": "attempts"},
            ExpressionAttributeValues={
                ":state": {"S": state},
                ":attempt": _wire([attempt.model_dump(mode="json")]),
            },
            ReturnValues="ALL_NEW",
        )
        return _job_from_item(out["Attributes"])

    # ------------------------------------------------------------------ batches

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
            child = self._new_job(
                job_id=child_job_id(parent.job_id, index),
                job_type="async",
                owner_id=parent.owner_id,
                correlation_id=parent.correlation_id,
                request=request,
                parent_id=parent.job_id,
            )
            existing = self._put_new(child)
            children.append(existing or child)
        return children

    def record_child(self, child: Job) -> ChildRecorded:
        """Count a finished child on its parent, once, and close the parent if it was last.

        The count is idempotent (the child's id is a key of the parent's outcome map), so
        a redelivered child re-records harmlessly and no child is ever lost or counted twice.
        """
        if child.parent_id is None or child.status not in TERMINAL_STATUSES:
            raise ValueError("only a finished child of a batch is recorded")
        counter = {"completed": "completed", "failed": "failed"}.get(child.status, "cancelled")
        try:
            out = self.db.update_item(
                TableName=self.table,
                Key={"job_id": {"S": child.parent_id}},
                UpdateExpression="SET #outcomes.#child = :outcome ADD #children.#counter :one",
                ConditionExpression="attribute_exists(#outcomes) AND attribute_not_exists(#outcomes.#child)",
                ExpressionAttributeNames={
                    "#outcomes": CHILD_OUTCOMES,
                    "#child": child.job_id,
                    "#children": "children",
                    "#counter": counter,
                },
                ExpressionAttributeValues={":outcome": {"S": child.status}, ":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            item = out["Attributes"]
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            failed_item = _failure_item(exc)
            if not failed_item:
                raise JobNotFound(child.parent_id) from None
            item = failed_item  # counted before: the parent may still need closing
        parent = _job_from_item(item)
        assert parent.children is not None
        if parent.children.done < parent.children.total or parent.status in TERMINAL_STATUSES:
            return ChildRecorded(parent=parent, closed=False)
        return ChildRecorded(
            parent=self._close_batch(parent, _plain(item).get(CHILD_OUTCOMES, {})), closed=True
        )

    def _close_batch(self, parent: Job, outcomes: Mapping[str, str]) -> Job:
        children = self._batch_get(sorted(outcomes))
        pages: list[PageOutcome] = []
        data: list[JsonValue] = []
        for child in children:
            result = self.result_of(child) if child.status == "completed" else None
            pages.append(
                PageOutcome(
                    url=child.request.urls[0],
                    status="ok" if child.status == "completed" else "failed",
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
        assert parent.children is not None
        if parent.children.completed == 0:
            error = JobError(
                code="batch_failed", message=f"none of the {parent.children.total} pages succeeded"
            )
            try:
                return self.transition(
                    parent.job_id,
                    "failed",
                    reason=error.code,
                    fields={
                        "error": error.model_dump(mode="json"),
                        "cost": spent.model_dump(mode="json"),
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
            return self.complete(
                parent.job_id,
                JobResult(data=data, pages=pages),
                cost=spent,
                quality="partial" if reasons else "complete",
                quality_reasons=[r[: limits.MAX_NOTE_CHARS] for r in reasons][: limits.MAX_NOTES],
            )
        except TransitionRefused as exc:  # cancelled or timed out meanwhile: it stays so
            return exc.current

    def _batch_get(self, job_ids: Sequence[str]) -> list[Job]:
        return [_job_from_item(item) for item in batch_get_jobs(self.db, self.table, job_ids)]


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


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _job_from_item(item: Mapping[str, Any]) -> Job:
    plain = _plain(item)
    plain.pop(CHILD_OUTCOMES, None)
    for index in JOBS.indexes:
        if index.sharded_from is not None:
            plain.pop(index.partition_key, None)
    return Job.from_item(plain)


def job_to_wire_item(job: Job) -> dict[str, Any]:
    """The item the manager writes for ``job``, in the low-level client's form (with the
    write-sharded index keys derived from it)."""
    plain = job.to_item()
    item = {k: _wire(v) for k, v in plain.items()}
    keys = sharded_keys(plain, job.job_id)
    item.update({name: {"S": key} for name, key in keys.items()})
    if job.type == "batch":
        item[CHILD_OUTCOMES] = {"M": {}}
    return item


def plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A low-level item as plain Python values (numbers as Decimal)."""
    return _plain(item)


def job_from_wire_item(item: Mapping[str, Any]) -> Job:
    """A job from an item as the low-level client returns it (``{"S": ...}`` values)."""
    return _job_from_item(item)


def _job_from_failure(exc: ClientError) -> Job | None:
    item = _failure_item(exc)
    return _job_from_item(item) if item else None


def _failure_item(exc: ClientError) -> dict[str, Any] | None:
    """The record as it was, returned by ReturnValuesOnConditionCheckFailure=ALL_OLD."""
    response: Mapping[str, Any] = exc.response
    item = response.get("Item")
    return item if isinstance(item, dict) and item else None


def _scope(index: Index, value: str) -> str:
    """Which listing a cursor belongs to (so one owner's cursor is refused in another's)."""
    return hashlib.blake2b(f"{index.name}\0{value}".encode(), digest_size=8).hexdigest()


def _encode_cursor(index: Index, value: str, positions: Sequence[ShardPosition]) -> str:
    cursor = {"l": _scope(index, value), "p": list(positions)}
    raw = json.dumps(cursor, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSOR_VALUES: Final[dict[str, Callable[[str], object]]] = {
    "job_id": check_id,
    "created_at": lambda v: datetime.strptime(v, TIMESTAMP_FORMAT),
    "updated_at": lambda v: datetime.strptime(v, TIMESTAMP_FORMAT),
}


def _check_cursor_value(name: str, value: str) -> None:
    try:
        _CURSOR_VALUES[name](value)
    except KeyError:
        raise ValueError(f"{name} is not part of a cursor") from None


def _decode_cursor(cursor: str, index: Index, value: str) -> list[ShardPosition]:
    """The cursor's positions, if it is one of ours for this listing (``index_reader``)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
        if not isinstance(decoded, dict) or set(decoded) != {"l", "p"}:
            raise ValueError("not a cursor")
        if decoded["l"] != _scope(index, value):
            raise ValueError("a cursor of another listing")
        return check_positions(decoded["p"], index, value, _check_cursor_value)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidCursor() from None
