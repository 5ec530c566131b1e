"""The health monitor against the moto server: each check, and each failure a responder meets."""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from atlas_codex.accounts.usage import UsageLedger
from atlas_codex.ground import aws
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.table_specs import shard_key
from atlas_codex.ground.values import utcnow
from atlas_codex.health import (
    CheckEnded,
    CheckResult,
    HealthMonitor,
    Passed,
    canary_extractor,
    latest_report,
)
from atlas_codex.jobs.manager import JobManager
from atlas_codex.jobs.record import CreateJobRequest


def _monitor(config: RuntimeConfig, moto_endpoint: str) -> HealthMonitor:
    return HealthMonitor(
        config,
        dynamodb=aws.dynamodb(moto_endpoint),
        sqs=aws.sqs(moto_endpoint),
        extractor=canary_extractor,
        environ=dict(os.environ),
    )


@pytest.fixture
def monitor(config: RuntimeConfig, moto_endpoint: str) -> HealthMonitor:
    return _monitor(config, moto_endpoint)


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def _submit(manager: JobManager) -> str:
    request = CreateJobRequest.model_validate({"urls": ["https://example.com/"]})
    return manager.create(owner_id="o-1", request=request, correlation_id="c-1").job.job_id


def test_a_healthy_local_stage_passes_all_eight_checks(monitor: HealthMonitor) -> None:
    report = monitor.run()
    checks = _by_name(report.checks)
    assert set(checks) == {
        "dynamodb",
        "models",
        "pipeline",
        "schema",
        "budget",
        "configuration",
        "network",
        "resources",
    }
    assert report.status == "ok", [c for c in report.checks if c.status != "ok"]
    assert checks["models"].message.startswith("not configured")
    assert checks["pipeline"].details["strategy"] == "direct-css"


def test_a_missing_table_fails_the_dynamodb_and_schema_checks(
    monitor: HealthMonitor, config: RuntimeConfig, moto_endpoint: str
) -> None:
    aws.dynamodb(moto_endpoint).delete_table(TableName=config.jobs_table)
    report = monitor.run()
    checks = _by_name(report.checks)
    assert report.status == "failed"
    assert checks["dynamodb"].status == "failed"
    assert "ResourceNotFoundException" in checks["dynamodb"].message
    assert checks["schema"].status == "failed"


@pytest.mark.parametrize(
    ("spent", "status"),
    [(Decimal("10"), "ok"), (Decimal("85"), "degraded"), (Decimal("96"), "failed")],
)
def test_the_budget_check_follows_this_month_s_spend(
    monitor: HealthMonitor, config: RuntimeConfig, moto_endpoint: str, spent: Decimal, status: str
) -> None:
    ledger = UsageLedger(
        dynamodb=aws.dynamodb(moto_endpoint), table_name=config.usage_table, stage=config.stage
    )
    share = spent * Decimal(str(config.monthly_budget_usd)) / 100
    ledger.record("o-1", share / 2)
    ledger.record("o-2", share / 2)
    check = _by_name(monitor.run({"budget": monitor.check_budget}).checks)["budget"]
    assert check.status == status
    assert check.details["percent"] == pytest.approx(float(spent))


def test_a_stuck_job_and_a_dead_letter_degrade_the_resources_check(
    monitor: HealthMonitor, manager: JobManager, config: RuntimeConfig, moto_endpoint: str
) -> None:
    job_id = _submit(manager)
    manager.claim(job_id, deadline_at=utcnow() - timedelta(minutes=1))
    aws.sqs(moto_endpoint).send_message(QueueUrl=config.jobs_dlq_url, MessageBody="{}")
    check = _by_name(monitor.run({"resources": monitor.check_resources}).checks)["resources"]
    assert check.status == "degraded"
    assert check.details["stuck_jobs"] == 1
    assert check.details["jobs_dlq"] == 1
    assert "atlas-codex ops jobs sweep" in check.message


def test_a_corrupt_job_record_fails_the_schema_check(
    monitor: HealthMonitor, config: RuntimeConfig, moto_endpoint: str
) -> None:
    aws.dynamodb(moto_endpoint).put_item(
        TableName=config.jobs_table,
        Item={  # in the by-status index (its shard key) but not a job record
            "job_id": {"S": "job_corrupt"},
            "status": {"S": "completed"},
            "status_key": {"S": shard_key("completed", "job_corrupt")},
            "updated_at": {"S": "2026-11-29T00:00:00.000000Z"},
        },
    )
    check = _by_name(monitor.run({"schema": monitor.check_schema}).checks)["schema"]
    assert check.status == "failed"
    assert "job_corrupt" in check.message


