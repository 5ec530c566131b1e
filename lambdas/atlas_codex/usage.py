"""Spend counters in the usage table: race-free, one atomic ADD per recorded cost.

Items (``pk``, ``sk``):

- ``spend#<stage>`` / ``month#2026-11``: the stage's model spend this month (USD);
- ``spend#<stage>`` / ``owner#<owner>#2026-11``: one owner's spend this month.

``ADD`` is atomic in DynamoDB, so concurrent workers never lose an increment. Amounts are
stored as decimal strings of DynamoDB numbers (exact, no float drift). The model router
records every call's measured cost here; the health monitor and ``atlas-codex ops budget``
read it against the stage's monthly budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Final

from atlas_codex.jobs.schema import utcnow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TTL_DAYS: Final = 400
"""Spend items outlive a year, for month-over-month comparisons."""


def month_of(when: datetime) -> str:
    return when.strftime("%Y-%m")


@dataclass(frozen=True)
class OwnerSpend:
    owner_id: str
    usd: Decimal


class UsageLedger:
    def __init__(self, *, dynamodb: DynamoDBClient, table_name: str, stage: str) -> None:
        self.db = dynamodb
        self.table = table_name
        self.pk = f"spend#{stage}"

    def record(self, owner_id: str, usd: Decimal | float, *, when: datetime | None = None) -> None:
        """Add one measured cost to the stage's and the owner's month."""
        amount = Decimal(str(usd))
        if amount < 0:
            raise ValueError("a cost is never negative")
        if amount == 0:
            return
        month = month_of(when or utcnow())
        expires = int((when or utcnow()).timestamp()) + TTL_DAYS * 86400
        for sk in (f"month#{month}", f"owner#{owner_id}#{month}"):
            self.db.update_item(
                TableName=self.table,
                Key={"pk": {"S": self.pk}, "sk": {"S": sk}},
                UpdateExpression="ADD usd :usd SET #ttl = if_not_exists(#ttl, :ttl)",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":usd": {"N": str(amount)}, ":ttl": {"N": str(expires)}},
            )

    def month_spend(self, *, when: datetime | None = None) -> Decimal:
        out = self.db.get_item(
            TableName=self.table,
            Key={"pk": {"S": self.pk}, "sk": {"S": f"month#{month_of(when or utcnow())}"}},
            ConsistentRead=True,
        )
        item = out.get("Item")
        return Decimal(item["usd"]["N"]) if item else Decimal(0)

    def owners(self, *, when: datetime | None = None) -> list[OwnerSpend]:
        """Every owner's spend this month, biggest first."""
        month = month_of(when or utcnow())
        spends: list[OwnerSpend] = []
        kwargs: dict[str, object] = {}
        while True:
            page = self.db.query(
                TableName=self.table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :owner)",
                ExpressionAttributeValues={":pk": {"S": self.pk}, ":owner": {"S": "owner#"}},
                **kwargs,  # type: ignore[arg-type]
            )
            for item in page["Items"]:
                owner, _, item_month = item["sk"]["S"].removeprefix("owner#").rpartition("#")
                if owner and item_month == month:
                    spends.append(OwnerSpend(owner, Decimal(item["usd"]["N"])))
            if "LastEvaluatedKey" not in page:
                break
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        return sorted(spends, key=lambda s: s.usd, reverse=True)
