"""What each function is and what it may touch: the source of every role's policy.

One entry per handler module that exists in ``lambdas/atlas_codex/handlers``; a test checks
that every handler module has an entry and every entry a module. Access is the least each
handler's code needs: named tables (with their indexes), named queues, the bucket, and the
WebSocket connections it may post to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from atlas_codex.ground import limits
from atlas_codex.ground.naming import FunctionResource, QueueResource, TableResource
from atlas_codex.ground.table_specs import JOBS_BY_OWNER, JOBS_BY_STATUS

DynamoAction = Literal["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "BatchGetItem"]
S3Action = Literal["GetObject", "PutObject", "DeleteObject"]


@dataclass(frozen=True)
class TableGrant:
    """What a function does to one table: the item actions on the table itself, and the
    indexes it queries (``dynamodb:Query`` on each)."""

    actions: tuple[DynamoAction, ...] = ()
    indexes: tuple[str, ...] = ()


@dataclass(frozen=True)
class BucketGrant:
    """What a function does under each prefix of the artifacts bucket."""

    results: tuple[S3Action, ...] = ()
    pages: tuple[S3Action, ...] = ()


# What the job rooms do, spelled once (each function below names the rooms it runs):
JOB_STORE: Final = ("GetItem", "PutItem", "UpdateItem")
"""Create, read and every conditional status change of a job."""
BATCH_CLOSE: Final = ("BatchGetItem",)
"""Closing a batch reads its children in one call."""
LIVE_PUSH: Final = TableGrant(actions=("Query", "DeleteItem"), indexes=("by-job",))
"""A status push reads the job's subscribers; a gone connection is removed (its items)."""
RESULTS: Final = ("GetObject", "PutObject", "DeleteObject")
"""A large result is written, read back for a batch or a diff, and removed when refused."""


@dataclass(frozen=True)
class FunctionSpec:
    name: FunctionResource
    description: str
    tables: dict[TableResource, TableGrant] = field(default_factory=dict)
    sends_to: tuple[QueueResource, ...] = ()
    consumes: QueueResource | None = None
    batch_size: int = 1
    bucket: BucketGrant | None = None
    posts_to_connections: bool = False
    reads_queue_metrics: bool = False
    reads_dead_letters: tuple[QueueResource, ...] = ()
    """Dead-letter queues it reads without consuming (sqs:ReceiveMessage only: the messages
    stay for the operators)."""
    reads_openai_key: bool = False
    invokes: tuple[FunctionResource, ...] = ()
    """Functions it invokes synchronously (lambda:InvokeFunction on each, its name in the
    environment)."""
    architecture: Literal["arm64", "x86_64"] | None = None
    """None: the stage's architecture; the browser is built for x86-64 only."""
    code: Literal["runtime", "render"] = "runtime"
    """The runtime asset, or the render asset (the runtime package, built for x86-64, with
    the browser's files)."""

    @property
    def handler(self) -> str:
        return f"atlas_codex.handlers.{self.name}.handler"


FUNCTION_SPECS: Final[tuple[FunctionSpec, ...]] = (
    FunctionSpec(
        name="api",
        description="REST API: submits, reads and cancels jobs; runs sync extractions",
        tables={
            # jobs: the store, an owner's listing, a batch closed by cancelling its last child
            "jobs": TableGrant(actions=(*JOB_STORE, *BATCH_CLOSE), indexes=(JOBS_BY_OWNER.name,)),
            # usage: API keys and the health report (read), webhook secrets (read, create,
            # rotate), model spend of sync jobs (reserve, commit, release; the month's items
            # read together, one batch read, when a reservation is refused or a quote asks)
            "usage": TableGrant(actions=("GetItem", "PutItem", "UpdateItem", "BatchGetItem")),
            "connections": LIVE_PUSH,
        },
        sends_to=("queue", "webhooks"),
        bucket=BucketGrant(results=RESULTS, pages=("GetObject", "PutObject")),
        posts_to_connections=True,
        reads_openai_key=True,
        invokes=("render",),  # a sync job's page built by JavaScript
    ),
    FunctionSpec(
        name="worker",
        description="Jobs queue consumer: claims, extracts and finishes jobs",
        tables={
            "jobs": TableGrant(actions=(*JOB_STORE, *BATCH_CLOSE)),
            # Powertools idempotency: the in-progress record, its result, its removal on error
            "idempotency": TableGrant(actions=("GetItem", "PutItem", "UpdateItem", "DeleteItem")),
            # usage: model spend (reserve, commit, release) and the budget read (the month's
            # spend items, one batch read)
            "usage": TableGrant(actions=("GetItem", "UpdateItem", "BatchGetItem")),
            "connections": LIVE_PUSH,
        },
        sends_to=("queue", "webhooks"),
        consumes="queue",
        batch_size=limits.JOBS_PER_INVOCATION,
        bucket=BucketGrant(results=RESULTS, pages=("GetObject", "PutObject")),
        posts_to_connections=True,
        reads_openai_key=True,
        invokes=("render",),  # pages built by JavaScript
    ),
    FunctionSpec(
        name="webhooks",
        description="Webhook queue consumer: signs and delivers job webhooks",
        tables={
            "jobs": TableGrant(actions=("GetItem", "UpdateItem")),
            # usage: the owner's signing secrets, created on an owner's first webhook
            "usage": TableGrant(actions=("GetItem", "PutItem")),
        },
        sends_to=("webhooks", "webhooks-dlq"),
        consumes="webhooks",
        batch_size=limits.WEBHOOKS_PER_INVOCATION,
    ),
    FunctionSpec(
        name="websocket",
        description="WebSocket API: connect with an API key, subscribe to a job's status",
        tables={
            "connections": TableGrant(actions=("GetItem", "PutItem", "Query", "DeleteItem")),
            "usage": TableGrant(actions=("GetItem",)),
            "jobs": TableGrant(actions=("GetItem",)),
        },
        posts_to_connections=True,
    ),
    FunctionSpec(
        name="health",
        description="Health monitor every 5 minutes: eight checks, stuck-job sweep, metrics",
        tables={
            # jobs: the read check, the schema sample and the sweep (by status), time-outs and
            # re-queues, batches the sweep closes
            "jobs": TableGrant(
                actions=("GetItem", "UpdateItem", "BatchGetItem"), indexes=(JOBS_BY_STATUS.name,)
            ),
            # usage: the month's spend (its items, one batch read), the report (write)
            "usage": TableGrant(actions=("PutItem", "BatchGetItem")),
            "connections": LIVE_PUSH,
        },
        sends_to=("queue", "webhooks"),
        bucket=BucketGrant(results=RESULTS),
        posts_to_connections=True,
        reads_queue_metrics=True,
        # the sweep ends each job whose message was dead-lettered (RUNBOOK)
        reads_dead_letters=("dlq",),
        reads_openai_key=True,
    ),
    # A page's scripts run in it, so it holds nothing else: no table, queue or bucket (its
    # role writes its own logs only).
    FunctionSpec(
        name="render",
        description="Renders one page built by JavaScript in headless Chromium behind the "
        "SSRF proxy",
        architecture="x86_64",
        code="render",
    ),
)

HEALTH_SCHEDULE_MINUTES: Final = 5

SPECS_BY_NAME: Final = {spec.name: spec for spec in FUNCTION_SPECS}
