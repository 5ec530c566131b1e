"""Each owner's webhook signing secrets, in the usage table, created on first use.

Rotation puts a new secret first and keeps the previous ones signing until they expire,
so receivers can switch without losing a delivery.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING, Final

from atlas_codex.notifications.webhooks.signing import new_secret

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROTATION_OVERLAP_S: Final = 24 * 3600
_SK: Final = "webhook-secrets"


class WebhookSecretStore:
    def __init__(self, *, dynamodb: DynamoDBClient, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    def _key(self, owner_id: str) -> dict[str, dict[str, str]]:
        return {"pk": {"S": f"owner#{owner_id}"}, "sk": {"S": _SK}}

    def active(self, owner_id: str, *, now: float | None = None) -> list[str]:
        """The owner's secrets that still sign, newest first; one is made on first use."""
        now = time.time() if now is None else now
        item = self.db.get_item(
            TableName=self.table, Key=self._key(owner_id), ConsistentRead=True
        ).get("Item")
        if item is None:
            with contextlib.suppress(
                self.db.exceptions.ConditionalCheckFailedException
            ):  # a concurrent first use
                self._write(
                    owner_id,
                    [{"secret": new_secret(), "expires_at": None}],
                    condition="attribute_not_exists(pk)",
                )
            item = self.db.get_item(
                TableName=self.table, Key=self._key(owner_id), ConsistentRead=True
            )["Item"]
        entries = json.loads(item["secrets"]["S"])
        return [e["secret"] for e in entries if e["expires_at"] is None or e["expires_at"] > now]

    def rotate(self, owner_id: str, *, overlap_s: int = ROTATION_OVERLAP_S) -> str:
        """Make a new secret; the old ones keep signing for ``overlap_s`` seconds."""
        now = time.time()
        self.active(owner_id)
        item = self.db.get_item(TableName=self.table, Key=self._key(owner_id), ConsistentRead=True)[
            "Item"
        ]
        entries = [
            e
            for e in json.loads(item["secrets"]["S"])
            if e["expires_at"] is None or e["expires_at"] > now
        ]
        for entry in entries:
            if entry["expires_at"] is None:
                entry["expires_at"] = now + overlap_s
        secret = new_secret()
        self._write(owner_id, [{"secret": secret, "expires_at": None}, *entries])
        return secret

    def _write(
        self, owner_id: str, entries: list[dict[str, object]], condition: str | None = None
    ) -> None:
        kwargs = {"ConditionExpression": condition} if condition else {}
        self.db.put_item(
            TableName=self.table,
            Item={**self._key(owner_id), "secrets": {"S": json.dumps(entries)}},
            **kwargs,  # type: ignore[arg-type]
        )
