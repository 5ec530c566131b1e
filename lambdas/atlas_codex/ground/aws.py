"""AWS clients, made once per process with bounded timeouts and the configured endpoint.

``AWS_ENDPOINT_URL`` (local mode, tests) points every client at the emulator; in Lambda it
is unset and the regional endpoints serve. The clients are botocore's, made from one
session: ``import boto3`` alone costs a cold start ~140 ms more (it imports s3transfer for
its resource and transfer layers, which the service never uses), and a boto3 client is a
botocore client with those layers attached.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import botocore.session
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


_MADE: list[Any] = []
"""Every client made in this process (each factory makes one per endpoint, once)."""


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


_LOCK = threading.Lock()


def _client(service: str, **options: Any) -> Any:
    with _LOCK:  # a botocore session is not safe to make clients from concurrently
        client = _session().create_client(service, **options)
        _MADE.append(client)
    return client


@functools.cache
def dynamodb(endpoint_url: str | None = None) -> DynamoDBClient:
    made: DynamoDBClient = _client("dynamodb", **_kwargs(endpoint_url))
    return made


@functools.cache
def sqs(endpoint_url: str | None = None) -> SQSClient:
    made: SQSClient = _client("sqs", **_kwargs(endpoint_url))
    return made


@functools.cache
def s3(endpoint_url: str | None = None) -> S3Client:
    made: S3Client = _client("s3", **_kwargs(endpoint_url))
    return made


@functools.cache
def secretsmanager(endpoint_url: str | None = None) -> Any:
    return _client("secretsmanager", **_kwargs(endpoint_url))


_INVOKE_CONFIG = Config(
    connect_timeout=3,
    # A render runs up to limits.RENDER_TIMEOUT_S, plus the browser's start on a cold start.
    read_timeout=60,
    retries={"mode": "standard", "max_attempts": 2},
    max_pool_connections=8,
)


@functools.cache
def lambda_client(endpoint_url: str | None = None) -> Any:
    """Lambda's Invoke (the worker asks the render function for a page)."""
    url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
    return _client("lambda", config=_INVOKE_CONFIG, **({"endpoint_url": url} if url else {}))


class _Lazy:
    """A client made on its first use: a cold start that never needs it never pays for it
    (loading a service's model costs 10-40 ms)."""

    def __init__(self, factory: Callable[[str | None], Any], endpoint_url: str | None) -> None:
        self._factory = factory
        self._endpoint_url = endpoint_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self._factory(self._endpoint_url), name)


def lazy[C](factory: Callable[[str | None], C], endpoint_url: str | None = None) -> C:
    """``factory(endpoint_url)``'s client, made when it is first used."""
    return cast(C, _Lazy(factory, endpoint_url))


def close_connections() -> None:
    """Close the pooled connections of every client made so far (SnapStart: they do not
    survive a snapshot). The clients stay usable: their next call connects anew."""
    for client in list(_MADE):
        client.close()


def websocket_management(endpoint_url: str) -> Any:
    """The API Gateway Management API of one WebSocket API stage (post_to_connection)."""
    return _client("apigatewaymanagementapi", endpoint_url=endpoint_url, config=_CONFIG)