def test_a_bad_environment_fails_the_configuration_check_naming_the_variable(
    config: RuntimeConfig, moto_endpoint: str
) -> None:
    environ = {**os.environ, "ATLAS_JOBS_TABLE": "jobs"}
    monitor = HealthMonitor(
        config,
        dynamodb=aws.dynamodb(moto_endpoint),
        sqs=aws.sqs(moto_endpoint),
        extractor=canary_extractor,
        environ=environ,
    )
    check = _by_name(monitor.run({"configuration": monitor.check_configuration}).checks)[
        "configuration"
    ]
    assert check.status == "failed"
    assert "ATLAS_JOBS_TABLE" in check.message


def test_a_hanging_check_is_failed_at_its_timeout_and_holds_no_other_back(
    monitor: HealthMonitor,
) -> None:
    release = threading.Event()

    def hangs() -> Passed:
        release.wait(60)
        return Passed("answered late")

    monitor.timeout_s = 0.3
    try:
        report = monitor.run({"hangs": hangs, "quick": lambda: Passed("fine")})
        still_hanging = not release.is_set()
    finally:
        release.set()
    checks = _by_name(report.checks)
    assert still_hanging  # run() returned while the check was still blocked
    assert checks["hangs"].status == "failed"
    assert "no answer within 0.3 s" in checks["hangs"].message
    assert checks["quick"].status == "ok"


def test_with_a_key_the_model_and_network_checks_probe_the_endpoint(
    config: RuntimeConfig, moto_endpoint: str
) -> None:
    keyed = config.model_copy(update={"openai_api_key": "sk-test"})
    seen: list[tuple[str, int, bool]] = []

    def network(host: str, port: int, timeout: float, *, tls: bool) -> float:
        seen.append((host, port, tls))
        return 0.012

    def models(timeout: float) -> list[str]:
        return list(config.model_policy.tier_models.values())

    monitor = HealthMonitor(
        keyed,
        dynamodb=aws.dynamodb(moto_endpoint),
        sqs=aws.sqs(moto_endpoint),
        extractor=canary_extractor,
        environ=dict(os.environ),
        model_probe=models,
        network_probe=network,
    )
    monitor.now = lambda: utcnow().replace(year=2026, month=10, day=1)
    checks = _by_name(monitor.run({"m": monitor.check_models, "n": monitor.check_network}).checks)
    assert checks["m"].status == "ok"
    assert checks["n"].status == "ok"
    assert seen == [("api.openai.com", 443, True)]

    monitor.now = lambda: utcnow().replace(year=2026, month=11, day=29)
    near = _by_name(monitor.run({"m": monitor.check_models}).checks)["m"]
    assert near.status == "degraded"
    assert "gpt-5-nano shuts down on 2026-12-11 (12 days)" in near.message

    def refused(timeout: float) -> list[str]:
        raise ConnectionError("connection refused")

    monitor.model_probe = refused
    assert _by_name(monitor.run({"m": monitor.check_models}).checks)["m"].status == "failed"


def test_a_check_that_raises_is_failed_with_the_reason(monitor: HealthMonitor) -> None:
    def broken() -> Passed:
        raise CheckEnded("degraded", "half broken", shard=3)

    def crashes() -> Passed:
        raise KeyError("boom")

    checks = _by_name(monitor.run({"broken": broken, "crashes": crashes}).checks)
    assert checks["broken"].status == "degraded"
    assert checks["broken"].details == {"shard": 3}
    assert checks["crashes"].status == "failed"
    assert "KeyError" in checks["crashes"].message


def test_the_report_is_stored_for_the_api(
    monitor: HealthMonitor, config: RuntimeConfig, moto_endpoint: str
) -> None:
    assert latest_report(aws.dynamodb(moto_endpoint), config.usage_table) is None
    report = monitor.run({"quick": lambda: Passed("fine")})
    monitor.store(report)
    stored: Any = latest_report(aws.dynamodb(moto_endpoint), config.usage_table)
    assert stored == report


def test_a_queue_backlog_degrades_the_resources_check(
    monitor: HealthMonitor, manager: JobManager
) -> None:
    _submit(manager)
    monitor.now = lambda: utcnow() + timedelta(hours=1)  # the job has waited an hour
    check = _by_name(monitor.run({"resources": monitor.check_resources}).checks)["resources"]
    assert check.status == "degraded"
    assert check.details["oldest_pending_s"] >= 3600
    assert "the oldest pending job has waited" in check.message


def test_the_network_check_follows_the_endpoint_s_scheme(
    config: RuntimeConfig, moto_endpoint: str
) -> None:
    """An http:// OpenAI-compatible server speaks no TLS: the check connects, and passes."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    threading.Thread(target=lambda: listener.accept()[0].close(), daemon=True).start()
    keyed = config.model_copy(
        update={"openai_api_key": "sk-test", "openai_base_url": f"http://127.0.0.1:{port}/v1"}
    )
    monitor = _monitor(keyed, moto_endpoint)
    try:
        check = _by_name(monitor.run({"n": monitor.check_network}).checks)["n"]
    finally:
        listener.close()
    assert check.status == "ok", check.message
    assert "plain http" in check.message
