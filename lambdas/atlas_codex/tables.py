"""Key schemas of the DynamoDB tables: the one definition the stacks deploy and the code uses.

The stacks create each table from its :class:`TableSpec`; the job manager, local mode and
the tests read attribute and index names from here, never from a string of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from atlas_codex.naming import TableResource


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None
    projection: Literal["ALL", "KEYS_ONLY"] = "ALL"


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


JOBS_BY_OWNER: Final = Index("by-owner", "owner_id", "created_at")
"""An owner's jobs, newest first (ISO timestamps of fixed width sort as instants)."""
JOBS_BY_STATUS: Final = Index("by-status", "status", "updated_at")
"""Jobs in one status, oldest change first: the sweeper and the schema check read it."""

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
    #   "spend#<stage>"   / "month#2026-11"                the stage's model spend (usage.py)
    #   "spend#<stage>"   / "owner#<owner>#2026-11[-29]"   an owner's, by month and day (usage.py)
    #   "apikey#<key id>" / "apikey"                       an API key, hashed (auth.py)
    #   "owner#<owner>"   / "webhook-secrets"              webhook signing secrets (webhooks/)
    #   "health#latest"   / "report"                       the last health report (health.py)
    resource="usage",
    partition_key="pk",
    sort_key="sk",
    ttl_attribute="ttl",
)

TABLE_SPECS: Final[tuple[TableSpec, ...]] = (JOBS, CONNECTIONS, IDEMPOTENCY, USAGE)
