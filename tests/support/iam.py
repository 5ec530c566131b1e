"""The IAM trace: every AWS call a function's code makes in the suite, checked against that
function's own policy in the synthesized template.

moto's own IAM enforcement cannot do this (it checks DynamoDB against ``Resource: *``, does
not understand Secrets Manager's ``-??????`` suffix and ignores conditions), so the check is
done here, from AWS's documented rules:

* A call is **recorded** (:func:`install`) when a handler module's ``handler`` is on the
  calling thread's stack: it is then that function's code, whatever room made the call.
* Each call is **mapped** (:func:`requests_of`) to the IAM actions it needs and the resource
  ARN of each (DynamoDB tables and indexes, queues, objects and their bucket, secrets,
  WebSocket connections), with the condition keys the action carries (``s3:prefix``).
* Each request must be **allowed** (:func:`violations`) by an ``Allow`` statement of the
  function's role: its actions and resources matched as IAM does (``*`` and ``?`` within an
  ARN), its conditions evaluated (``StringEquals``, ``StringLike``; any other operator fails
  closed). A call not allowed is reported with the function, action and resource.
* Every granted (action, resource) must be **used** (:func:`unused_grants`) by a recorded
  call, or be a reviewed exception with its reason.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

HANDLERS_PACKAGE: Final = "atlas_codex.handlers."
ACCOUNT: Final = "<account>"
"""Account ids are masked to this in the snapshots; recorded ARNs use it too."""


@dataclass(frozen=True)
class Call:
    """One AWS API call made by a function's code."""

    function: str
    service: str
    operation: str
    params: dict[str, Any]
    region: str
    endpoint: str = ""

    def to_json(self) -> str:
        return json.dumps(self.__dict__, default=str, sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Call:
        return cls(**json.loads(line))


@dataclass(frozen=True)
class Request:
    """What IAM evaluates for one action of a call."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------- recording


_HANDED_ON = threading.local()
"""The function a thread-pool task was submitted from (its own stack has no handler)."""


def calling_function() -> str | None:
    """The function whose ``handler`` is on this thread's stack (innermost first), or the one
    that submitted the thread-pool task this thread is running."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if name.startswith(HANDLERS_PACKAGE) and frame.f_code.co_name == "handler":
            return str(name.removeprefix(HANDLERS_PACKAGE))
        frame = frame.f_back  # type: ignore[assignment]
    handed: str | None = getattr(_HANDED_ON, "function", None)
    return handed


def _follow_thread_pools() -> None:
    """A task submitted to a thread pool runs as the function that submitted it (the health
    monitor runs its checks side by side, a batch's children are cancelled side by side)."""
    from concurrent.futures import ThreadPoolExecutor

    submit = ThreadPoolExecutor.submit

    def traced_submit(self: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = calling_function()

        def run(*a: Any, **k: Any) -> Any:
            previous = getattr(_HANDED_ON, "function", None)
            _HANDED_ON.function = owner
            try:
                return fn(*a, **k)
            finally:
                _HANDED_ON.function = previous

        return submit(self, run, *args, **kwargs)

    ThreadPoolExecutor.submit = traced_submit  # type: ignore[method-assign]


_SUMMARY_KEYS: Final = (
    "TableName",
    "IndexName",
    "RequestItems",
    "TransactItems",
    "QueueUrl",
    "Bucket",
    "Key",
    "Prefix",
    "SecretId",
    "ConnectionId",
)


def _summary(params: Mapping[str, Any]) -> dict[str, Any]:
    """What the mapping needs of a call's parameters (never item contents)."""
    out: dict[str, Any] = {}
    for key in _SUMMARY_KEYS:
        if key not in params:
            continue
        value = params[key]
        if key == "RequestItems":
            value = sorted(value)
        elif key == "TransactItems":
            value = [
                {kind: {"TableName": body.get("TableName")} for kind, body in item.items()}
                for item in value
            ]
        out[key] = value
    return out


def install(directory: Path, worker: str) -> None:
    """Record every call a function makes in this process to ``directory/<worker>.jsonl``."""
    from botocore import signers
    from botocore.client import BaseClient

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{worker}.jsonl"
    lock = threading.Lock()
    make_api_call = BaseClient._make_api_call  # type: ignore[attr-defined]
    presign = signers.generate_presigned_url  # attached to each S3 client class when made

    def record(client: Any, operation: str, params: Mapping[str, Any]) -> None:
        function = calling_function()
        if function is None:
            return
        call = Call(
            function=function,
            service=client.meta.service_model.service_name,
            operation=operation,
            params=_summary(params),
            region=client.meta.region_name,
            endpoint=client.meta.endpoint_url,
        )
        with lock, path.open("a") as out:
            out.write(call.to_json() + "\n")

    def traced_call(self: Any, operation_name: str, api_params: Any) -> Any:
        record(self, operation_name, api_params)
        return make_api_call(self, operation_name, api_params)

    def traced_presign(
        self: Any,
        ClientMethod: str,  # noqa: N803 - botocore's own parameter names
        Params: Any = None,  # noqa: N803
        **kwargs: Any,
    ) -> Any:
        operation = self.meta.method_to_api_mapping.get(ClientMethod, ClientMethod)
        record(self, operation, Params or {})
        return presign(self, ClientMethod, Params, **kwargs)

    BaseClient._make_api_call = traced_call  # type: ignore[attr-defined]
    _follow_thread_pools()
    signers.generate_presigned_url = traced_presign  # type: ignore[assignment]


def read_calls(directory: Path) -> list[Call]:
    calls: list[Call] = []
    for path in sorted(directory.glob("*.jsonl")):
        calls.extend(Call.from_json(line) for line in path.read_text().splitlines() if line)
    return calls


# ---------------------------------------------------------------------- calls -> requests

_DYNAMODB_TRANSACT: Final = {
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
}
_S3_ACTIONS: Final = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
}
_SQS_ACTIONS: Final = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
}
_CONNECTION_METHODS: Final = {
    "PostToConnection": "POST",
    "DeleteConnection": "DELETE",
    "GetConnection": "GET",
}


