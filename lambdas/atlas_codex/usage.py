"""Spend counters in the usage table: race-free, one atomic ADD per recorded cost.

Items (``pk``, ``sk``):

- ``spend#<stage>`` / ``month#2026-11`` and ``month#2026-11#1`` .. ``#3``: the stage's model
  spend this month, in :data:`SPEND_SHARDS` items (see :class:`BudgetGuard`);
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

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from atlas_codex.values import utcnow

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TTL_DAYS: Final = 400
"""Spend items outlive a year, for month-over-month comparisons."""
SPEND_SHARDS: Final = 4
"""The stage's month spend is kept in this many items, each holding an equal share of the
budget: every model call writes its month twice (reserve, settle), and one item takes at
most 1,000 writes a second (docs/CAPACITY.md)."""


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


def split(amount_nanos: int, parts: int) -> list[int]:
    """``amount_nanos`` in ``parts`` integer parts as equal as they can be (the first ones
    take the remainder)."""
    base, extra = divmod(amount_nanos, parts)
    return [base + (1 if n < extra else 0) for n in range(parts)]


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
        # Each month item's ``committed`` (spent + reserved) is what reservations check: the
        # cost is spread evenly, so no item passes its share of the budget before the month.
        for shard, part in enumerate(split(nanos(amount), SPEND_SHARDS)):
            if part:
                self._add(
                    self.month_key(month_of(now), shard),
                    Decimal(part) / NANOS_PER_USD,
                    now,
                    also="committed",
                )
        self.add_owner(owner_id, amount, when=now, periods=(month_of(now),))

    def month_key(self, month: str, shard: int = 0) -> dict[str, Any]:
        """One of the month's spend items (shard 0 is the key a single item had before)."""
        sk = f"month#{month}" + (f"#{shard}" if shard else "")
        return {"pk": {"S": self.pk}, "sk": {"S": sk}}

    def month_items(self, month: str) -> list[dict[str, Any]]:
        """Every spend item of ``month`` (one strongly consistent query)."""
        out = self.db.query(
            TableName=self.table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :month)",
            ExpressionAttributeValues={
                ":pk": {"S": self.pk},
                ":month": {"S": f"month#{month}"},
            },
            ConsistentRead=True,
        )
        return list(out.get("Items", []))

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
        items = self.month_items(month_of(when or utcnow()))
        return usd(sum(_read(item, "usd") for item in items))

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
    parts: tuple[tuple[int, int], ...] = ()
    """Where it is held: (shard, nano-dollars) for each month item it took room in (empty:
    all of it in shard 0)."""

    def held(self) -> Sequence[tuple[int, int]]:
        return self.parts or ((0, nanos(self.usd)),)


def dollars(amount: Decimal) -> str:
    """A budget figure as a person reads it: cents, or tenths of a cent below a dollar."""
    return f"${amount:.2f}" if abs(amount) >= 1 else f"${amount:.4f}"


