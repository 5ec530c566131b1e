"""Spend counters in the usage table: race-free, one atomic ADD per recorded cost.

Items (``pk``, ``sk``):

- ``spend#<stage>`` / ``month#2026-11``: the stage's model spend this month (USD);
- ``spend#<stage>`` / ``owner#<owner>#2026-11`` and ``owner#<owner>#2026-11-29``: one
  owner's spend this month and that day.

``ADD`` is atomic in DynamoDB, so concurrent workers never lose an increment. Amounts are
stored as decimal strings of DynamoDB numbers (exact, no float drift). The model router
records every call's measured cost here; the health monitor and ``atlas-codex ops budget``
read it against the stage's monthly budget.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

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
        now = when or utcnow()
        # The month item's ``committed`` (spent + reserved) is what reservations check.
        self._add(self.month_key(month_of(now)), amount, now, also="committed")
        self.add_owner(owner_id, amount, when=now, periods=(month_of(now),))

    def month_key(self, month: str) -> dict[str, Any]:
        return {"pk": {"S": self.pk}, "sk": {"S": f"month#{month}"}}

    def add_owner(
        self, owner_id: str, amount: Decimal, *, when: datetime, periods: tuple[str, ...]
    ) -> None:
        """Add to an owner's counters, one per period (``YYYY-MM`` or ``YYYY-MM-DD``)."""
        for period in periods:
            key = {"pk": {"S": self.pk}, "sk": {"S": f"owner#{owner_id}#{period}"}}
            self._add(key, amount, when)

    def _add(
        self, key: dict[str, Any], amount: Decimal, when: datetime, also: str | None = None
    ) -> None:
        expires = int(when.timestamp()) + TTL_DAYS * 86400
        expression = "ADD usd :usd" + (f", {also} :usd" if also else "")
        self.db.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression=f"{expression} SET #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":usd": {"N": str(amount)}, ":ttl": {"N": str(expires)}},
        )

    def owner_day_spend(self, owner_id: str, day: str) -> Decimal:
        """One owner's model spend on one day (``YYYY-MM-DD``)."""
        out = self.db.get_item(
            TableName=self.table,
            Key={"pk": {"S": self.pk}, "sk": {"S": f"owner#{owner_id}#{day}"}},
            ConsistentRead=True,
        )
        item = out.get("Item")
        return Decimal(item["usd"]["N"]) if item else Decimal(0)

    def month_spend(self, *, when: datetime | None = None) -> Decimal:
        out = self.db.get_item(
            TableName=self.table,
            Key=self.month_key(month_of(when or utcnow())),
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


# ---------------------------------------------------------------------------- budgets


class BudgetExceeded(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Reservation:
    month: str
    usd: Decimal


class BudgetGuard:
    """Reserve a call's worst case before it, settle the actual cost after it.

    The month item carries ``usd`` (spent), ``reserved`` and ``committed`` (their sum). A
    reservation is one conditional update, ``committed <= limit - worst_case``: concurrent
    reservations can never together pass the limit. Settling replaces the reservation by
    the actual cost (``commit``) or gives it back (``release``), so nothing leaks.
    """

    def __init__(
        self,
        ledger: UsageLedger,
        *,
        monthly_limit_usd: Decimal | float,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.ledger = ledger
        self.limit = Decimal(str(monthly_limit_usd))
        self.now = now

    def reserve(self, usd: Decimal) -> Reservation:
        month = month_of(self.now())
        if usd > self.limit:
            raise BudgetExceeded(
                f"a call that may cost ${usd:.4f} cannot fit the monthly budget of ${self.limit:.2f}"
            )
        try:
            self.ledger.db.update_item(
                TableName=self.ledger.table,
                Key=self.ledger.month_key(month),
                UpdateExpression="ADD reserved :est, committed :est",
                ConditionExpression="attribute_not_exists(committed) OR committed <= :room",
                ExpressionAttributeValues={
                    ":est": {"N": str(usd)},
                    ":room": {"N": str(self.limit - usd)},
                },
            )
        except self.ledger.db.exceptions.ConditionalCheckFailedException:
            spent = self.ledger.month_spend(when=self.now())
            raise BudgetExceeded(
                f"the monthly model budget of ${self.limit:.2f} would be exceeded "
                f"(${spent:.2f} spent this month, this call may cost up to ${usd:.4f})"
            ) from None
        return Reservation(month=month, usd=usd)

    def commit(
        self, reservation: Reservation, actual: Decimal, owner_id: str | None = None
    ) -> None:
        """Replace the reservation by the actual cost (a failed call's usage is billed too)."""
        self.ledger.db.update_item(
            TableName=self.ledger.table,
            Key=self.ledger.month_key(reservation.month),
            UpdateExpression="ADD usd :actual, reserved :release, committed :delta",
            ExpressionAttributeValues={
                ":actual": {"N": str(actual)},
                ":release": {"N": str(-reservation.usd)},
                ":delta": {"N": str(actual - reservation.usd)},
            },
        )
        if owner_id is not None and actual > 0:
            now = self.now()
            day = now.strftime("%Y-%m-%d")  # the owner's month and the owner's day
            self.ledger.add_owner(owner_id, actual, when=now, periods=(reservation.month, day))

    def release(self, reservation: Reservation) -> None:
        self.commit(reservation, Decimal(0))

    def state(self) -> dict[str, Decimal]:
        item = self.ledger.db.get_item(
            TableName=self.ledger.table,
            Key=self.ledger.month_key(month_of(self.now())),
            ConsistentRead=True,
        ).get("Item", {})
        return {
            k: Decimal(item[k]["N"]) if k in item else Decimal(0)
            for k in ("usd", "reserved", "committed")
        }
