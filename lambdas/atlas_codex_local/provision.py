"""Create a stage's tables, queues and bucket in an AWS endpoint (the moto server) from the
same definitions the stacks deploy: the table specs, the naming module and the stage settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from atlas_codex.ground import naming
from atlas_codex.ground.table_specs import TABLE_SPECS, TableSpec

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from atlas_codex_stage.settings import QueueSettings, StageSettings


@dataclass(frozen=True)
class StageResources:
    stage: str
    tables: dict[naming.TableResource, str]
    queue_urls: dict[naming.QueueResource, str]
    bucket: str


def table_definition(spec: TableSpec, name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for ``spec`` (on-demand, string keys)."""
    attributes = [{"AttributeName": a, "AttributeType": "S"} for a in spec.key_attributes]
    keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    definition: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": attributes,
        "KeySchema": keys,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    *(
                        [{"AttributeName": index.sort_key, "KeyType": "RANGE"}]
                        if index.sort_key
                        else []
                    ),
                ],
                "Projection": {
                    "ProjectionType": index.projection,
                    **({"NonKeyAttributes": list(index.include)} if index.include else {}),
                },
            }
            for index in spec.indexes
        ]
    return definition


def _queue_pair(
    sqs: SQSClient,
    stage: str,
    queue: naming.QueueResource,
    dlq: naming.QueueResource,
    settings: QueueSettings,
) -> tuple[str, str]:
    dlq_url = sqs.create_queue(
        QueueName=naming.queue_name(dlq, stage),
        Attributes={"MessageRetentionPeriod": str(settings.dlq_retention_days * 86400)},
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=naming.queue_name(queue, stage),
        Attributes={
            "VisibilityTimeout": str(settings.visibility_timeout_s),
            "MessageRetentionPeriod": str(settings.retention_days * 86400),
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": settings.max_receive_count}
            ),
        },
    )["QueueUrl"]
    return url, dlq_url


def provision(
    settings: StageSettings, *, dynamodb: DynamoDBClient, sqs: SQSClient, s3: S3Client
) -> StageResources:
    stage = settings.stage
    tables: dict[naming.TableResource, str] = {}
    for spec in TABLE_SPECS:
        name = naming.table_name(spec.resource, stage)
        dynamodb.create_table(**table_definition(spec, name))
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
        tables[spec.resource] = name
    jobs_url, jobs_dlq = _queue_pair(sqs, stage, "queue", "dlq", settings.jobs_queue)
    hooks_url, hooks_dlq = _queue_pair(
        sqs, stage, "webhooks", "webhooks-dlq", settings.webhooks_queue
    )
    bucket = naming.bucket_name(settings.instance_id)
    s3.create_bucket(Bucket=bucket)
    return StageResources(
        stage=stage,
        tables=tables,
        queue_urls={
            "queue": jobs_url,
            "dlq": jobs_dlq,
            "webhooks": hooks_url,
            "webhooks-dlq": hooks_dlq,
        },
        bucket=bucket,
    )
