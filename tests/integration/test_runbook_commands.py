"""Every `atlas-codex` command docs/RUNBOOK.md tells a responder to run is run here, as written,
against the local stage on the moto server, in the world its alarm describes (a job failed and
dead-lettered, spend recorded, a key issued, a table restored): a renamed flag, a command that
no longer exists or one that fails on a real stage's data fails this test, not an on-call
night. Commands that need a deployed API (`validate`) are parsed, not run."""

from __future__ import annotations

import json
import re
import shlex
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from atlas_codex.accounts.usage import UsageLedger
from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest, JobError
from atlas_codex_local.cli import build_parser, main
from stacks.guards import RUNBOOK_PATH

RUNBOOK = RUNBOOK_PATH.read_text()
RESTORED = "atlas-codex-jobs-local-restored-202612070700"
NEEDS_AN_API = ("validate",)


def runbook_commands() -> list[str]:
    """Each `atlas-codex ...` command of the runbook, in its order, as a responder copies it:
    from inline code and from the command block (its comments dropped)."""
    found: list[str] = []
    for line in RUNBOOK.splitlines():
        if line.startswith("atlas-codex "):
            found.append(line.split("  #", 1)[0].strip())
        found += re.findall(r"`(atlas-codex [^`]+)`", line)
    return [c for c in dict.fromkeys(found) if c.strip() != "atlas-codex ops ..."]


def variants(command: str) -> list[str]:
    """An optional part (``[--queue webhooks]``) both left out and given."""
    optional = re.search(r"\s\[([^\]]+)\]", command)
    if optional is None:
        return [command]
    without = command[: optional.start()] + command[optional.end() :]
    given = command[: optional.start()] + " " + optional[1] + command[optional.end() :]
    return [*variants(without), *variants(given)]


def filled(command: str, values: dict[str, str]) -> list[str]:
    text = command.replace("$STAGE", "local").replace("$REGION", "us-east-1")
    text = text.replace("atlas-codex-jobs-local-restored-<...>", RESTORED)
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    assert "<" not in text, f"a placeholder this test does not know: {text}"
    return shlex.split(text)[1:]


def test_the_runbook_names_the_commands_a_responder_runs() -> None:
    commands = runbook_commands()
    assert len(commands) >= 12
    for needed in ("ops dlq show", "ops job show", "ops jobs sweep", "ops budget", "migrate"):
        assert any(needed in c for c in commands), needed


def test_every_runbook_command_parses_as_written() -> None:
    parser = build_parser()
    values = {
        "<job id>": "job_x",
        "<key id>": "k1",
        "<owner>": "o-1",
        "<key>": "ack_x",
        "<region>": "us-east-1",
        "<restored table>": RESTORED,
        "s3://<bucket>/restore-<date>.jsonl": "/tmp/restore.jsonl",
        "<that backup>": "/tmp/restore.jsonl",
    }
    for command in runbook_commands():
        for variant in variants(command):
            parser.parse_args(filled(variant, values))  # SystemExit(2) on a wrong flag


@pytest.fixture
def world(
    config: RuntimeConfig, moto_endpoint: str, manager: JobManager, tmp_path: Path
) -> dict[str, str]:
    """What the runbook's alarms describe: a job failed and dead-lettered, one pending, model
    spend this month, a key issued for its owner, a table restored under a new name."""
    request = CreateJobRequest.model_validate({"urls": ["https://example.com/a"]})
    failed = manager.create(owner_id="o-1", request=request, correlation_id="c-rb").job.job_id
    manager.claim(failed, deadline_at=utcnow())
    manager.fail(failed, JobError(code="fetch_failed", message="the site answered 503"))
    manager.create(owner_id="o-1", request=request, correlation_id="c-rb2")
    aws.sqs(moto_endpoint).send_message(
        QueueUrl=config.jobs_dlq_url,
        MessageBody=json.dumps({"job_id": failed, "correlation_id": "c-rb"}),
    )
    UsageLedger(
        dynamodb=aws.dynamodb(moto_endpoint), table_name=config.usage_table, stage="local"
    ).record("o-1", Decimal("3.5"))
    boto3.client("apigateway", endpoint_url=moto_endpoint).create_usage_plan(
        name="atlas-codex-usage-plan-local"
    )
    code = main(
        [
            "ops",
            "keys",
            "create",
            "--owner",
            "o-1",
            "--name",
            "rb",
            "--json",
            "--endpoint-url",
            moto_endpoint,
        ]
    )
    assert code == 0
    db = aws.dynamodb(moto_endpoint)
    db.create_table(
        TableName=RESTORED,
        KeySchema=[{"AttributeName": "job_id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "job_id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    item = db.get_item(TableName=config.jobs_table, Key={"job_id": {"S": failed}})["Item"]
    db.put_item(TableName=RESTORED, Item=item)
    return {"job": failed, "backup": str(tmp_path / "restore.jsonl")}


def test_every_runbook_command_runs_on_the_local_stage(
    world: dict[str, str],
    moto_endpoint: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    keys = main(["ops", "keys", "list", "--json", "--endpoint-url", moto_endpoint])
    assert keys == 0
    key_id = json.loads(capsys.readouterr().out)[0]["key_id"]
    values = {
        "<job id>": world["job"],
        "<key id>": key_id,
        "<owner>": "o-1",
        "<key>": "ack_not_used",
        "<region>": "us-east-1",
        "<restored table>": RESTORED,
        "s3://<bucket>/restore-<date>.jsonl": world["backup"],
        "<that backup>": world["backup"],
    }
    ran: dict[str, str] = {}
    for command in runbook_commands():
        for variant in variants(command):
            args = filled(variant, values)
            if args[0] in NEEDS_AN_API:
                continue
            code = main([*args, "--endpoint-url", moto_endpoint])
            captured = capsys.readouterr()
            assert code == 0, (variant, captured.err[-500:])
            ran[variant] = captured.out
    # what the runbook says each first look shows, shown
    dlq = next(out for c, out in ran.items() if c.startswith("atlas-codex ops dlq show"))
    assert world["job"] in dlq
    shown = next(out for c, out in ran.items() if c.startswith("atlas-codex ops job show"))
    assert "fetch_failed" in shown
    failed = next(out for c, out in ran.items() if "--status failed" in c)
    assert world["job"] in failed
    budget = next(out for c, out in ran.items() if c.startswith("atlas-codex ops budget"))
    assert "o-1" in budget
    assert len(ran) >= 10
