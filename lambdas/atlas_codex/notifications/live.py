"""Live status: WebSocket connections, their subscriptions, and the push of status changes.

A connection is one item (``sk = "meta"``) holding its owner; each subscription is an item
``sk = "job#<id>"`` that the sparse by-job index finds. A push to a connection that is gone
(410) removes all of its items.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from botocore.exceptions import ClientError

from atlas_codex.ground.table_specs import CONNECTIONS_BY_JOB
from atlas_codex.ground.values import format_timestamp

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

logger = logging.getLogger(__name__)

CONNECTION_TTL_S: Final = 2 * 3600
"""API Gateway closes a WebSocket connection after two hours at most."""
_META: Final = "meta"


class PushedStatus(Protocol):
    """What a push tells a job's subscribers: every job record answers it, and the push
    reads nothing else of the record."""

    @property
    def job_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def version(self) -> int: ...
    @property
    def correlation_id(self) -> str: ...


class ConnectionStore:
    def __init__(self, *, dynamodb: DynamoDBClient, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    def connect(self, connection_id: str, owner_id: str) -> None:
        self.db.put_item(
            TableName=self.table,
            Item={
                "connection_id": {"S": connection_id},
                "sk": {"S": _META},
                "owner_id": {"S": owner_id},
                "ttl": {"N": str(int(time.time()) + CONNECTION_TTL_S)},
            },
        )

    def owner_of(self, connection_id: str) -> str | None:
        item = self.db.get_item(
            TableName=self.table,
            Key={"connection_id": {"S": connection_id}, "sk": {"S": _META}},
            ConsistentRead=True,
        ).get("Item")
        return item["owner_id"]["S"] if item else None

    def subscribe(self, connection_id: str, job_id: str) -> None:
        self.db.put_item(
            TableName=self.table,
            Item={
                "connection_id": {"S": connection_id},
                "sk": {"S": f"job#{job_id}"},
                "job_id": {"S": job_id},
                "ttl": {"N": str(int(time.time()) + CONNECTION_TTL_S)},
            },
        )

    def disconnect(self, connection_id: str) -> None:
        out = self.db.query(
            TableName=self.table,
            KeyConditionExpression="connection_id = :c",
            ExpressionAttributeValues={":c": {"S": connection_id}},
            ProjectionExpression="connection_id, sk",
        )
        for item in out.get("Items", []):
            self.db.delete_item(
                TableName=self.table, Key={"connection_id": item["connection_id"], "sk": item["sk"]}
            )

    def subscribers(self, job_id: str) -> list[str]:
        out = self.db.query(
            TableName=self.table,
            IndexName=CONNECTIONS_BY_JOB.name,
            KeyConditionExpression="job_id = :j",
            ExpressionAttributeValues={":j": {"S": job_id}},
        )
        return [item["connection_id"]["S"] for item in out.get("Items", [])]


def status_message(job: PushedStatus) -> bytes:
    return json.dumps(
        {
            "type": "job.status",
            "job_id": job.job_id,
            "status": job.status,
            "updated_at": format_timestamp(job.updated_at),
            "version": job.version,
            "correlation_id": job.correlation_id,
        }
    ).encode()


class LivePush:
    """Pushes each status change to the job's subscribers; a gone connection is removed."""

    def __init__(self, *, store: ConnectionStore, management: Any) -> None:
        self.store = store
        self.management = management

    def send(self, connection_id: str, job: PushedStatus) -> bool:
        try:
            self.management.post_to_connection(ConnectionId=connection_id, Data=status_message(job))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "GoneException":
                self.store.disconnect(connection_id)
                return False
            raise
        return True

    def __call__(self, job: PushedStatus) -> None:
        """Best effort: a push that fails is logged, never fails the job's processing."""
        try:
            subscribers = self.store.subscribers(job.job_id)
        except Exception:
            logger.exception("could not read the job's subscribers", extra={"job_id": job.job_id})
            return
        for connection_id in subscribers:
            try:
                self.send(connection_id, job)
            except Exception:
                logger.exception("a status push failed", extra={"connection_id": connection_id})
