"""`atlas-codex ops` against the moto server: what a responder runs, and how it fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest

from atlas_codex.accounts.usage import UsageLedger
from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest
from atlas_codex_local.cli import main


@pytest.fixture
def ops(config: RuntimeConfig, moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> Any:
    """Runs ``atlas-codex ops ...`` against the local stage; returns (exit code, out, err)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["ops", *args, "--endpoint-url", moto_endpoint])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _job(manager: JobManager, owner: str = "o-1") -> str:
    request = CreateJobRequest.model_validate({"urls": ["https://example.com/a"]})
    return manager.create(owner_id=owner, request=request, correlation_id="req-ops-1").job.job_id


def test_job_show_prints_the_record_and_timeline(ops: Any, manager: JobManager) -> None:
    job_id = _job(manager)
    code, out, _ = ops("job", "show", job_id)
    assert code == 0
    assert job_id in out
    assert "Timeline" in out
    assert "pending" in out
    assert "req-ops-1" in out
    code, out, _ = ops("job", "show", job_id, "--json", "--no-logs")
    assert json.loads(out)["job"]["status"] == "pending"


def test_an_unknown_job_is_a_clear_error(ops: Any) -> None:
    code, out, err = ops("job", "show", "job_nope")
    assert code == 1
    assert out == ""
    assert "no job job_nope in atlas-codex-jobs-local" in err


def test_jobs_list_filters_by_status_and_age(ops: Any, manager: JobManager) -> None:
    first, second = _job(manager), _job(manager)
    manager.claim(second, deadline_at=utcnow() + timedelta(minutes=5))
    code, out, _ = ops("jobs", "list", "--status", "pending", "--since", "1h", "--json")
    assert code == 0
    assert [j["job_id"] for j in json.loads(out)] == [first]
    code, out, _ = ops("jobs", "list", "--since", "1h")
    assert first in out
    assert second in out
    assert "2 jobs" in out
    code, out, _ = ops("jobs", "list", "--status", "pending", "--since", "2099-01-01T00:00:00Z")
    assert "0 jobs" in out