class BudgetGuard:
    """Reserve a call's worst case before it, settle the actual cost after it.

    The month's spend is :data:`SPEND_SHARDS` items, each allowed an equal share of the
    limit; each carries ``usd`` (spent), ``reserved`` and ``committed`` (their sum). A
    reservation is one conditional update of one item, ``committed <= share - worst_case``,
    starting at a random item and taking room in the next ones when the first has too little:
    no item ever passes its share, so concurrent reservations can never together pass the
    limit. Settling replaces each part of a reservation by its part of the actual cost
    (``commit``) or gives it back (``release``), so nothing leaks and no item passes its share.
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
        self.shares = split(nanos(self.limit), SPEND_SHARDS)
        self.now = now
        self._moved: set[str] = set()
        """Months whose single decimal item (written before the shards) this process has
        seen moved: the move must come before any reservation, or the other shards would not
        know of that month's spend."""

    def spent(self) -> Decimal:
        """What this month has spent of the budget (one query of the month's items)."""
        return self.ledger.month_spend(when=self.now())

    def reserve(self, usd_amount: Decimal) -> Reservation:
        month = month_of(self.now())
        if usd_amount > self.limit:
            raise BudgetExceeded(
                f"a call that may cost ${usd_amount:.4f} cannot fit the monthly budget of "
                f"{dollars(self.limit)}"
            )
        worst = nanos(usd_amount)
        if month not in self._moved:
            self._to_nanos(month)
            self._moved.add(month)
        first = random.randrange(SPEND_SHARDS)  # noqa: S311 - spreading load, not a secret
        order = [(first + n) % SPEND_SHARDS for n in range(SPEND_SHARDS)]
        taken: list[tuple[int, int]] = []
        left = worst
        for shard in order:
            if left == 0:
                break
            got = self._take(month, shard, min(left, self.shares[shard]))
            if got:
                taken.append((shard, got))
                left -= got
        if left == 0:
            return Reservation(month=month, usd=usd(worst), parts=tuple(taken))
        for shard, part in taken:  # not enough room in all the items together: give it back
            self._settle(month, shard, held=part, spent=0)
        spent = self.ledger.month_spend(when=self.now())
        raise BudgetExceeded(
            f"the monthly model budget of {dollars(self.limit)} would be exceeded "
            f"({dollars(spent)} spent this month, this call may cost up to ${usd_amount:.4f})"
        )

    def _take(self, month: str, shard: int, want: int) -> int:
        """Reserve ``want`` nanos in one month item, or, when it has less room, what room it
        has (a read first); 0 when it has none."""
        attempt = want
        for _ in range(3):
            if attempt <= 0:
                return 0
            if self._hold(month, shard, attempt):
                return attempt
            room = self.shares[shard] - self._committed(month, shard)
            if room >= attempt:  # the room changed meanwhile: try the same again
                continue
            attempt = min(room, want)
        return 0

    def _hold(self, month: str, shard: int, amount: int) -> bool:
        key = self.ledger.month_key(month, shard)
        for _ in range(2):  # a second time after moving a decimal month item to nanos
            try:
                self.ledger.db.update_item(
                    TableName=self.ledger.table,
                    Key=key,
                    UpdateExpression="ADD reserved_nanos :est, committed_nanos :est",
                    ConditionExpression=(
                        "attribute_not_exists(committed) AND "
                        "(attribute_not_exists(committed_nanos) OR committed_nanos <= :room)"
                    ),
                    ExpressionAttributeValues={
                        ":est": {"N": str(amount)},
                        ":room": {"N": str(self.shares[shard] - amount)},
                    },
                )
                return True
            except self.ledger.db.exceptions.ConditionalCheckFailedException:
                if shard != 0 or not self._to_nanos(month):  # another process wrote one
                    return False
        return False

    def _committed(self, month: str, shard: int) -> int:
        item = self.ledger.db.get_item(
            TableName=self.ledger.table,
            Key=self.ledger.month_key(month, shard),
            ConsistentRead=True,
        ).get("Item", {})
        return _read(item, "committed")

    def _to_nanos(self, month: str) -> bool:
        """Move a month item written in decimals (one item, before the shards) to integer
        nanos, spread over the shards, once (True: it was one)."""
        key = self.ledger.month_key(month)
        item = self.ledger.db.get_item(
            TableName=self.ledger.table, Key=key, ConsistentRead=True
        ).get("Item", {})
        legacy = [k for k in ("usd", "reserved", "committed") if k in item]
        if not legacy:
            return False
        # Another worker may move it first: then the condition fails, and that is fine. What
        # was reserved stays in shard 0, where the calls that hold it settle; what was spent
        # is spread like any recorded spend.
        amounts = {k: nanos(Decimal(item[k]["N"])) for k in legacy}
        spent = amounts.get("usd", 0)
        shards = split(spent, SPEND_SHARDS)
        own = {
            k: v - (spent - shards[0] if k in ("usd", "committed") else 0)
            for k, v in amounts.items()
        }
        try:
            self.ledger.db.update_item(
                TableName=self.ledger.table,
                Key=key,
                UpdateExpression="ADD "
                + ", ".join(f"{k}_nanos :{k}" for k in legacy)
                + " REMOVE "
                + ", ".join(legacy),
                ConditionExpression=" AND ".join(f"{k} = :was_{k}" for k in legacy),
                ExpressionAttributeValues={
                    **{f":{k}": {"N": str(own[k])} for k in legacy},
                    **{f":was_{k}": item[k] for k in legacy},
                },
            )
        except self.ledger.db.exceptions.ConditionalCheckFailedException:
            return True
        for shard in range(1, SPEND_SHARDS):
            if shards[shard]:
                self.ledger.db.update_item(
                    TableName=self.ledger.table,
                    Key=self.ledger.month_key(month, shard),
                    UpdateExpression="ADD usd_nanos :n, committed_nanos :n",
                    ExpressionAttributeValues={":n": {"N": str(shards[shard])}},
                )
        return True

    def commit(
        self, reservation: Reservation, actual: Decimal, owner_id: str | None = None
    ) -> None:
        """Replace the reservation by the actual cost (a failed call's usage is billed too),
        each part of it by its share of the cost."""
        held = reservation.held()
        total = sum(part for _, part in held)
        spent = nanos(actual)
        shares = [spent * part // total if total else 0 for _, part in held]
        shares[0] += spent - sum(shares)
        for (shard, part), cost in zip(held, shares, strict=True):
            self._settle(reservation.month, shard, held=part, spent=cost)
        if owner_id is not None and actual > 0:
            now = self.now()
            day = now.strftime("%Y-%m-%d")  # the owner's month and the owner's day
            self.ledger.add_owner(owner_id, actual, when=now, periods=(reservation.month, day))

    def _settle(self, month: str, shard: int, *, held: int, spent: int) -> None:
        self.ledger.db.update_item(
            TableName=self.ledger.table,
            Key=self.ledger.month_key(month, shard),
            UpdateExpression=(
                "ADD usd_nanos :actual, reserved_nanos :release, committed_nanos :delta"
            ),
            ExpressionAttributeValues={
                ":actual": {"N": str(spent)},
                ":release": {"N": str(-held)},
                ":delta": {"N": str(spent - held)},
            },
        )

    def release(self, reservation: Reservation) -> None:
        self.commit(reservation, Decimal(0))

    def state(self) -> dict[str, Decimal]:
        items = self.ledger.month_items(month_of(self.now()))
        return {
            k: usd(sum(_read(item, k) for item in items)) for k in ("usd", "reserved", "committed")
        }
