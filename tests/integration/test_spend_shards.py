"""The month's model spend under a burst of calls: each call's reservation and settlement
land on one of the month's items, each on its own partition key, and each owner's counters
on the owner's key, instead of one partition key taking every write (a partition key takes
at most 1,000 writes a second). Spend an earlier version kept under one key still counts."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from atlas_codex.accounts.usage import (
    SPEND_SHARDS,
    BudgetExceeded,
    BudgetGuard,
    UsageLedger,
    month_of,
)
from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow

CALLS = 200


def test_a_burst_of_model_calls_spreads_its_spend_writes_over_the_month_items(
    config: RuntimeConfig, moto_endpoint: str
) -> None:
    db = aws.dynamodb(moto_endpoint)
    ledger = UsageLedger(dynamodb=db, table_name=config.usage_table, stage="burst")
    guard = BudgetGuard(ledger, monthly_limit_usd=Decimal(1000))
    writes: Counter[str] = Counter()

    def count(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == config.usage_table and "Key" in params:
            writes[params["Key"]["pk"]["S"]] += 1

    db.meta.events.register("before-parameter-build.dynamodb.UpdateItem", count)
    try:
        for n in range(CALLS):
            held = guard.reserve(Decimal("0.01"))
            guard.commit(held, Decimal("0.004"), owner_id=f"owner-{n % 3}")
    finally:
        db.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", count)
    month_keys = {ledger.month_key(month_of(guard.now()), n)["pk"]["S"] for n in range(4)}
    per_month_key = [writes[key] for key in month_keys]
    assert len(month_keys) == SPEND_SHARDS
    assert sum(per_month_key) == 2 * CALLS  # a reservation and a settlement per call
    # on one key, the month took all 2 x CALLS and the owners 2 x CALLS more; now the
    # hottest key takes about 1/SPEND_SHARDS of the month's writes
    assert max(per_month_key) < 2 * (2 * CALLS / SPEND_SHARDS), per_month_key
    owner_keys = set(writes) - month_keys
    assert len(owner_keys) == 3 * 2  # each owner's month and day, on a key each
    assert sum(writes[key] for key in owner_keys) == 2 * CALLS
    assert max(writes.values()) < CALLS, writes
    state = guard.state()
    assert state["usd"] == Decimal("0.004") * CALLS
    assert state["reserved"] == 0


def test_a_call_bigger_than_one_item_s_share_takes_room_in_several(
    config: RuntimeConfig, moto_endpoint: str
) -> None:
    ledger = UsageLedger(
        dynamodb=aws.dynamodb(moto_endpoint), table_name=config.usage_table, stage="big-call"
    )
    guard = BudgetGuard(ledger, monthly_limit_usd=Decimal("1.00"))
    held = guard.reserve(Decimal("0.90"))  # each item holds a quarter of the budget
    assert len(held.parts) == SPEND_SHARDS
    assert guard.state()["committed"] == Decimal("0.90")
    guard.commit(held, Decimal("0.60"))
    state = guard.state()
    assert state == {"usd": Decimal("0.60"), "reserved": 0, "committed": Decimal("0.60")}
    guard.reserve(Decimal("0.40"))  # the rest of the budget, wherever it is left
    assert guard.state()["committed"] == Decimal("1.00")


def test_spend_an_earlier_version_kept_under_one_key_still_counts_and_moves_once(
    config: RuntimeConfig, moto_endpoint: str
) -> None:
    db = aws.dynamodb(moto_endpoint)
    ledger = UsageLedger(dynamodb=db, table_name=config.usage_table, stage="earlier")
    month = month_of(utcnow())
    day = utcnow().strftime("%Y-%m-%d")
    # the earlier layout: shards as sort keys under one partition key, owners beside them
    for shard, spent in ((0, 100), (1, 200), (2, 300)):
        sk = f"month#{month}" + (f"#{shard}" if shard else "")
        db.put_item(
            TableName=config.usage_table,
            Item={
                "pk": {"S": "spend#earlier"},
                "sk": {"S": sk},
                "usd_nanos": {"N": str(spent * 10**6)},
                "reserved_nanos": {"N": "0"},
                "committed_nanos": {"N": str(spent * 10**6)},
            },
        )
    for period in (month, day):
        db.put_item(
            TableName=config.usage_table,
            Item={
                "pk": {"S": "spend#earlier"},
                "sk": {"S": f"owner#o-1#{period}"},
                "usd_nanos": {"N": str(250 * 10**6)},
            },
        )
    assert ledger.month_spend() == Decimal("0.6")
    guard = BudgetGuard(ledger, monthly_limit_usd=Decimal(1))
    guard.commit(guard.reserve(Decimal("0.05")), Decimal("0.05"), owner_id="o-1")
    assert guard.state()["usd"] == Decimal("0.65")
    assert ledger.owner_day_spend("o-1", day) == Decimal("0.30")
    assert [(o.owner_id, o.usd) for o in ledger.owners()] == [("o-1", Decimal("0.30"))]
    # moved to its own key, once: a second guard (another process) moves nothing again
    BudgetGuard(ledger, monthly_limit_usd=Decimal(1)).reserve(Decimal("0.01"))
    assert guard.state()["usd"] == Decimal("0.65")
    earlier = db.get_item(TableName=config.usage_table, Key=ledger.earlier_month_key(month, 2))
    assert earlier["Item"]["committed_nanos"]["N"] == "0"
    with pytest.raises(BudgetExceeded):  # what was spent before still fills the budget
        guard.reserve(Decimal("0.40"))
