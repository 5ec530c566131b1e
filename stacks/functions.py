"""What each function is and what it may touch: the source of every role's policy.

One entry per handler module that exists in ``lambdas/atlas_codex/handlers``; a test checks
that every handler module has an entry and every entry a module. Access is the least each
handler's code needs: named tables (with their indexes), named queues, the bucket, and the
WebSocket connections it may post to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

from atlas_codex.naming import FunctionResource, QueueResource, TableResource

Access = Literal["read", "write"]


@dataclass(frozen=True)
class FunctionSpec:
    name: FunctionResource
    description: str
    tables: dict[TableResource, Access] = field(default_factory=dict)
    sends_to: tuple[QueueResource, ...] = ()
    consumes: QueueResource | None = None
    batch_size: int = 1
    bucket: Access | None = None
    posts_to_connections: bool = False
    reads_queue_metrics: bool = False

    @property
    def handler(self) -> str:
        return f"atlas_codex.handlers.{self.name}.handler"


FUNCTION_SPECS: Final[tuple[FunctionSpec, ...]] = (
    FunctionSpec(
        name="api",
        description="REST API: submits, reads and cancels jobs; runs sync extractions",
        tables={"jobs": "write", "usage": "write", "connections": "read"},
        sends_to=("queue", "webhooks"),
        bucket="write",
        posts_to_connections=True,
    ),
    FunctionSpec(
        name="worker",
        description="Jobs queue consumer: claims, extracts and finishes jobs",
        tables={"jobs": "write", "idempotency": "write", "usage": "write", "connections": "read"},
        sends_to=("queue", "webhooks"),
        consumes="queue",
        batch_size=5,
        bucket="write",
        posts_to_connections=True,
    ),
    FunctionSpec(
        name="webhooks",
        description="Webhook queue consumer: signs and delivers job webhooks",
        tables={"jobs": "write", "usage": "read"},
        sends_to=("webhooks", "webhooks-dlq"),
        consumes="webhooks",
        batch_size=10,
    ),
    FunctionSpec(
        name="websocket",
        description="WebSocket API: connect with an API key, subscribe to a job's status",
        tables={"connections": "write", "usage": "read", "jobs": "read"},
        posts_to_connections=True,
    ),
    FunctionSpec(
        name="health",
        description="Health monitor every 5 minutes: eight checks, stuck-job sweep, metrics",
        tables={"jobs": "write", "usage": "write", "connections": "read"},
        sends_to=("queue", "webhooks"),
        posts_to_connections=True,
        reads_queue_metrics=True,
    ),
)

HEALTH_SCHEDULE_MINUTES: Final = 5

SPECS_BY_NAME: Final = {spec.name: spec for spec in FUNCTION_SPECS}
