"""Key schemas of the DynamoDB tables: the one definition the stacks deploy and the code uses.

The stacks create each table from its :class:`TableSpec`; the job manager, local mode and
the tests read attribute and index names from here, never from a string of their own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from atlas_codex.ground.naming import TableResource


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None
    projection: Literal["ALL", "KEYS_ONLY", "INCLUDE"] = "ALL"
    include: tuple[str, ...] = ()
    """The attributes an ``INCLUDE`` projection copies besides the keys."""
    sharded_from: str | None = None
    """A write-sharded index: its partition key is ``<value of this attribute>#<shard>``
    (:func:`shard_key`), so one value's writes spread over :data:`INDEX_SHARDS` partitions."""


@dataclass(frozen=True)
class TableSpec:
    resource: TableResource
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = ()
    ttl_attribute: str | None = None

    @property
    def key_attributes(self) -> tuple[str, ...]:
        """Every attribute that is a key of the table or an index (all strings)."""
        names = [self.partition_key, *([self.sort_key] if self.sort_key else [])]
        for index in self.indexes:
            names.append(index.partition_key)
            if index.sort_key:
                names.append(index.sort_key)
        return tuple(dict.fromkeys(names))


INDEX_SHARDS: Final = 8
"""How many index partitions one owner's or one status's jobs are spread over.

DynamoDB throttles one partition past 1,000 write units a second. Unsharded, every status
change of every job wrote to one of six ``status`` keys and every job of a client to its one
``owner_id`` key: at a 5x peak over 10 million jobs a day (579 jobs/s) the ``pending`` key
alone took 1,157 writes a second. docs/CAPACITY.md (``make bench``) shows the load per shard."""

JOBS_BY_OWNER: Final = Index(
    "by-owner-shard",
    "owner_key",
    "created_at",
    projection="INCLUDE",
    include=("parent_id", "type", "status"),
    sharded_from="owner_id",
)
"""An owner's jobs, newest first (ISO timestamps of fixed width sort as instants). It holds
the attributes the listing filters on; the jobs themselves are read from the table."""
JOBS_BY_STATUS: Final = Index(
    "by-status-shard",
    "status_key",
    "updated_at",
    projection="INCLUDE",
    include=("deadline_at",),
    sharded_from="status",
)
"""Jobs in one status, oldest change first: the sweeper, the health monitor and ``ops`` read it.

Both job indexes project keys and a few small attributes only: a job's result may be hundreds
of KB, and with ``ALL`` every status change copied it into the index (write units are per KB).
Readers query every shard and merge (``jobs/store/index_reader.py``)."""


def shard_of(job_id: str) -> int:
    """The shard a job's index entries live in: fixed by its id, so it never moves."""
    digest = hashlib.blake2b(job_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % INDEX_SHARDS


def shard_key(value: str, job_id: str) -> str:
    """The partition key of ``job_id``'s entry under ``value`` in a write-sharded index."""
    return f"{value}#{shard_of(job_id)}"


def shard_keys(value: str) -> tuple[str, ...]:
    """Every partition key ``value`` is spread over: what a reader of it queries."""
    return tuple(f"{value}#{shard}" for shard in range(INDEX_SHARDS))


def sharded_keys(item: Mapping[str, object], job_id: str) -> dict[str, str]:
    """The write-sharded index keys of the job item ``item`` (plain values)."""
    return {
        index.partition_key: shard_key(str(item[index.sharded_from]), job_id)
        for index in JOBS.indexes
        if index.sharded_from is not None and index.sharded_from in item
    }


JOBS: Final = TableSpec(
    resource="jobs",
    partition_key="job_id",
    indexes=(JOBS_BY_OWNER, JOBS_BY_STATUS),
    ttl_attribute="ttl",
)
CONNECTIONS_BY_JOB: Final = Index("by-job", "job_id", "connection_id", projection="KEYS_ONLY")
"""Sparse: only subscription items carry ``job_id``."""
CONNECTIONS: Final = TableSpec(
    # sk: "meta" (the connection and its owner) or "job#<job id>" (one subscription).
    resource="connections",
    partition_key="connection_id",
    sort_key="sk",
    indexes=(CONNECTIONS_BY_JOB,),
    ttl_attribute="ttl",
)
IDEMPOTENCY: Final = TableSpec(
    # The attribute names Powertools' DynamoDBPersistenceLayer uses by default.
    resource="idempotency",
    partition_key="id",
    ttl_attribute="expiration",
)
USAGE: Final = TableSpec(
    # Its item kinds, pk / sk, each written by one module:
    #   "spend#<stage>[#1..#3]" / "month#2026-11"         the stage's model spend, in
    #                                                     usage.SPEND_SHARDS partition keys
    #   "spend#<stage>#month#owner#<owner>" / "month#2026-11"
    #   "spend#<stage>#day#owner#<owner>"   / "day#2026-11-29"
    #                                                     an owner's, by month and day (usage.py)
    #   "apikey#<key id>" / "apikey"                       an API key, hashed (auth.py)
    #   "owner#<owner>"   / "webhook-secrets"              webhook signing secrets (webhooks/)
    #   "health#latest"   / "report"                       the last health report (health.py)
    resource="usage",
    partition_key="pk",
    sort_key="sk",
    ttl_attribute="ttl",
)

TABLE_SPECS: Final[tuple[TableSpec, ...]] = (JOBS, CONNECTIONS, IDEMPOTENCY, USAGE)
