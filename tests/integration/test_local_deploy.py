"""Local mode's resources are the local stage's synthesized stacks, deployed into the emulator;
`atlas-codex validate` reads them back and fails on what is missing."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import requests

from atlas_codex.ground import naming
from atlas_codex.ground.table_specs import TABLE_SPECS
from atlas_codex_local import deploy
from atlas_codex_local.cli import main
from atlas_codex_stage.settings import StageSettings


@pytest.fixture
def deployed(moto_endpoint: str, local_settings: StageSettings) -> deploy.Deployed:
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=moto_endpoint)  # type: ignore[call-overload]

    return deploy.deploy(
        client("cloudformation"),
        client("ssm"),
        deploy.local_templates(),
        cloudwatch=client("cloudwatch"),
        budgets=client("budgets"),
        dynamodb=client("dynamodb"),
        s3=client("s3"),
        account=local_settings.account,
    )


def test_the_stacks_outputs_name_every_resource_of_the_stage(deployed: deploy.Deployed) -> None:
    resources = deploy.stage_resources(deployed)
    assert resources.tables == {
        s.resource: naming.table_name(s.resource, "local") for s in TABLE_SPECS
    }
    assert {k: v.rsplit("/", 1)[1] for k, v in resources.queue_urls.items()} == {
        q: naming.queue_name(q, "local") for q in naming.QUEUES
    }
    assert any("compute" in note for note in deployed.left_out)


def test_the_deployed_tables_have_the_keys_indexes_and_ttl_of_their_specs(
    deployed: deploy.Deployed, moto_endpoint: str
) -> None:
    db = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    for spec in TABLE_SPECS:
        name = naming.table_name(spec.resource, "local")
        table = db.describe_table(TableName=name)["Table"]
        assert {k["AttributeName"] for k in table["KeySchema"]} == set(
            filter(None, (spec.partition_key, spec.sort_key))
        )
        assert {i["IndexName"] for i in table.get("GlobalSecondaryIndexes", [])} == {
            i.name for i in spec.indexes
        }
        ttl = db.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == spec.ttl_attribute


def _validate(moto_endpoint: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["validate", "--stage", "local", "--endpoint-url", moto_endpoint, "--json"])
    rows = {r["check"]: r for r in json.loads(capsys.readouterr().out)}
    return code, rows


def test_validate_checks_resources_and_fails_without_a_service_to_ask(
    deployed: deploy.Deployed, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = _validate(moto_endpoint, capsys)
    assert code == 1  # no API to answer /health
    passed = {k for k, r in rows.items() if r["verdict"] == "PASS"}
    assert {
        "stack atlas-codex-data-local",
        "stack atlas-codex-messaging-local",
        "stack atlas-codex-monitoring-local",
        "table atlas-codex-jobs-local",
        "queue atlas-codex-queue-local",
        "queue atlas-codex-webhooks-local",
        "alarms",
        "budget atlas-codex-budget-local",
        "bucket atlas-codex-artifacts-123456789012-us-east-1-local",
    } <= passed
    assert rows["GET /health"]["verdict"] == "FAIL"
    assert rows["canary job"]["verdict"] == "SKIP"


def test_validate_names_a_missing_table_and_a_broken_redrive(
    deployed: deploy.Deployed, moto_endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    boto3.client("dynamodb", endpoint_url=moto_endpoint).delete_table(
        TableName="atlas-codex-usage-local"
    )
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    url = sqs.get_queue_url(QueueName="atlas-codex-webhooks-local")["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": ""})
    code, rows = _validate(moto_endpoint, capsys)
    assert code == 1
    assert rows["table atlas-codex-usage-local"]["verdict"] == "FAIL"
    assert "ResourceNotFoundException" in rows["table atlas-codex-usage-local"]["detail"]
    assert rows["queue atlas-codex-webhooks-local"]["verdict"] == "FAIL"
    assert "no redrive policy" in rows["queue atlas-codex-webhooks-local"]["detail"]
    assert rows["table atlas-codex-jobs-local"]["verdict"] == "PASS"


def _deliver_alarm_actions(cloudwatch: Any, sns: Any, alarm_name: str) -> int:
    """What CloudWatch does on a state change, which the emulator records but does not act on:
    publish the alarm's state-change message to each of its actions. Returns how many."""
    alarm = cloudwatch.describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"][0]
    message = {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm["AlarmDescription"],
        "NewStateValue": alarm["StateValue"],
        "NewStateReason": alarm["StateReason"],
    }
    for action in alarm["AlarmActions"]:
        sns.publish(
            TopicArn=action,
            Subject=f'ALARM: "{alarm_name}"',
            Message=json.dumps(message),
        )
    return len(alarm["AlarmActions"])


def test_an_alarm_reaches_a_person_through_the_stage_topic(
    deployed: deploy.Deployed, moto_endpoint: str
) -> None:
    """The deployed alarm names the deployed topic, and the topic delivers to its subscriber
    (here an inbox queue standing in for the email or pager the settings subscribe)."""
    cloudwatch = boto3.client("cloudwatch", endpoint_url=moto_endpoint)
    sns = boto3.client("sns", endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    topic = next(
        t["TopicArn"]
        for t in sns.list_topics()["Topics"]
        if t["TopicArn"].endswith(":" + naming.alarm_topic_name("local"))
    )
    inbox = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
    name = naming.alarm_name("worker-failed-messages", "local")

    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test: 40% failed")
    assert _deliver_alarm_actions(cloudwatch, sns, name) == 1

    got = sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=0)["Messages"]
    envelope = json.loads(got[0]["Body"])
    assert envelope["TopicArn"] == topic
    alarm = json.loads(envelope["Message"])
    assert alarm["AlarmName"] == name
    assert alarm["NewStateValue"] == "ALARM"
    assert alarm["AlarmDescription"].endswith("Runbook: docs/RUNBOOK.md#function-error-rate")
