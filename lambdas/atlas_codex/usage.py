"""Spend counters in the usage table: race-free, one atomic ADD per recorded cost.

Items (``pk``, ``sk``):

- ``spend#<stage>`` / ``month#2026-11``: the stage's model spend this month (USD);
- ``spend#<stage>`` / ``owner#<owner>#2026-11`` and ``owner#<owner>#2026-11-29``: one
  owner's spend this month and that day.

``ADD`` is atomic in DynamoDB, so concurrent workers never lose an increment. Amounts are
integers of nano-dollars (``usd_nanos``, ``reserved_nanos``, ``committed_nanos``): exact,
and sums of integers stay integers (a decimal ``0.0001 - 0.0001`` came back from the local
emulator as ``0E-8``, which its next ``ADD`` could not parse). Dollars exist only at the
edges (:func:`nanos`, :func:`usd`). Items written before kept decimal ``usd``/``reserved``/
``committed``: readers add them in, and a month item is moved to nanos on its next
reservation. The model router
records every call's measured cost here; the health monitor and ``atlas-codex ops budget``
read it against the stage's monthly budget.
"""

from __future__ import annotations

import contextlib
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


NANOS_PER_USD: Final = 10**9


def nanos(amount: Decimal | float) -> int:
    """Dollars as integer nano-dollars (rounded half up: a cost is never under-counted by
    more than half a nano-dollar)."""
    return int((Decimal(str(amount)) * NANOS_PER_USD).to_integral_value(rounding="ROUND_HALF_UP"))


def usd(amount_nanos: int) -> Decimal:
    return Decimal(amount_nanos) / NANOS_PER_USD


def _read(item: dict[str, Any], name: str) -> int:
    """An item's counter in nanos: the integer attribute, plus a decimal one written before."""
    total = int(item[f"{name}_nanos"]["N"]) if f"{name}_nanos" in item else 0
    if name in item:
        total += nanos(Decimal(item[name]["N"]))
    return total


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
        expression = "ADD usd_nanos :n" + (f", {also}_nanos :n" if also else "")
        self.db.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression=f"{expression} SET #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={
                ":n": {"N": str(nanos(amount))},
                ":ttl": {"N": str(expires)},
            },
        )

    def owner_day_spend(self, owner_id: str, day: str) -> Decimal:
        """One owner's model spend on one day (``YYYY-MM-DD``)."""
        out = self.db.get_item(
            TableName=self.table,
            Key={"pk": {"S": self.pk}, "sk": {"S": f"owner#{owner_id}#{day}"}},
            ConsistentRead=True,
        )
        item = out.get("Item")
        return usd(_read(item, "usd")) if item else Decimal(0)

    def month_spend(self, *, when: datetime | None = None) -> Decimal:
        out = self.db.get_item(
            TableName=self.table,
            Key=self.month_key(month_of(when or utcnow())),
            ConsistentRead=True,
        )
        item = out.get("Item")
        return usd(_read(item, "usd")) if item else Decimal(0)

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
                    spends.append(OwnerSpend(owner, usd(_read(item, "usd"))))
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

    def reserve(self, usd_amount: Decimal) -> Reservation:
        month = month_of(self.now())
        if usd_amount > self.limit:
            raise BudgetExceeded(
                f"a call that may cost ${usd_amount:.4f} cannot fit the monthly budget of "
                f"${self.limit:.2f}"
            )
        worst = nanos(usd_amount)
        for _ in range(2):  # a second time after moving a decimal month item to nanos
            try:
                self.ledger.db.update_item(
                    TableName=self.ledger.table,
                    Key=self.ledger.month_key(month),
                    UpdateExpression="ADD reserved_nanos :est, committed_nanos :est",
                    ConditionExpression=(
                        "attribute_not_exists(committed) AND "
                        "(attribute_not_exists(committed_nanos) OR committed_nanos <= :room)"
                    ),
                    ExpressionAttributeValues={
                        ":est": {"N": str(worst)},
                        ":room": {"N": str(nanos(self.limit) - worst)},
                    },
                )
                return Reservation(month=month, usd=usd(worst))
            except self.ledger.db.exceptions.ConditionalCheckFailedException:
                if not self._to_nanos(month):
                    break
        spent = self.ledger.month_spend(when=self.now())
        raise BudgetExceeded(
            f"the monthly model budget of ${self.limit:.2f} would be exceeded "
            f"(${spent:.2f} spent this month, this call may cost up to ${usd_amount:.4f})"
        )

    def _to_nanos(self, month: str) -> bool:
        """Move a month item written in decimals to integer nanos, once (True: it was one)."""
        key = self.ledger.month_key(month)
        item = self.ledger.db.get_item(
            TableName=self.ledger.table, Key=key, ConsistentRead=True
        ).get("Item", {})
        legacy = [k for k in ("usd", "reserved", "committed") if k in item]
        if not legacy:
            return False
        # Another worker may move it first: then the condition fails, and that is fine.
        with contextlib.suppress(self.ledger.db.exceptions.ConditionalCheckFailedException):
            self.ledger.db.update_item(
                TableName=self.ledger.table,
                Key=key,
                UpdateExpression="ADD "
                + ", ".join(f"{k}_nanos :{k}" for k in legacy)
                + " REMOVE "
                + ", ".join(legacy),
                ConditionExpression=" AND ".join(f"{k} = :was_{k}" for k in legacy),
                ExpressionAttributeValues={
                    **{f":{k}": {"N": str(nanos(Decimal(item[k]["N"])))} for k in legacy},
                    **{f":was_{k}": item[k] for k in legacy},
                },
            )
        return True

    def commit(
        self, reservation: Reservation, actual: Decimal, owner_id: str | None = None
    ) -> None:
        """Replace the reservation by the actual cost (a failed call's usage is billed too)."""
        spent, held = nanos(actual), nanos(reservation.usd)
        self.ledger.db.update_item(
            TableName=self.ledger.table,
            Key=self.ledger.month_key(reservation.month),
            UpdateExpression=(
                "ADD usd_nanos :actual, reserved_nanos :release, committed_nanos :delta"
            ),
            ExpressionAttributeValues={
                ":actual": {"N": str(spent)},
                ":release": {"N": str(-held)},
                ":delta": {"N": str(spent - held)},
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
        return {k: usd(_read(item, k)) for k in ("usd", "reserved", "committed")}