def test_a_bad_since_is_refused_by_the_parser(ops: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ops("jobs", "list", "--since", "yesterday")
    assert exit_info.value.code == 2


def test_jobs_sweep_times_out_a_stuck_job_and_dry_run_changes_nothing(
    ops: Any, manager: JobManager
) -> None:
    job_id = _job(manager)
    manager.claim(job_id, deadline_at=utcnow() - timedelta(seconds=1))
    code, out, _ = ops("jobs", "sweep", "--dry-run")
    assert code == 0
    assert job_id in out
    assert manager.get(job_id).status == "processing"
    code, out, _ = ops("jobs", "sweep", "--json")
    assert json.loads(out)["timed_out"] == [job_id]
    assert manager.get(job_id).status == "timeout"


def test_dlq_show_leaves_the_messages_and_redrive_moves_them(
    ops: Any, config: RuntimeConfig, moto_endpoint: str
) -> None:
    sqs = aws.sqs(moto_endpoint)
    for n in range(3):
        sqs.send_message(
            QueueUrl=config.jobs_dlq_url,
            MessageBody=json.dumps({"job_id": f"job_{n}", "correlation_id": f"c-{n}"}),
        )
    code, out, _ = ops("dlq", "show", "--json")
    assert code == 0
    assert sorted(m["job_id"] for m in json.loads(out)) == ["job_0", "job_1", "job_2"]
    code, out, _ = ops("dlq", "show")
    assert "3 messages in the jobs DLQ (nothing was removed)" in out

    code, out, _ = ops("dlq", "redrive", "--dry-run")
    assert "would move 3 messages" in out
    code, out, _ = ops("dlq", "redrive", "--max", "2", "--json")
    assert len(json.loads(out)["moved"]) == 2

    def depth(url: str) -> int:
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    assert depth(config.jobs_queue_url) == 2
    assert depth(config.jobs_dlq_url) == 1


def test_budget_shows_spend_against_the_budget_per_owner(
    ops: Any, config: RuntimeConfig, moto_endpoint: str
) -> None:
    ledger = UsageLedger(
        dynamodb=aws.dynamodb(moto_endpoint), table_name=config.usage_table, stage="local"
    )
    ledger.record("big", Decimal("90"))
    ledger.record("small", Decimal("6"))
    code, out, _ = ops("budget", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["percent"] == pytest.approx(96.0)
    assert [o["owner_id"] for o in data["owners"]] == ["big", "small"]
    code, out, _ = ops("budget")
    assert "local: $96.00 of $100.00 this month (96.0%)" in out


def test_keys_are_shown_once_listed_without_secret_and_revoked(
    ops: Any, moto_endpoint: str
) -> None:
    apigw = boto3.client("apigateway", endpoint_url=moto_endpoint)
    plan = apigw.create_usage_plan(name="atlas-codex-usage-plan-local")["id"]
    code, out, _ = ops("keys", "create", "--owner", "acme", "--name", "ci", "--json")
    created = json.loads(out)
    assert code == 0
    assert created["key"].startswith("ack_")
    assert created["usage_plan"] == plan
    gateway_keys = apigw.get_usage_plan_keys(usagePlanId=plan)["items"]
    assert [k["value"] for k in gateway_keys] == [created["key"]]

    code, out, _ = ops("keys", "list", "--owner", "acme")
    assert created["key_id"] in out
    assert "active" in out
    assert created["key"] not in out

    code, out, _ = ops("keys", "revoke", created["key_id"])
    assert code == 0
    code, out, _ = ops("keys", "list", "--json")
    assert [k["revoked"] for k in json.loads(out)] == [True]
    assert apigw.get_api_key(apiKey=gateway_keys[0]["id"])["enabled"] is False
    code, _, err = ops("keys", "revoke", "nosuchkey123")
    assert code == 1
    assert "no API key with id nosuchkey123" in err


def test_a_missing_table_says_the_stage_is_not_deployed(
    ops: Any, config: RuntimeConfig, moto_endpoint: str
) -> None:
    aws.dynamodb(moto_endpoint).delete_table(TableName=config.jobs_table)
    code, _, err = ops("jobs", "list")
    assert code == 1
    assert "the table atlas-codex-jobs-local does not exist here" in err


# ---------------------------------------------------------------------- the installed command


def _console(
    *args: str, cwd: Path, moto_endpoint: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The ``atlas-codex`` console script as a responder runs it: the installed entry point,
    from ``cwd``, with no path into the checkout (no PYTHONPATH, not run as ``-m``)."""
    script = Path(sys.executable).parent / "atlas-codex"
    environ = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ATLAS_CODEX_CDK_JSON")
    }
    return subprocess.run(
        [str(script), *args, "--endpoint-url", moto_endpoint],
        cwd=cwd,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ("ops", "jobs", "list", "--json"),
        ("ops", "jobs", "sweep", "--dry-run"),
        ("ops", "dlq", "show"),
        ("ops", "budget"),
        ("ops", "keys", "list"),
        ("migrate", "--dry-run"),
    ],
)
def test_the_console_script_runs_from_any_directory(
    args: tuple[str, ...], tmp_path: Path, moto_endpoint: str, config: RuntimeConfig
) -> None:
    done = _console(*args, cwd=tmp_path, moto_endpoint=moto_endpoint)
    assert "ModuleNotFoundError" not in done.stderr
    assert done.returncode == 0, done.stderr


def test_the_stage_settings_come_from_the_cdk_json_named(
    tmp_path: Path, moto_endpoint: str, config: RuntimeConfig
) -> None:
    """Outside any checkout, with the settings file named: the budget is read from it."""
    context = json.loads((Path(__file__).parents[2] / "cdk.json").read_text())["context"]
    context["atlas-codex:stages"]["local"] = {
        **context["atlas-codex:stages"].get("local", {}),
        "budget": {
            **context["atlas-codex:defaults"]["budget"],
            **context["atlas-codex:stages"].get("local", {}).get("budget", {}),
            "monthly_usd": 123,
        },
    }
    settings = tmp_path / "settings" / "cdk.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"context": context}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _console(
        "ops",
        "budget",
        "--json",
        "--cdk-json",
        str(settings),
        cwd=elsewhere,
        moto_endpoint=moto_endpoint,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["budget_usd"] == 123
    by_env = _console(
        "ops",
        "budget",
        "--json",
        cwd=elsewhere,
        moto_endpoint=moto_endpoint,
        env={"ATLAS_CODEX_CDK_JSON": str(settings)},
    )
    assert json.loads(by_env.stdout)["budget_usd"] == 123


def test_a_missing_settings_file_is_a_clear_error(tmp_path: Path, moto_endpoint: str) -> None:
    done = _console(
        "ops",
        "budget",
        "--cdk-json",
        str(tmp_path / "nope.json"),
        cwd=tmp_path,
        moto_endpoint=moto_endpoint,
    )
    assert done.returncode == 1
    assert "nope.json: no such file" in done.stderr


def test_jobs_sweep_fails_a_job_whose_message_was_dead_lettered(
    ops: Any, manager: JobManager, config: RuntimeConfig, moto_endpoint: str
) -> None:
    from atlas_codex.jobs.messages import JobMessage

    job_id = _job(manager)
    aws.sqs(moto_endpoint).send_message(
        QueueUrl=config.jobs_dlq_url,
        MessageBody=JobMessage(job_id=job_id, correlation_id="c").model_dump_json(),
    )
    code, out, _ = ops("jobs", "sweep", "--dry-run")
    assert code == 0
    assert f"would fail (dead-lettered)  {job_id}" in out
    assert manager.get(job_id).status == "pending"
    code, out, _ = ops("jobs", "sweep", "--json")
    assert json.loads(out)["dead_lettered"] == [job_id]
    assert manager.get(job_id).status == "failed"
