"""The job table: the record store's reads and conditional writes, behind one protocol with
two implementations.

:class:`DynamoJobTable` is what every stage runs (one conditional write per change, the
record as it was returned when a condition fails). :class:`MemoryJobTable` keeps the same
records and conditions in memory, under a lock: the lifecycle tests run the job service on
it in milliseconds, and the emulator tier keeps the DynamoDB contract. The job manager
(:mod:`atlas_codex.jobs.manager`) builds every rule on these few operations.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from botocore.exceptions import ClientError

from atlas_codex.ground.dynamo import attribute_value, from_attribute_value
from atlas_codex.ground.table_specs import (
    JOBS,
    JOBS_BY_OWNER,
    JOBS_BY_STATUS,
    Index,
    shard_key,
    sharded_keys,
)
from atlas_codex.ground.values import TIMESTAMP_FORMAT, format_timestamp
from atlas_codex.jobs.errors import InvalidCursor
from atlas_codex.jobs.record import (
    ChildCounters,
    Job,
    StatusChange,
    WebhookAttempt,
    WebhookDeliveryState,
    to_dynamo,
)
from atlas_codex.jobs.store.index_reader import (
    ShardPosition,
    batch_get_jobs,
    check_positions,
    query_sharded,
)
from atlas_codex.jobs.vocabulary import JobStatus, JobType, check_id

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

CHILD_OUTCOMES: Final = "child_outcomes"
"""A batch's map of child id -> final status, beside the record (not a record field): a
child is counted once because its id is a key of it. Batches now count their children in an
item of their own (:data:`CHILD_COUNTS_SUFFIX`); the map serves batches made before, and any
batch whose counter item was never written."""
CHILD_COUNTS_SUFFIX: Final = "#children"
"""``<batch id>#children``: a batch's child counters (``total``, ``completed``, ``failed``,
``cancelled``) and the number set ``counted`` of the children's indexes, in an item of their
own. Each child's count is one conditional ``ADD`` on that small item (a few write units)
instead of a rewrite of the batch's record (70-115 KB, about 91 write units, for 1,000
URLs), and one batch takes about 300 counts a second instead of 11 (docs/CAPACITY.md)."""
CHILD_COUNTS_OF: Final = "counts_children_of"
"""The counter item's mark: not a job (scans of the jobs table pass it by)."""
ChildCounter = Literal["completed", "failed", "cancelled"]
MAX_PAGE: Final = 100


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


@dataclass(frozen=True)
class Expect:
    """What must hold for a change to be written: the record exists in one of ``statuses``,
    belongs to ``owner_id``, its deadline passed before ``overdue_at``, it is unchanged
    since ``unchanged_since`` (each only when given)."""

    statuses: frozenset[JobStatus]
    owner_id: str | None = None
    overdue_at: datetime | None = None
    unchanged_since: datetime | None = None

    def holds(self, job: Job) -> bool:
        if job.status not in self.statuses:
            return False
        if self.owner_id is not None and job.owner_id != self.owner_id:
            return False
        if self.overdue_at is not None and (
            job.deadline_at is None
            or format_timestamp(job.deadline_at) >= format_timestamp(self.overdue_at)
        ):
            return False
        return self.unchanged_since is None or format_timestamp(job.updated_at) == format_timestamp(
            self.unchanged_since
        )


@dataclass(frozen=True)
class Change:
    """One status change: the new status and its timeline entry, the fields it sets (in
    their JSON form) and those it removes. The version goes up by one."""

    status: JobStatus
    entry: StatusChange
    fields: Mapping[str, Any] = field(default_factory=dict)
    remove: Sequence[str] = ()


class Refused(Exception):
    """The condition did not hold; ``current`` is the record as it is (None: no record)."""

    def __init__(self, current: Job | None) -> None:
        self.current = current
        super().__init__("the change's condition did not hold")


@dataclass(frozen=True)
class OwnerQuery:
    """An owner's top-level jobs, or the children of their batch ``parent_id``."""

    owner_id: str
    parent_id: str | None = None
    status: JobStatus | None = None
    job_type: JobType | None = None


