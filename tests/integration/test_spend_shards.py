"""The month's model spend under a burst of calls: each call's reservation and settlement
land on one of the month's items, spread over all of them instead of one item taking
every write (a DynamoDB item takes at most 1,000 writes a second)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from atlas_codex import aws
from atlas_codex.config import RuntimeConfig
from atlas_codex.usage import SPEND_SHARDS, BudgetGuard, UsageLedger, month_of

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
            writes[params["Key"]["sk"]["S"]] += 1

    db.meta.events.register("before-parameter-build.dynamodb.UpdateItem", count)
    try:
        for n in range(CALLS):
            held = guard.reserve(Decimal("0.01"))
            guard.commit(held, Decimal("0.004"), owner_id=f"owner-{n % 3}")
    finally:
        db.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", count)
    month = month_of(guard.now())
    per_item = [n for key, n in writes.items() if key.startswith(f"month#{month}")]
    assert sum(per_item) == 2 * CALLS  # a reservation and a settlement per call
    assert len(per_item) == SPEND_SHARDS
    # unsharded, one item took all 2 x CALLS; the hottest now takes about 1/SPEND_SHARDS
    assert max(per_item) < 2 * (2 * CALLS / SPEND_SHARDS), per_item
    assert max(per_item) < CALLS, per_item
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
