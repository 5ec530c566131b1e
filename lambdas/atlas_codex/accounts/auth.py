"""API keys: shown once at creation, stored only as a hash, each tied to an owner id.

A key reads ``ack_<key id>_<secret>``. The usage table holds one item per key under
``pk = "apikey#<key id>"`` with the SHA-256 of the whole key (keys carry 256 random bits,
so a fast hash is the right one: there is nothing to brute-force). Lookups are cached per
process for ``CACHE_SECONDS``, which bounds how long a revoked key keeps working.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from atlas_codex.ground.values import format_timestamp, utcnow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_PREFIX: Final = "ack_"
CACHE_SECONDS: Final = 60.0
_KEY_RE: Final = re.compile(r"^ack_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ITEM_SK: Final = "apikey"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    owner_id: str
    name: str
    created_at: str
    revoked: bool


@dataclass(frozen=True)
class IssuedKey:
    key: str
    """The plain key: shown to its owner once, never stored."""
    record: ApiKey


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyStore:
    def __init__(self, *, dynamodb: DynamoDBClient, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def issue(self, owner_id: str, *, name: str = "default") -> IssuedKey:
        key_id = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
        return self.register(
            f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}", owner_id, name=name
        )

    def register(self, key: str, owner_id: str, *, name: str = "default") -> IssuedKey:
        """Store ``key`` (well formed, made by :meth:`issue` once) for ``owner_id``: local mode
        keeps its key across restarts of its emulator this way."""
        match = _KEY_RE.fullmatch(key)
        if match is None:
            raise ValueError("not an API key of this service")
        key_id = match[1]
        record = ApiKey(
            key_id=key_id,
            owner_id=owner_id,
            name=name,
            created_at=format_timestamp(utcnow()),
            revoked=False,
        )
        self.db.put_item(
            TableName=self.table,
            Item={
                "pk": {"S": f"apikey#{key_id}"},
                "sk": {"S": _ITEM_SK},
                "key_hash": {"S": _hash(key)},
                "owner_id": {"S": owner_id},
                "name": {"S": name},
                "created_at": {"S": record.created_at},
                "revoked": {"BOOL": False},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
        return IssuedKey(key=key, record=record)

    def owner_of(self, key: str | None) -> str | None:
        """The owner of a valid, unrevoked key; None for anything else."""
        if not key:
            return None
        match = _KEY_RE.fullmatch(key)
        if match is None:
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        out = self.db.get_item(
            TableName=self.table, Key={"pk": {"S": f"apikey#{match[1]}"}, "sk": {"S": _ITEM_SK}}
        )
        item = out.get("Item")
        owner: str | None = None
        if (
            item
            and not item["revoked"].get("BOOL", True)
            and hmac.compare_digest(item["key_hash"]["S"], _hash(key))
        ):
            owner = item["owner_id"]["S"]
        with self._lock:
            self._cache[key] = (now, owner)
        return owner

    def revoke(self, key_id: str) -> bool:
        """Revoke a key by its id; False when there is no such key."""
        try:
            self.db.update_item(
                TableName=self.table,
                Key={"pk": {"S": f"apikey#{key_id}"}, "sk": {"S": _ITEM_SK}},
                UpdateExpression="SET revoked = :t",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":t": {"BOOL": True}},
            )
        except self.db.exceptions.ConditionalCheckFailedException:
            return False
        with self._lock:
            self._cache.clear()
        return True
