"""The IAM trace checker itself: it maps calls to the actions and ARNs IAM evaluates, allows
what the role's statements allow, and fires when a grant is removed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import iam

SNAPSHOT = Path(__file__).resolve().parents[1] / "infra" / "snapshots" / "local.json"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    compute: dict[str, Any] = json.loads(SNAPSHOT.read_text())["compute"]
    return compute


def call(function: str, service: str, operation: str, **params: Any) -> iam.Call:
    endpoint = "https://abc123.execute-api.us-east-1.amazonaws.com/local"
    return iam.Call(function, service, operation, params, REGION, endpoint)


QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/atlas-codex-queue-local"
BUCKET = "atlas-codex-artifacts-123456789012-us-east-1-local"

EXAMPLES = [
    call("worker", "dynamodb", "UpdateItem", TableName="atlas-codex-jobs-local"),
    call(
        "api", "dynamodb", "Query", TableName="atlas-codex-jobs-local", IndexName="by-owner-shard"
    ),
    call("api", "sqs", "SendMessage", QueueUrl=QUEUE),
    call("worker", "s3", "PutObject", Bucket=BUCKET, Key="results/job_1.json"),
    call("api", "s3", "ListObjectsV2", Bucket=BUCKET, Prefix="pages/job_1/"),
    call("api", "secretsmanager", "GetSecretValue", SecretId="atlas-codex-openai-api-key-local"),
    call("worker", "apigatewaymanagementapi", "PostToConnection", ConnectionId="abc="),
]


@pytest.mark.parametrize("made", EXAMPLES, ids=lambda c: f"{c.function}-{c.operation}")
def test_calls_the_role_grants_are_allowed(template: dict[str, Any], made: iam.Call) -> None:
    assert iam.violations([made], template, "local") == []


def test_a_call_to_another_table_is_reported_naming_function_action_and_resource(
    template: dict[str, Any],
) -> None:
    made = call("websocket", "dynamodb", "PutItem", TableName="atlas-codex-jobs-local")
    (found,) = iam.violations([made], template, "local")
    assert found.function == "websocket"
    assert found.action == "dynamodb:PutItem"
    assert found.resource == "arn:aws:dynamodb:us-east-1:<account>:table/atlas-codex-jobs-local"


def test_a_prefix_outside_the_condition_is_refused(template: dict[str, Any]) -> None:
    made = call("api", "s3", "ListObjectsV2", Bucket=BUCKET, Prefix="secrets/")
    assert [v.action for v in iam.violations([made], template, "local")] == ["s3:ListBucket"]


def test_it_fires_when_a_grant_is_removed(template: dict[str, Any]) -> None:
    made = call("api", "sqs", "SendMessage", QueueUrl=QUEUE)
    assert iam.violations([made], template, "local") == []
    pruned = copy.deepcopy(template)
    for resource in pruned["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            statements = resource["Properties"]["PolicyDocument"]["Statement"]
            statements[:] = [s for s in statements if s["Action"] != "sqs:SendMessage"]
    (found,) = iam.violations([made], pruned, "local")
    assert (found.function, found.action) == ("api", "sqs:SendMessage")
    assert found.resource.endswith(":atlas-codex-queue-local")


def test_a_grant_no_call_uses_is_listed_unless_it_is_a_kept_grant(
    template: dict[str, Any],
) -> None:
    used = [call("api", "sqs", "SendMessage", QueueUrl=QUEUE)]
    unused = iam.unused_grants(used, template, "local", ["api"], [])
    assert not any(
        "sqs:SendMessage on arn:aws:sqs:us-east-1:<account>:atlas-codex-queue-local" in u
        for u in unused
    )
    assert any("dynamodb:" in u for u in unused)
    everything = iam.KeptGrant("api", "*", "*", "test: every grant kept")
    assert iam.unused_grants(used, template, "local", ["api"], [everything]) == []


def test_an_unknown_call_is_an_error_not_a_silent_pass(template: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no IAM mapping"):
        iam.violations([call("api", "kinesis", "PutRecord")], template, "local")
