"""boto3 clients, made once per process with bounded timeouts and the configured endpoint.

``AWS_ENDPOINT_URL`` (local mode, tests) points every client at the emulator; in Lambda it
is unset and the regional endpoints serve.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

_CONFIG = Config(
    connect_timeout=3,
    read_timeout=10,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=32,
)


def _kwargs(endpoint_url: str | None) -> dict[str, Any]:
    url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return {"config": _CONFIG, **({"endpoint_url": url} if url else {})}


@functools.cache
def dynamodb(endpoint_url: str | None = None) -> DynamoDBClient:
    return boto3.client("dynamodb", **_kwargs(endpoint_url))


@functools.cache
def sqs(endpoint_url: str | None = None) -> SQSClient:
    return boto3.client("sqs", **_kwargs(endpoint_url))


@functools.cache
def s3(endpoint_url: str | None = None) -> S3Client:
    return boto3.client("s3", **_kwargs(endpoint_url))


@functools.cache
@functools.cache
def secretsmanager(endpoint_url: str | None = None) -> Any:
    return boto3.client("secretsmanager", **_kwargs(endpoint_url))


def websocket_management(endpoint_url: str) -> Any:
    """The API Gateway Management API of one WebSocket API stage (post_to_connection)."""
    return boto3.client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=_CONFIG)
