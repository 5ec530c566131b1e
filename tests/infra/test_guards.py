"""Synth-time guards: every stage passes them, and each one fires on the mistake it exists for."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stacks import guards

pytestmark = pytest.mark.infra

STAGES = ("local", "dev", "staging", "prod")


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_passes_every_guard(
    stage_resources: dict[str, dict[str, Any]], stage: str
) -> None:
    assert guards.check_stage(stage_resources[stage], stage) == []


def _mutable(stage_resources: dict[str, dict[str, Any]], stage: str) -> dict[str, Any]:
    return copy.deepcopy(stage_resources[stage])


def _first(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in resources.values() if r["Type"] == kind)


def test_a_name_outside_the_scheme_is_refused(stage_resources: dict[str, Any]) -> None:
    resources = _mutable(stage_resources, "dev")
    _first(resources, "AWS::SQS::Queue")["Properties"]["QueueName"] = "jobs-queue"
    _first(resources, "AWS::Lambda::Function")["Properties"]["FunctionName"] = (
        "atlas-codex-api-prod"
    )
    problems = guards.check_names(resources, "dev")
    assert any("'jobs-queue' does not start with 'atlas-codex-'" in p for p in problems)
    assert any("'atlas-codex-api-prod' belongs to another stage than dev" in p for p in problems)


def test_a_visibility_timeout_under_six_times_the_consumer_timeout_is_refused(
    stage_resources: dict[str, Any],
) -> None:
    resources = _mutable(stage_resources, "dev")
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"][
            "FunctionName"
        ].startswith("atlas-codex-worker-"):
            resource["Properties"]["Timeout"] = 600
    problems = guards.check_visibility(resources)
    assert problems == [
        "atlas-codex-queue-dev: visibility timeout 1800 s < 6 x atlas-codex-worker-dev's "
        "timeout (600 s)"
    ]


def test_a_queue_without_a_dead_letter_queue_is_refused(stage_resources: dict[str, Any]) -> None:
    resources = _mutable(stage_resources, "dev")
    for resource in resources.values():
        if resource["Type"] == "AWS::SQS::Queue" and "RedrivePolicy" in resource["Properties"]:
            del resource["Properties"]["RedrivePolicy"]
            name = resource["Properties"]["QueueName"]
            break
    problems = guards.check_dead_letter_queues(resources)
    assert any(f"{name} has no dead-letter queue" in p for p in problems)


def test_a_function_without_retention_or_error_alarm_is_refused(
    stage_resources: dict[str, Any],
) -> None:
    resources = _mutable(stage_resources, "dev")
    for resource in resources.values():
        if resource["Type"] == "AWS::Logs::LogGroup" and resource["Properties"][
            "LogGroupName"
        ].endswith("/atlas-codex-webhooks-dev"):
            del resource["Properties"]["RetentionInDays"]
    alarms = [k for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    for key in alarms:
        if resources[key]["Properties"]["AlarmName"] == "atlas-codex-worker-error-rate-dev":
            del resources[key]
    problems = guards.check_functions(resources)
    assert sorted(problems) == [
        "atlas-codex-webhooks-dev: its log group keeps logs forever (no retention)",
        "atlas-codex-worker-dev: no alarm on its error rate",
    ]


def test_an_alarm_whose_runbook_section_is_missing_is_refused(
    stage_resources: dict[str, Any],
) -> None:
    runbook = guards.RUNBOOK_PATH.read_text().replace("## DynamoDB throttles", "## Throttles")
    problems = guards.check_alarms(stage_resources["dev"], runbook)
    assert len(problems) == 7  # one alarm per table and per index
    assert all("docs/RUNBOOK.md has no section #dynamodb-throttles" in p for p in problems)


def test_every_runbook_section_is_used_by_an_alarm(stage_resources: dict[str, Any]) -> None:
    from stacks.constructs.alarms import SECTIONS

    linked = {
        r["Properties"]["AlarmDescription"].rsplit("#", 1)[1]
        for r in stage_resources["prod"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert linked == {s.anchor for s in SECTIONS}
    assert linked <= guards.runbook_sections(guards.RUNBOOK_PATH.read_text())


def test_prod_stateful_resources_that_would_be_deleted_are_refused(
    stage_resources: dict[str, Any],
) -> None:
    resources = _mutable(stage_resources, "prod")
    _first(resources, "AWS::DynamoDB::Table")["DeletionPolicy"] = "Delete"
    problems = guards.check_retention(resources, "prod")
    assert len(problems) == 1
    assert "AWS::DynamoDB::Table is not retained" in problems[0]
    assert guards.check_retention(stage_resources["dev"], "dev") == []


def test_the_guards_command_checks_a_cloud_assembly(cloud_assembly: Any, capsys: Any) -> None:
    assert guards.main([str(cloud_assembly)]) == 0
    out = capsys.readouterr().out
    for stage in STAGES:
        assert f"guards: {stage}: ok (4 stacks)" in out


def _kind(resources: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources.values() if r["Type"] == kind]


def test_a_rest_variable_in_the_websocket_access_log_is_refused(
    stage_resources: dict[str, Any],
) -> None:
    resources = _mutable(stage_resources, "dev")
    (stage,) = _kind(resources, "AWS::ApiGatewayV2::Stage")
    stage["Properties"]["AccessLogSettings"]["Format"] = (
        '{"method":"$context.httpMethod","id":"$context.requestId"}'
    )
    problems = guards.check_access_logs(resources)
    assert len(problems) == 1
    assert "$context.httpMethod, not variables of a WebSocket API" in problems[0]


def test_a_logging_stage_that_does_not_wait_for_the_account_role_is_refused(
    stage_resources: dict[str, Any],
) -> None:
    resources = _mutable(stage_resources, "dev")
    (stage,) = _kind(resources, "AWS::ApiGatewayV2::Stage")
    del stage["DependsOn"]
    problems = guards.check_account_role(resources)
    assert len(problems) == 1
    assert "does not depend on the account's API Gateway CloudWatch role" in problems[0]


def test_more_than_ten_budget_notifications_are_refused(stage_resources: dict[str, Any]) -> None:
    resources = _mutable(stage_resources, "dev")
    (budget,) = _kind(resources, "AWS::Budgets::Budget")
    notes = budget["Properties"]["NotificationsWithSubscribers"]
    budget["Properties"]["NotificationsWithSubscribers"] = notes * 3
    assert guards.check_budgets(resources) == [
        next(k for k, r in resources.items() if r is budget)
        + ": 12 notifications; AWS Budgets allows 10"
    ]


def test_reserved_concurrency_past_the_account_limit_is_refused(
    stage_resources: dict[str, Any],
) -> None:
    resources = _mutable(stage_resources, "prod")
    assert guards.check_concurrency(resources, 1000) == []
    reserved = sum(
        r["Properties"].get("ReservedConcurrentExecutions", 0)
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::Function"
    )
    problems = guards.check_concurrency(resources, reserved + 50)
    assert problems == [
        f"functions reserve {reserved} concurrent executions; an account limit of "
        f"{reserved + 50} leaves only 50 unreserved (AWS requires 100)"
    ]


def test_a_retained_log_group_that_survives_a_failed_create_is_refused(
    stage_resources: dict[str, Any],
) -> None:
    resources = _mutable(stage_resources, "prod")
    groups = _kind(resources, "AWS::Logs::LogGroup")
    assert all(g["DeletionPolicy"] == "RetainExceptOnCreate" for g in groups)
    groups[0]["DeletionPolicy"] = "Retain"
    problems = guards.check_log_groups_on_create(resources)
    assert len(problems) == 1
    assert "use RetainExceptOnCreate" in problems[0]
