"""Spend counters in the usage table: race-free, one atomic ADD per recorded cost.

Items (``pk`` / ``sk``), each on a partition key of its own kind so that no key takes every
model call's writes (a partition key takes at most 1,000 writes a second):

- ``spend#<stage>`` / ``month#2026-11`` and ``spend#<stage>#1`` .. ``#3`` / ``month#2026-11``:
  the stage's model spend this month, in :data:`SPEND_SHARDS` items on as many partition
  keys (see :class:`BudgetGuard`). Shard 0 keeps the key the single item had before;
- ``spend#<stage>#owner#<owner>`` / ``month#2026-11`` and ``day#2026-11-29``: one owner's
  spend this month and that day, on the owner's own partition key.

Written by earlier versions, and still read: month shards as sort keys ``month#2026-11#1``
.. ``#3`` under ``spend#<stage>`` (moved to their own keys by the month's first
reservation), owner counters ``owner#<owner>#2026-11[-29]`` under ``spend#<stage>`` (added
in by readers, never written again).

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
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from atlas_codex.ground.values import utcnow

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
                self._add(self.month_key(month_of(now), shard), part, now, also="committed")
        self.add_owner(owner_id, amount, when=now, periods=(month_of(now),))

    def month_key(self, month: str, shard: int = 0) -> dict[str, Any]:
        """One of the month's spend items, each shard on its own partition key (shard 0 is
        the key a single item had before)."""
        pk = self.pk + (f"#{shard}" if shard else "")
        return {"pk": {"S": pk}, "sk": {"S": f"month#{month}"}}

    def earlier_month_key(self, month: str, shard: int) -> dict[str, Any]:
        """Where an earlier version kept shard ``shard`` (>= 1): a sort key under shard 0's
        partition key."""
        return {"pk": {"S": self.pk}, "sk": {"S": f"month#{month}#{shard}"}}

    def month_items(self, month: str) -> list[dict[str, Any]]:
        """Every spend item of ``month``, those an earlier version wrote too (one strongly
        consistent batch read)."""
        keys = [self.month_key(month, shard) for shard in range(SPEND_SHARDS)]
        keys += [self.earlier_month_key(month, shard) for shard in range(1, SPEND_SHARDS)]
        return self._get_all(keys)

    def _get_all(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        wanted: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
        for _ in range(8):  # unprocessed keys (throttling) are asked for again
            out = self.db.batch_get_item(RequestItems=wanted)
            found += out.get("Responses", {}).get(self.table, [])
            wanted = dict(out.get("UnprocessedKeys") or {})
            if not wanted:
                return found
            time.sleep(0.05)
        raise RuntimeError("the usage table did not return the month's spend items")

    def owner_key(self, owner_id: str, period: str) -> dict[str, Any]:
        """An owner's counter for a month (``YYYY-MM``) or a day (``YYYY-MM-DD``)."""
        kind = "day" if len(period) > len("YYYY-MM") else "month"
        return {"pk": {"S": f"{self.pk}#{kind}#owner#{owner_id}"}, "sk": {"S": f"{kind}#{period}"}}

    def add_owner(
        self, owner_id: str, amount: Decimal, *, when: datetime, periods: tuple[str, ...]
    ) -> None:
        """Add to an owner's counters, one per period (``YYYY-MM`` or ``YYYY-MM-DD``)."""
        for period in periods:
            self._add(self.owner_key(owner_id, period), nanos(amount), when)

    def _add(
        self, key: dict[str, Any], amount: int, when: datetime, also: str | None = None
    ) -> None:
        expires = int(when.timestamp()) + TTL_DAYS * 86400
        expression = "ADD usd_nanos :n" + (f", {also}_nanos :n" if also else "")
        self.db.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression=f"{expression} SET #ttl = if_not_exists(#ttl, :ttl)",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={
                ":n": {"N": str(amount)},
                ":ttl": {"N": str(expires)},
            },
        )

    def owner_day_spend(self, owner_id: str, day: str) -> Decimal:
        """One owner's model spend on one day (``YYYY-MM-DD``), with what an earlier version
        counted under the stage's key."""
        earlier = {"pk": {"S": self.pk}, "sk": {"S": f"owner#{owner_id}#{day}"}}
        items = self._get_all([self.owner_key(owner_id, day), earlier])
        return usd(sum(_read(item, "usd") for item in items))

    def month_spend(self, *, when: datetime | None = None) -> Decimal:
        items = self.month_items(month_of(when or utcnow()))
        return usd(sum(_read(item, "usd") for item in items))

    def owners(self, *, when: datetime | None = None) -> list[OwnerSpend]:
        """Every owner's spend this month, biggest first (an operator's read: one scan of
        the usage table, whose items are keys, secrets and counters, not jobs)."""
        month = month_of(when or utcnow())
        totals: dict[str, int] = {}
        owner_pk = f"{self.pk}#month#owner#"
        kwargs: dict[str, object] = {}
        while True:
            page = self.db.scan(
                TableName=self.table,
                FilterExpression="begins_with(pk, :spend)",
                ExpressionAttributeValues={":spend": {"S": self.pk}},
                **kwargs,  # type: ignore[arg-type]
            )
            for item in page["Items"]:
                pk, sk = item["pk"]["S"], item["sk"]["S"]
                if pk.startswith(owner_pk) and sk == f"month#{month}":
                    owner = pk.removeprefix(owner_pk)
                elif pk == self.pk and sk.startswith("owner#"):  # an earlier version's
                    owner, _, item_month = sk.removeprefix("owner#").rpartition("#")
                    if item_month != month:
                        continue
                else:
                    continue
                totals[owner] = totals.get(owner, 0) + _read(item, "usd")
            if "LastEvaluatedKey" not in page:
                break
            kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
        spends = [OwnerSpend(owner, usd(total)) for owner, total in totals.items() if owner]
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
            self._adopt_earlier_shards(month)
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

    def _adopt_earlier_shards(self, month: str) -> None:
        """Move the month's shards an earlier version kept as sort keys under shard 0's
        partition key to their own keys, each once: a conditional update empties the earlier
        item only if nobody changed it since it was read, and only then is its amount added to
        its shard (two processes moving at once move it once)."""
        for shard in range(1, SPEND_SHARDS):
            key = self.ledger.earlier_month_key(month, shard)
            item = self.ledger.db.get_item(
                TableName=self.ledger.table, Key=key, ConsistentRead=True
            ).get("Item", {})
            names = [n for n in ("usd_nanos", "reserved_nanos", "committed_nanos") if n in item]
            amounts = {n: int(item[n]["N"]) for n in names}
            if not any(amounts.values()):
                continue
            try:
                self.ledger.db.update_item(
                    TableName=self.ledger.table,
                    Key=key,
                    UpdateExpression="ADD " + ", ".join(f"{n} :minus_{n}" for n in names),
                    ConditionExpression=" AND ".join(f"{n} = :was_{n}" for n in names),
                    ExpressionAttributeValues={
                        **{f":minus_{n}": {"N": str(-amounts[n])} for n in names},
                        **{f":was_{n}": item[n] for n in names},
                    },
                )
            except self.ledger.db.exceptions.ConditionalCheckFailedException:
                continue  # changed or moved meanwhile: whoever did it moves it
            self.ledger.db.update_item(
                TableName=self.ledger.table,
                Key=self.ledger.month_key(month, shard),
                UpdateExpression="ADD " + ", ".join(f"{n} :{n}" for n in names),
                ExpressionAttributeValues={f":{n}": {"N": str(amounts[n])} for n in names},
            )

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