def requests_of(call: Call) -> list[Request]:
    """The IAM requests one call makes (AWS's service authorization reference)."""
    region, p = call.region, call.params
    if call.service == "dynamodb":

        def table(name: str, index: str | None = None) -> str:
            arn = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}"
            return f"{arn}/index/{index}" if index else arn

        if call.operation == "TransactWriteItems":
            return [
                Request(_DYNAMODB_TRANSACT[kind], table(body["TableName"]))
                for item in p["TransactItems"]
                for kind, body in item.items()
            ]
        if call.operation in ("BatchGetItem", "BatchWriteItem"):
            return [Request(f"dynamodb:{call.operation}", table(t)) for t in p["RequestItems"]]
        return [Request(f"dynamodb:{call.operation}", table(p["TableName"], p.get("IndexName")))]
    if call.service == "sqs":
        queue = urlsplit(p["QueueUrl"]).path.rstrip("/").rsplit("/", 1)[-1]
        action = _SQS_ACTIONS.get(call.operation, f"sqs:{call.operation}")
        return [Request(action, f"arn:aws:sqs:{region}:{ACCOUNT}:{queue}")]
    if call.service == "s3":
        action = _S3_ACTIONS[call.operation]
        bucket = mask_account(p["Bucket"])
        if action == "s3:ListBucket":
            return [Request(action, f"arn:aws:s3:::{bucket}", {"s3:prefix": p.get("Prefix", "")})]
        return [Request(action, f"arn:aws:s3:::{bucket}/{p['Key']}")]
    if call.service == "secretsmanager":
        return [
            Request(
                f"secretsmanager:{call.operation}",
                f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{p['SecretId']}-AbCdEf",
            )
        ]
    if call.service == "apigatewaymanagementapi":
        stage = urlsplit(call.endpoint).path.strip("/").split("/")[-1]
        method = _CONNECTION_METHODS[call.operation]
        connection = unquote(p["ConnectionId"])
        return [
            Request(
                "execute-api:ManageConnections",
                f"arn:aws:execute-api:{region}:{ACCOUNT}:{{ref}}/{stage}/{method}/@connections/{connection}",
            )
        ]
    raise ValueError(f"no IAM mapping for {call.service}:{call.operation}: add one")


def mask_account(text: str) -> str:
    return re.sub(r"\b\d{12}\b", ACCOUNT, text)


# ---------------------------------------------------------------------- policies


@dataclass(frozen=True)
class Statement:
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, Any]]
    source: str
    """The policy (logical id) it comes from, or the managed policy's name."""

    def grants(self) -> Iterator[tuple[str, str]]:
        for action in self.actions:
            for resource in self.resources:
                yield action, resource


def resolve(value: Any) -> Any:
    """A template value as a string: ``Fn::Join`` joined, ``Ref``/``Fn::GetAtt`` of a
    resource as ``{ref}`` (ids known only at deploy time), pseudo parameters filled in."""
    if isinstance(value, str):
        return mask_account(value)
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(str(resolve(part)) for part in parts)
        if "Ref" in value:
            return {"AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}.get(
                value["Ref"], "{ref}"
            )
        if "Fn::GetAtt" in value:
            return "{ref}"
        return {k: resolve(v) for k, v in value.items()}
    return value


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def role_of(template: Mapping[str, Any], function_name: str) -> str:
    resources = template["Resources"]
    for resource in resources.values():
        props = resource.get("Properties", {})
        if (
            resource["Type"] == "AWS::Lambda::Function"
            and props.get("FunctionName") == function_name
        ):
            role = props["Role"]
            return str(role["Fn::GetAtt"][0])
    raise KeyError(f"no function {function_name} in the template")