class JobTable(Protocol):
    def put_new(self, job: Job) -> Job | None:
        """Put ``job`` if its id is free; return the existing record otherwise."""
        ...

    def get(self, job_id: str) -> Job | None:
        """A strongly consistent read."""
        ...

    def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        """The records of ``job_ids`` that exist, in that order."""
        ...

    def change(self, job_id: str, change: Change, expect: Expect) -> Job:
        """Write ``change`` if ``expect`` holds (else :class:`Refused`); the new record."""
        ...

    def add_webhook_attempt(
        self, job_id: str, attempt: WebhookAttempt, state: WebhookDeliveryState
    ) -> Job:
        """Append a delivery attempt and set where the webhook stands (no status change)."""
        ...

    def count_child(
        self, parent_id: str, child_id: str, index: int, counter: ChildCounter
    ) -> ChildCounters | None:
        """Count a finished child (``index`` of the batch's URLs) on its batch once (a repeat
        changes nothing); the batch's counters as they now are (None: no such batch)."""
        ...

    def owner_page(self, query: OwnerQuery, *, limit: int, cursor: str | None) -> JobPage:
        """Newest first."""
        ...

    def status_page(
        self,
        status: JobStatus,
        *,
        updated_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> JobPage:
        """Least recently changed first."""
        ...


# ---------------------------------------------------------------------- DynamoDB


def _wire(value: Any) -> dict[str, Any]:
    return attribute_value(to_dynamo(value))


def _plain(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attribute_value(v) for k, v in item.items()}


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
    """The item the table writes for ``job``, in the low-level client's form (with the
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


def _counts(item: Mapping[str, Any]) -> ChildCounters:
    return ChildCounters(
        total=int(item["total"]["N"]),
        **{name: int(item[name]["N"]) for name in ("completed", "failed", "cancelled")},
    )


def job_from_wire_item(item: Mapping[str, Any]) -> Job:
    """A job from an item as the low-level client returns it (``{"S": ...}`` values)."""
    return _job_from_item(item)


def _failure_item(exc: ClientError) -> dict[str, Any] | None:
    """The record as it was, returned by ReturnValuesOnConditionCheckFailure=ALL_OLD."""
    response: Mapping[str, Any] = exc.response
    item = response.get("Item")
    return item if isinstance(item, dict) and item else None


def _job_from_failure(exc: ClientError) -> Job | None:
    item = _failure_item(exc)
    return _job_from_item(item) if item else None


class DynamoJobTable:
    def __init__(self, *, dynamodb: DynamoDBClient, table_name: str) -> None:
        self.db = dynamodb
        self.name = table_name

    def put_new(self, job: Job) -> Job | None:
        try:
            self.db.put_item(
                TableName=self.name,
                Item=job_to_wire_item(job),
                ConditionExpression="attribute_not_exists(job_id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            return _job_from_failure(exc)
        if job.type == "batch" and job.children is not None:
            self._start_counts(job)
        return None

    def _start_counts(self, batch: Job) -> None:
        """The batch's counter item, before any child exists (a crash before it leaves the
        batch counting on its own record's map, as batches made before did)."""
        assert batch.children is not None
        item: dict[str, Any] = {
            "job_id": {"S": batch.job_id + CHILD_COUNTS_SUFFIX},
            CHILD_COUNTS_OF: {"S": batch.job_id},
            "total": {"N": str(batch.children.total)},
            **{name: {"N": "0"} for name in ("completed", "failed", "cancelled")},
        }
        if JOBS.ttl_attribute and batch.ttl is not None:
            item[JOBS.ttl_attribute] = {"N": str(batch.ttl)}
        with contextlib.suppress(self.db.exceptions.ConditionalCheckFailedException):
            self.db.put_item(
                TableName=self.name, Item=item, ConditionExpression="attribute_not_exists(job_id)"
            )

    def get(self, job_id: str) -> Job | None:
        out = self.db.get_item(
            TableName=self.name, Key={"job_id": {"S": job_id}}, ConsistentRead=True
        )
        if "Item" not in out:
            return None
        return self._with_counts([_job_from_item(out["Item"])])[0]

    def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        jobs = [_job_from_item(item) for item in batch_get_jobs(self.db, self.name, job_ids)]
        return self._with_counts(jobs)

    def _with_counts(self, jobs: list[Job]) -> list[Job]:
        """Batches with their children's counts as they stand (from each batch's counter
        item, which a cancelled batch's children go on counting in; a batch without one
        keeps the counts on its record)."""
        batches = [
            j.job_id + CHILD_COUNTS_SUFFIX
            for j in jobs
            if j.type == "batch" and j.children is not None
        ]
        if not batches:
            return jobs
        counts = {
            str(item[CHILD_COUNTS_OF]["S"]): _counts(item)
            for item in batch_get_jobs(self.db, self.name, batches)
            if CHILD_COUNTS_OF in item
        }
        return [
            j.model_copy(update={"children": counts[j.job_id]}) if j.job_id in counts else j
            for j in jobs
        ]

    def change(self, job_id: str, change: Change, expect: Expect) -> Job:
        names = {
            "#status": "status",
            "#version": "version",
            "#updated": "updated_at",
            "#timeline": "timeline",
            "#id": "job_id",
            "#status_key": JOBS_BY_STATUS.partition_key,
        }
        values: dict[str, Any] = {
            ":to": {"S": change.status},
            ":one": {"N": "1"},
            ":now": _wire(format_timestamp(change.entry.at)),
            ":entry": _wire([change.entry.model_dump(mode="json")]),
            ":status_key": {"S": shard_key(change.status, job_id)},
        }
        sets = [
            "#status = :to",
            "#status_key = :status_key",
            "#version = #version + :one",
            "#updated = :now",
            "#timeline = list_append(#timeline, :entry)",
        ]
        for i, (name, value) in enumerate(change.fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = _wire(value)
            sets.append(f"#f{i} = :f{i}")
        expression = "SET " + ", ".join(sets)
        if change.remove:
            for i, name in enumerate(change.remove):
                names[f"#r{i}"] = name
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(change.remove)))
        sources = sorted(expect.statuses)
        for i, status in enumerate(sources):
            values[f":s{i}"] = {"S": status}
        condition = f"attribute_exists(#id) AND #status IN ({', '.join(f':s{i}' for i in range(len(sources)))})"
        if expect.owner_id is not None:
            names["#owner"] = "owner_id"
            values[":owner"] = {"S": expect.owner_id}
            condition += " AND #owner = :owner"
        if expect.overdue_at is not None:
            names["#deadline"] = "deadline_at"
            values[":overdue"] = {"S": format_timestamp(expect.overdue_at)}
            condition += " AND #deadline < :overdue"
        if expect.unchanged_since is not None:
            values[":seen"] = {"S": format_timestamp(expect.unchanged_since)}
            condition += " AND #updated = :seen"
        try:
            out = self.db.update_item(
                TableName=self.name,
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
            raise Refused(_job_from_failure(exc)) from None
        return _job_from_item(out["Attributes"])

    def add_webhook_attempt(
        self, job_id: str, attempt: WebhookAttempt, state: WebhookDeliveryState
    ) -> Job:
        out = self.db.update_item(
            TableName=self.name,
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

    def count_child(
        self, parent_id: str, child_id: str, index: int, counter: ChildCounter
    ) -> ChildCounters | None:
        try:
            out = self.db.update_item(
                TableName=self.name,
                Key={"job_id": {"S": parent_id + CHILD_COUNTS_SUFFIX}},
                UpdateExpression="ADD #counter :one, #counted :index",
                ConditionExpression="attribute_exists(#total) AND NOT contains(#counted, :n)",
                ExpressionAttributeNames={
                    "#counter": counter,
                    "#counted": "counted",
                    "#total": "total",
                },
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":index": {"NS": [str(index)]},
                    ":n": {"N": str(index)},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return _counts(out["Attributes"])
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            counted_before = _failure_item(exc)
            if counted_before:  # a repeat: the counts as they are
                return _counts(counted_before)
        return self._count_on_record(parent_id, child_id, counter)

    def _count_on_record(
        self, parent_id: str, child_id: str, counter: ChildCounter
    ) -> ChildCounters | None:
        """A batch without a counter item (made before they existed) counts on its record."""
        try:
            out = self.db.update_item(
                TableName=self.name,
                Key={"job_id": {"S": parent_id}},
                UpdateExpression="SET #outcomes.#child = :outcome ADD #children.#counter :one",
                ConditionExpression="attribute_exists(#outcomes) AND attribute_not_exists(#outcomes.#child)",
                ExpressionAttributeNames={
                    "#outcomes": CHILD_OUTCOMES,
                    "#child": child_id,
                    "#children": "children",
                    "#counter": counter,
                },
                ExpressionAttributeValues={":outcome": {"S": counter}, ":one": {"N": "1"}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            item = out["Attributes"]
        except ClientError as exc:
            if _code(exc) != "ConditionalCheckFailedException":
                raise
            failed_item = _failure_item(exc)
            if not failed_item:
                return None
            item = failed_item  # counted before: the batch may still need closing
        return _job_from_item(item).children

    def owner_page(self, query: OwnerQuery, *, limit: int, cursor: str | None) -> JobPage:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        filters = ["attribute_not_exists(parent_id)"]
        if query.parent_id is not None:  # a cursor is a place in the owner's index: any filter
            names["#parent"] = "parent_id"
            values[":parent"] = {"S": query.parent_id}
            filters = ["#parent = :parent"]
        if query.status is not None:
            names["#status"] = "status"
            values[":status"] = {"S": query.status}
            filters.append("#status = :status")
        if query.job_type is not None:
            names["#type"] = "type"
            values[":type"] = {"S": query.job_type}
            filters.append("#type = :type")
        page = self._sharded_page(
            JOBS_BY_OWNER,
            query.owner_id,
            limit=limit,
            cursor=cursor,
            newest_first=True,
            filters=" AND ".join(filters),
            names=names,
            values=values,
        )
        return JobPage(self._with_counts(page.jobs), page.next_cursor)

    def status_page(
        self,
        status: JobStatus,
        *,
        updated_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> JobPage:
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
        _check_limit(limit)
        positions = _decode_cursor(cursor, index, value) if cursor else None
        page = query_sharded(
            self.db,
            table=self.name,
            index=index,
            value=value,
            limit=limit,
            newest_first=newest_first,
            positions=positions,
            **query,
        )
        jobs = self.get_many([item[JOBS.partition_key]["S"] for item in page.items])
        next_cursor = (
            _encode_cursor(index, value, page.positions) if page.positions is not None else None
        )
        return JobPage(jobs=jobs, next_cursor=next_cursor)


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}")


def _scope(index: Index, value: str) -> str:
    """Which listing a cursor belongs to (so one owner's cursor is refused in another's)."""
    return hashlib.blake2b(f"{index.name}\0{value}".encode(), digest_size=8).hexdigest()


def _encode(cursor: Mapping[str, Any]) -> str:
    raw = json.dumps(cursor, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, scope: str) -> Any:
    """The position a cursor holds, if it is one of ours for the listing ``scope``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise InvalidCursor() from None
    if not isinstance(decoded, dict) or set(decoded) != {"l", "p"} or decoded["l"] != scope:
        raise InvalidCursor()
    return decoded["p"]


def _encode_cursor(index: Index, value: str, positions: Sequence[ShardPosition]) -> str:
    return _encode({"l": _scope(index, value), "p": list(positions)})


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
    positions = _decode(cursor, _scope(index, value))
    try:
        return check_positions(positions, index, value, _check_cursor_value)
    except (ValueError, RecursionError):
        raise InvalidCursor() from None


# ---------------------------------------------------------------------- memory


class MemoryJobTable:
    """The same records and conditions in memory (one lock: every change is atomic)."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._children: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()

    def put_new(self, job: Job) -> Job | None:
        with self._lock:
            if job.job_id in self._jobs:
                return self._jobs[job.job_id]
            self._jobs[job.job_id] = Job.from_item(job.to_item())  # what a write would keep
            if job.type == "batch":
                self._children[job.job_id] = {}
            return None

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def get_many(self, job_ids: Sequence[str]) -> list[Job]:
        with self._lock:
            return [self._jobs[i] for i in job_ids if i in self._jobs]

    def change(self, job_id: str, change: Change, expect: Expect) -> Job:
        with self._lock:
            current = self._jobs.get(job_id)
            if current is None or not expect.holds(current):
                raise Refused(current)
            data = current.model_dump(mode="json")
            for name in change.remove:
                data.pop(name, None)
            data.update(change.fields)
            data["status"] = change.status
            data["version"] = current.version + 1
            data["updated_at"] = format_timestamp(change.entry.at)
            data["timeline"] = [*data["timeline"], change.entry.model_dump(mode="json")]
            job = Job.from_item(data)
            self._jobs[job_id] = job
            return job

    def add_webhook_attempt(
        self, job_id: str, attempt: WebhookAttempt, state: WebhookDeliveryState
    ) -> Job:
        with self._lock:
            current = self._jobs.get(job_id)
            if current is None or current.webhook is None:
                raise Refused(current)
            webhook = current.webhook.model_copy(
                update={"state": state, "attempts": [*current.webhook.attempts, attempt]}
            )
            job = Job.from_item(
                {**current.model_dump(mode="json"), "webhook": webhook.model_dump(mode="json")}
            )
            self._jobs[job_id] = job
            return job

    def count_child(
        self, parent_id: str, child_id: str, index: int, counter: ChildCounter
    ) -> ChildCounters | None:
        with self._lock:
            parent = self._jobs.get(parent_id)
            if parent is None:
                return None
            outcomes = self._children.get(parent_id)
            if outcomes is None or child_id in outcomes or parent.children is None:
                return parent.children
            outcomes[child_id] = counter
            data = parent.model_dump(mode="json")
            data["children"][counter] += 1
            job = Job.from_item(data)
            self._jobs[parent_id] = job
            return job.children

    def owner_page(self, query: OwnerQuery, *, limit: int, cursor: str | None) -> JobPage:
        def wanted(job: Job) -> bool:
            return (
                job.owner_id == query.owner_id
                and job.parent_id == query.parent_id
                and query.status in (None, job.status)
                and query.job_type in (None, job.type)
            )

        with self._lock:
            jobs = sorted(
                filter(wanted, self._jobs.values()),
                key=lambda j: (j.created_at, j.job_id),
                reverse=True,
            )
        return _memory_page(jobs, f"owner\0{query.owner_id}", limit, cursor)

    def status_page(
        self,
        status: JobStatus,
        *,
        updated_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> JobPage:
        with self._lock:
            jobs = sorted(
                (
                    j
                    for j in self._jobs.values()
                    if j.status == status
                    and (updated_before is None or j.updated_at < updated_before)
                ),
                key=lambda j: (j.updated_at, j.job_id),
            )
        return _memory_page(jobs, f"status\0{status}", limit, cursor)


def _memory_page(jobs: list[Job], listing: str, limit: int, cursor: str | None) -> JobPage:
    """A page of an ordered listing; its cursor is the offset of the next job."""
    _check_limit(limit)
    scope = hashlib.blake2b(listing.encode(), digest_size=8).hexdigest()
    start = _decode(cursor, scope) if cursor else 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise InvalidCursor()
    page = jobs[start : start + limit]
    more = start + limit < len(jobs)
    return JobPage(
        jobs=page, next_cursor=_encode({"l": scope, "p": start + limit}) if more else None
    )
