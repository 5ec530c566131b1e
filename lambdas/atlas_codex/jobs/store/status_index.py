"""Reads of the jobs table's ``by-status`` index for those outside the job store.

The health monitor (oldest job per status, stuck jobs, a sample to validate) and the
operator CLI (jobs by status) read the index through here instead of writing queries of
their own; the job manager's paged listing (with its cursor, for the sweeper) is the other
reader. How the index is keyed and sharded comes from the table spec
(``table_specs.JOBS_BY_STATUS``); every page reads all the shards (``jobs/store/index_reader.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from atlas_codex.ground.table_specs import JOBS, JOBS_BY_STATUS
from atlas_codex.ground.values import format_timestamp
from atlas_codex.jobs.store.index_reader import ShardPosition, batch_get_jobs, query_sharded
from atlas_codex.jobs.vocabulary import JobStatus

MAX_PAGES: Final = 50
"""A scan of one status stops after this many pages (DynamoDB returns up to 1 MB each)."""
PAGE_SIZE: Final = 100


@dataclass(frozen=True)
class IndexPage:
    items: list[dict[str, Any]]
    """The index entries in DynamoDB's wire form: the keys, ``updated_at`` and
    ``deadline_at`` (what the index projects; :meth:`StatusIndex.records` reads the rest)."""
    next_start: list[ShardPosition] | None
    """Where the next page starts (None: this was the last)."""


class StatusIndex:
    def __init__(self, *, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    def page(
        self,
        status: JobStatus,
        *,
        newest_first: bool = False,
        limit: int = PAGE_SIZE,
        updated_before: datetime | None = None,
        updated_since: datetime | None = None,
        start: Sequence[ShardPosition] | None = None,
    ) -> IndexPage:
        """One page of the jobs in ``status``, by their last change, over every shard."""
        values: dict[str, Any] = {}
        condition: tuple[str, str] | None = None
        if updated_before is not None:
            values[":before"] = {"S": format_timestamp(updated_before)}
            condition = ("<", ":before")
        elif updated_since is not None:
            values[":since"] = {"S": format_timestamp(updated_since)}
            condition = (">=", ":since")
        page = query_sharded(
            self.db,
            table=self.table,
            index=JOBS_BY_STATUS,
            value=status,
            limit=limit,
            newest_first=newest_first,
            positions=start,
            sort_condition=condition,
            values=values,
        )
        return IndexPage(page.items, page.positions)

    def all_before(self, status: JobStatus, before: datetime) -> Iterator[dict[str, Any]]:
        """Every job in ``status`` unchanged since before ``before`` (up to MAX_PAGES)."""
        start: list[ShardPosition] | None = None
        for _ in range(MAX_PAGES):
            page = self.page(status, updated_before=before, start=start)
            yield from page.items
            if page.next_start is None:
                return
            start = page.next_start

    def oldest_change(self, status: JobStatus) -> datetime | None:
        """When the job longest in ``status`` last changed (None: no job is)."""
        page = self.page(status, limit=1)
        if not page.items:
            return None
        updated = page.items[0][str(JOBS_BY_STATUS.sort_key)]["S"]
        return datetime.fromisoformat(updated.replace("Z", "+00:00"))

    def records(self, entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The whole items of the index ``entries``, in their order (strongly consistent; a
        job deleted since, by its TTL, is left out)."""
        ids = [entry[JOBS.partition_key]["S"] for entry in entries]
        return batch_get_jobs(self.db, self.table, ids)
