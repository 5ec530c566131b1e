"""Grants that no call recorded in the suite uses, kept on purpose, each with its reason.

Patterns match like IAM's (``*``); ``<account>`` stands for the account id. Every entry here is
a path the suite cannot drive through a handler, or a call made by AWS with the function's
role rather than by its code.
"""

from __future__ import annotations

from typing import Final

from tests.support.iam import KeptGrant

_TABLE = "arn:aws:dynamodb:*:<account>:table/atlas-codex-{}-local"
_POLLER_ACTIONS = (
    "ReceiveMessage",
    "DeleteMessage",
    "ChangeMessageVisibility",
    "GetQueueAttributes",
    "GetQueueUrl",
)
_RESULTS = "arn:aws:s3:::atlas-codex-artifacts-<account>-*-local/results/*"

REVIEWED: Final[tuple[KeptGrant, ...]] = (
    KeptGrant(
        "*",
        "logs:*",
        "*",
        "the Lambda runtime writes the function's logs with its role; the code makes no call",
    ),
    KeptGrant("*", "xray:*", "*", "active tracing: the runtime sends trace segments"),
    *(
        KeptGrant(
            function,
            f"sqs:{action}",
            f"arn:aws:sqs:*:<account>:atlas-codex-{queue}-local",
            "the event source mapping polls and deletes with the consumer's role",
        )
        for function, queue in (("worker", "queue"), ("webhooks", "webhooks"))
        for action in _POLLER_ACTIONS
    ),
    KeptGrant(
        "*",
        "secretsmanager:GetSecretValue",
        "arn:aws:secretsmanager:*:<account>:secret:atlas-codex-openai-api-key-local-*",
        "a deployed stage reads its OpenAI key on the first model call; the suite gives the "
        "key in the environment (the emulator holds no secret)",
    ),
    *(
        KeptGrant(
            function,
            action,
            resource,
            "a status push, only on a stage with a WebSocket API (ATLAS_WEBSOCKET_ENDPOINT): "
            "the local stage has none; tests/integration/test_websocket.py drives LivePush",
        )
        for function in ("api", "worker", "health")
        for action, resource in (
            ("dynamodb:Query", _TABLE.format("connections") + "*"),
            ("dynamodb:DeleteItem", _TABLE.format("connections")),
            ("execute-api:ManageConnections", "*"),
        )
    ),
    KeptGrant(
        "*",
        "s3:ListBucket",
        "*",
        "never called: it lets S3 answer a missing stored page with 404 instead of 403",
    ),
    KeptGrant(
        "*",
        "s3:DeleteObject",
        _RESULTS,
        "a large result completed after the job was cancelled or timed out is refused and its "
        "object removed (tests/integration/test_manager.py, outside a handler)",
    ),
    KeptGrant(
        "api",
        "dynamodb:BatchGetItem",
        _TABLE.format("jobs"),
        "cancelling the last running child of a batch closes the batch (reads its children)",
    ),
    KeptGrant(
        "*",
        "dynamodb:UpdateItem",
        _TABLE.format("usage"),
        "model spend is reserved and committed only by model calls, which the suite runs "
        "through the engine, not a handler with a key (tests/integration/test_llm.py)",
    ),
    KeptGrant(
        "worker",
        "dynamodb:GetItem",
        _TABLE.format("usage"),
        "the budget read before a model call (see the UpdateItem entry)",
    ),
    KeptGrant(
        "worker",
        "dynamodb:GetItem",
        _TABLE.format("idempotency"),
        "Powertools idempotency reads a record only when a message id is seen again while "
        "in progress; the conditional put answers every other case",
    ),
    KeptGrant(
        "worker",
        "s3:*Object",
        _RESULTS,
        "a result over the inline limit, and a batch closed by its last child with large "
        "results: sizes the handler tests do not reach (tests/integration/test_manager.py)",
    ),
    KeptGrant(
        "worker",
        "s3:PutObject",
        "arn:aws:s3:::atlas-codex-artifacts-<account>-*-local/pages/*",
        "pages are stored by the real engine; the worker tests run a scripted engine",
    ),
    *(
        KeptGrant(
            function,
            "lambda:InvokeFunction",
            "arn:aws:lambda:*:<account>:function:atlas-codex-render-local",
            "a deployed api or worker asks the render function for a page built by JavaScript; "
            "moto runs a function only in Docker, which this world has not: local mode renders "
            "in-process, and tests/render/test_render_function.py checks the Invoke request "
            "against botocore's Lambda model",
        )
        for function in ("api", "worker")
    ),
)
