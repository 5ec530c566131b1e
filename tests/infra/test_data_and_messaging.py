"""Template tests: what a reviewer of the CloudFormation change would check by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from atlas_codex.ground import naming
from atlas_codex.ground.table_specs import JOBS, TABLE_SPECS
from atlas_codex.jobs.record import Job
from atlas_codex.jobs.store.table import job_from_wire_item, job_to_wire_item
from tests.conftest import ROOT

pytestmark = pytest.mark.infra

DEPLOYED = ("dev", "staging", "prod")


@pytest.mark.parametrize("stage", ["local", *DEPLOYED])
def test_tables_have_the_keys_indexes_and_ttl_of_their_spec(
    templates: dict[str, Any], stage: str
) -> None:
    data: Template = templates[stage]["data"]
    for spec in TABLE_SPECS:
        keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
        if spec.sort_key:
            keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
        data.has_resource_properties(
            "AWS::DynamoDB::Table",
            {
                "TableName": naming.table_name(spec.resource, stage),
                "KeySchema": keys,
                "BillingMode": "PAY_PER_REQUEST",
                "SSESpecification": {"SSEEnabled": True},
                "TimeToLiveSpecification": {"AttributeName": spec.ttl_attribute, "Enabled": True},
                "GlobalSecondaryIndexes": Match.absent()
                if not spec.indexes
                else [
                    Match.object_like(
                        {"IndexName": i.name, "Projection": {"ProjectionType": i.projection}}
                    )
                    for i in spec.indexes
                ],
            },
        )


def test_the_jobs_table_keys_are_fields_of_the_job_record_or_made_from_them() -> None:
    sharded = {i.partition_key: i.sharded_from for i in JOBS.indexes if i.sharded_from}
    for attribute in (*JOBS.key_attributes, str(JOBS.ttl_attribute)):
        assert sharded.get(attribute, attribute) in Job.model_fields
    for index in JOBS.indexes:
        for attribute in index.include:
            assert attribute in Job.model_fields
    # the sharded keys are written with every record and never read back as fields
    at = "2026-01-01T00:00:00.000000Z"
    job = Job.model_validate_json(
        json.dumps(
            {
                "job_id": "job_01ARZ3NDEKTSV4RRFFQ69G5FAV",
                "type": "async",
                "status": "pending",
                "owner_id": "owner-a",
                "correlation_id": "c",
                "request": {"urls": ["https://shop.example/a"]},
                "created_at": at,
                "updated_at": at,
                "timeline": [{"status": "pending", "at": at}],
            }
        )
    )
    item = job_to_wire_item(job)
    assert item["status_key"]["S"].startswith("pending#")
    assert item["owner_key"]["S"].startswith("owner-a#")
    assert job_from_wire_item(item) == job


def test_prod_retains_its_stateful_resources_and_protects_them(
    resources: dict[str, dict[str, Any]],
) -> None:
    stateful = [
        r
        for r in resources["prod"].values()
        if r["Type"] in ("AWS::DynamoDB::Table", "AWS::S3::Bucket")
    ]
    assert len(stateful) == 5
    for resource in stateful:
        # Kept once they exist; a failed first create rolls back cleanly, so the retry does
        # not meet a retained table or bucket of the same name.
        assert resource["DeletionPolicy"] == "RetainExceptOnCreate"
        assert resource["UpdateReplacePolicy"] == "Retain"
    for table in (r for r in stateful if r["Type"] == "AWS::DynamoDB::Table"):
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["Properties"]["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }


def test_dev_data_can_be_torn_down(resources: dict[str, dict[str, Any]]) -> None:
    tables = [r for r in resources["dev"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == len(TABLE_SPECS)  # every table is checked, none is missed
    for resource in tables:
        assert resource["DeletionPolicy"] == "Delete"
        assert resource["Properties"]["DeletionProtectionEnabled"] is False


@pytest.mark.parametrize("stage", DEPLOYED)
def test_stateful_resources_keep_fixed_logical_ids(
    resources: dict[str, dict[str, Any]], stage: str
) -> None:
    for logical_id in (
        "JobsTable",
        "ConnectionsTable",
        "IdempotencyTable",
        "UsageTable",
        "ArtifactsBucket",
    ):
        assert logical_id in resources[stage], (
            f"{logical_id} was renamed: CloudFormation would replace it"
        )


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_bucket_is_private_encrypted_tls_only_and_expires_artifacts(
    templates: dict[str, Any], stage: str
) -> None:
    data: Template = templates[stage]["data"]
    data.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [Match.object_like({"Id": "expire-stored-pages", "Prefix": "pages/"})]
                )
            },
        },
    )
    policy = json.dumps(data.find_resources("AWS::S3::BucketPolicy"))
    assert '"aws:SecureTransport": "false"' in policy
    [bucket] = data.find_resources("AWS::S3::Bucket").values()
    rules = {r["Id"]: r for r in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    versioned = bucket["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
    # A versioned bucket also sheds the delete markers its expired objects leave.
    assert ("remove-expired-delete-markers" in rules) is versioned
    if versioned:
        assert rules["remove-expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True


@pytest.mark.parametrize("stage", DEPLOYED)
def test_every_queue_is_encrypted_and_work_queues_redrive_to_their_dlq(
    templates: dict[str, Any],
    resources: dict[str, dict[str, Any]],
    stage: str,
    cdk_context: dict[str, Any],
) -> None:
    from atlas_codex_stage.settings import (
        DEFAULTS_KEY,
        STAGES_KEY,
        FunctionSettings,
        QueueSettings,
        load_stage_settings,
    )

    settings = load_stage_settings(stage, cdk_context[DEFAULTS_KEY], cdk_context[STAGES_KEY])
    queues = {
        r["Properties"]["QueueName"]: (lid, r)
        for lid, r in resources[stage].items()
        if r["Type"] == "AWS::SQS::Queue"
    }
    assert len(queues) == 4
    for _, queue in queues.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
    pairs: tuple[
        tuple[naming.QueueResource, naming.QueueResource, QueueSettings, FunctionSettings], ...
    ] = (
        ("queue", "dlq", settings.jobs_queue, settings.functions.worker),
        ("webhooks", "webhooks-dlq", settings.webhooks_queue, settings.functions.webhooks),
    )
    for work, dlq, queue_settings, consumer in pairs:
        _, queue = queues[naming.queue_name(work, stage)]
        dlq_id, _ = queues[naming.queue_name(dlq, stage)]
        props = queue["Properties"]
        assert props["RedrivePolicy"]["maxReceiveCount"] == queue_settings.max_receive_count
        assert props["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_id, "Arn"]}
        assert props["VisibilityTimeout"] >= 6 * consumer.timeout_s


def test_synth_fails_with_the_field_named_when_a_setting_is_wrong(
    cdk_context: dict[str, Any],
) -> None:
    bad = json.loads(json.dumps(cdk_context))
    bad["atlas-codex:stages"]["prod"]["data"]["point_in_time_recovery"] = False
    bad["stage"] = "prod"
    run = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_CONTEXT_JSON": json.dumps(bad),
            "CDK_OUTDIR": "/tmp/atlas-codex-bad-synth",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 1
    assert (
        "stages.prod.data.point_in_time_recovery: prod must keep point-in-time recovery on"
        in run.stderr
    )


def test_an_unknown_stage_on_the_command_line_fails_synth(cdk_context: dict[str, Any]) -> None:
    import aws_cdk as cdk

    from atlas_codex_stage.settings import SettingsError
    from stacks.stages import build_app

    with pytest.raises(SettingsError, match="-c stage=qa: invalid stage 'qa'"):
        build_app(cdk.App(context={**cdk_context, "stage": "qa"}))