def statements(template: Mapping[str, Any], function_name: str) -> list[Statement]:
    """Every Allow statement of the function's role (inline policies of the template)."""
    role = role_of(template, function_name)
    found: list[Statement] = []
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [r.get("Ref") for r in resource["Properties"].get("Roles", [])]
        if role not in roles:
            continue
        for st in resource["Properties"]["PolicyDocument"]["Statement"]:
            if st.get("Effect") != "Allow":
                continue
            found.append(
                Statement(
                    actions=_as_tuple(st["Action"]),
                    resources=tuple(str(r) for r in _as_tuple(resolve(st["Resource"]))),
                    conditions=resolve(st.get("Condition", {})),
                    source=logical_id,
                )
            )
    return found


def _arn_match(pattern: str, arn: str) -> bool:
    # IAM: * and ? match within the whole ARN string (including across '/' in resource paths).
    return fnmatch.fnmatchcase(arn, pattern.replace("[", "[[]"))


def _conditions_hold(
    conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]
) -> bool:
    for operator, keys in conditions.items():
        for key, wanted in keys.items():
            options = wanted if isinstance(wanted, list) else [wanted]
            if key not in context:
                return False
            got = context[key]
            if operator == "StringEquals":
                ok = got in options
            elif operator == "StringLike":
                ok = any(fnmatch.fnmatchcase(got, o) for o in options)
            else:
                return False  # an operator this checker does not know fails closed
            if not ok:
                return False
    return True


def allowed_by(request: Request, found: Iterable[Statement]) -> Statement | None:
    for st in found:
        if not any(fnmatch.fnmatchcase(request.action, a) for a in st.actions):
            continue
        if not any(_arn_match(r, request.resource) for r in st.resources):
            continue
        if _conditions_hold(st.conditions, request.context):
            return st
    return None


@dataclass(frozen=True)
class Violation:
    function: str
    action: str
    resource: str
    operation: str

    def __str__(self) -> str:
        return (
            f"{self.function}: {self.action} on {self.resource} "
            f"(from {self.operation}) is not allowed by its role"
        )


def function_name(function: str, stage: str) -> str:
    return f"atlas-codex-{function}-{stage}"


def violations(calls: Iterable[Call], template: Mapping[str, Any], stage: str) -> list[Violation]:
    found: dict[Violation, None] = {}
    cache: dict[str, list[Statement]] = {}
    for call in calls:
        policy = cache.setdefault(
            call.function, statements(template, function_name(call.function, stage))
        )
        for request in requests_of(call):
            if allowed_by(request, policy) is None:
                found[
                    Violation(call.function, request.action, request.resource, call.operation)
                ] = None
    return list(found)


@dataclass(frozen=True)
class KeptGrant:
    """A grant no recorded call uses, kept on purpose."""

    function: str
    action: str
    resource: str
    reason: str

    def covers(self, function: str, action: str, resource: str) -> bool:
        return (
            fnmatch.fnmatchcase(function, self.function)
            and fnmatch.fnmatchcase(action, self.action)
            and fnmatch.fnmatchcase(resource, self.resource)
        )


def unused_grants(
    calls: Iterable[Call],
    template: Mapping[str, Any],
    stage: str,
    functions: Iterable[str],
    exceptions: Iterable[KeptGrant],
) -> list[str]:
    """Each (function, action, resource) granted that no recorded call used and no reviewed
    exception covers."""
    used: dict[str, set[tuple[str, str]]] = {}
    by_function: dict[str, list[Call]] = {}
    for call in calls:
        by_function.setdefault(call.function, []).append(call)
    kept = list(exceptions)
    problems = []
    for function in functions:
        policy = statements(template, function_name(function, stage))
        hits = used.setdefault(function, set())
        for call in by_function.get(function, []):
            for request in requests_of(call):
                for st in policy:
                    for action, resource in st.grants():
                        if (
                            fnmatch.fnmatchcase(request.action, action)
                            and _arn_match(resource, request.resource)
                            and _conditions_hold(st.conditions, request.context)
                        ):
                            hits.add((action, resource))
        for st in policy:
            for action, resource in st.grants():
                if (action, resource) in hits:
                    continue
                if any(e.covers(function, action, resource) for e in kept):
                    continue
                problems.append(f"{function}: {action} on {resource} is granted but never used")
    return sorted(set(problems))


def trace_directory() -> Path | None:
    value = os.environ.get("ATLAS_IAM_TRACE_DIR")
    return Path(value) if value else None
