"""Reads of the jobs table's ``by-status`` index for those outside the job store.

The health monitor (oldest job per status, stuck jobs, a sample to validate) and the
operator CLI (jobs by status) read the index through here instead of writing queries of
their own; the job manager's paged listing (with its cursor, for the sweeper) is the other
reader. How the index is keyed comes from the table spec (``tables.JOBS_BY_STATUS``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from atlas_codex.jobs.schema import JobStatus, format_timestamp
from atlas_codex.tables import JOBS_BY_STATUS

MAX_PAGES: Final = 50
"""A scan of one status stops after this many pages (DynamoDB returns up to 1 MB each)."""


@dataclass(frozen=True)
class IndexPage:
    items: list[dict[str, Any]]
    """Key attributes (and the projected ones) in DynamoDB's wire form."""
    last_key: dict[str, Any] | None


class StatusIndex:
    def __init__(self, *, dynamodb: Any, table_name: str) -> None:
        self.db = dynamodb
        self.table = table_name

    def page(
        self,
        status: JobStatus,
        *,
        newest_first: bool = False,
        limit: int | None = None,
        updated_before: datetime | None = None,
        updated_since: datetime | None = None,
        start: dict[str, Any] | None = None,
    ) -> IndexPage:
        """One page of the jobs in ``status``, by their last change."""
        names = {"#s": JOBS_BY_STATUS.partition_key}
        values: dict[str, Any] = {":s": {"S": status}}
        condition = "#s = :s"
        if updated_before is not None or updated_since is not None:
            names["#u"] = str(JOBS_BY_STATUS.sort_key)
        if updated_before is not None:
            values[":before"] = {"S": format_timestamp(updated_before)}
            condition += " AND #u < :before"
        elif updated_since is not None:
            values[":since"] = {"S": format_timestamp(updated_since)}
            condition += " AND #u >= :since"
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": JOBS_BY_STATUS.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": not newest_first,
        }
        if limit is not None:
            query["Limit"] = limit
        if start:
            query["ExclusiveStartKey"] = start
        out = self.db.query(**query)
        return IndexPage(list(out.get("Items", [])), out.get("LastEvaluatedKey"))

    def all_before(self, status: JobStatus, before: datetime) -> Iterator[dict[str, Any]]:
        """Every job in ``status`` unchanged since before ``before`` (up to MAX_PAGES)."""
        start: dict[str, Any] | None = None
        for _ in range(MAX_PAGES):
            page = self.page(status, updated_before=before, start=start)
            yield from page.items
            if page.last_key is None:
                return
            start = page.last_key

    def oldest_change(self, status: JobStatus) -> datetime | None:
        """When the job longest in ``status`` last changed (None: no job is)."""
        page = self.page(status, limit=1)
        if not page.items:
            return None
        updated = page.items[0][str(JOBS_BY_STATUS.sort_key)]["S"]
        return datetime.fromisoformat(updated.replace("Z", "+00:00"))
