"""The job table's contract: every lifecycle rule of tests/unit/test_lifecycle.py, run again
with the DynamoDB job table (the emulator) in place of the memory one. The fast tier runs
the rules on the memory table; this keeps that table honest: a behaviour the memory table
has and DynamoDB's has not (or the other way round) fails here."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.jobs.store.table import DynamoJobTable, JobTable
from tests.unit import test_lifecycle as rules

RULES: list[Callable[[], None]] = [
    getattr(rules, name) for name in sorted(dir(rules)) if name.startswith("test_")
]


def test_every_rule_is_run_here() -> None:
    assert len(RULES) >= 15


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__.removeprefix("test_"))
def test_the_rule_holds_on_the_dynamodb_table(
    rule: Callable[[], None], config: RuntimeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[JobTable] = []

    def dynamodb_table() -> JobTable:
        table = DynamoJobTable(
            dynamodb=aws.dynamodb(config.aws_endpoint_url), table_name=config.jobs_table
        )
        made.append(table)
        return table

    monkeypatch.setattr(rules, "new_table", dynamodb_table)
    rule()
    assert made  # the rule's world kept its jobs in DynamoDB
