"""THE naming scheme: every AWS resource name of Atlas Codex is made here.

Stacks (at synth time) and the runtime (at cold start) both import this module, so a
name is spelled in exactly one place: ``atlas-codex-{resource}-{stage}``, and for the
artifacts bucket ``atlas-codex-artifacts-{instance_id}``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final, Literal, get_args

PROJECT: Final = "atlas-codex"

Stage = Literal["local", "dev", "staging", "prod"]
STAGES: Final[tuple[Stage, ...]] = get_args(Stage)
DEPLOYABLE_STAGES: Final[tuple[Stage, ...]] = ("dev", "staging", "prod")

# The resources we know by name. Adding one here is the only way to name a new one.
TableResource = Literal["jobs", "connections", "idempotency", "usage"]
QueueResource = Literal["queue", "dlq", "webhooks", "webhooks-dlq"]
FunctionResource = Literal["api", "worker", "webhooks", "websocket", "health", "render"]
TABLES: Final[tuple[TableResource, ...]] = get_args(TableResource)
QUEUES: Final[tuple[QueueResource, ...]] = get_args(QueueResource)
FUNCTIONS: Final[tuple[FunctionResource, ...]] = get_args(FunctionResource)

ARTIFACTS: Final = "artifacts"

_RESOURCE_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_INSTANCE_RE: Final = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class NamingError(ValueError):
    """A name that would break the scheme or an AWS limit. The message says which part."""


class Kind(StrEnum):
    """AWS resource kinds, each with the maximum name length AWS accepts for it."""

    TABLE = "table"
    QUEUE = "queue"
    FUNCTION = "function"
    ALARM = "alarm"
    TOPIC = "topic"
    ROLE = "role"
    LOG_GROUP = "log-group"
    RULE = "rule"
    API = "api"
    DASHBOARD = "dashboard"
    BUDGET = "budget"
    STACK = "stack"
    USAGE_PLAN = "usage-plan"
    WEB_ACL = "web-acl"
    SSM_PARAMETER = "ssm-parameter"
    SECRET = "secret"  # noqa: S105 - a resource kind


MAX_LENGTH: Final[dict[Kind, int]] = {
    Kind.TABLE: 255,
    Kind.QUEUE: 80,
    Kind.FUNCTION: 64,
    Kind.ALARM: 255,
    Kind.TOPIC: 256,
    Kind.ROLE: 64,
    Kind.LOG_GROUP: 512,
    Kind.RULE: 64,
    Kind.API: 1024,
    Kind.DASHBOARD: 255,
    Kind.BUDGET: 100,
    Kind.STACK: 128,
    Kind.USAGE_PLAN: 1024,
    Kind.WEB_ACL: 128,
    Kind.SSM_PARAMETER: 1011,
    Kind.SECRET: 512,
}
BUCKET_MAX_LENGTH: Final = 63


def check_stage(stage: str) -> Stage:
    """Return ``stage`` if it is one of :data:`STAGES`, else raise :class:`NamingError`."""
    if stage not in STAGES:
        raise NamingError(f"invalid stage {stage!r}: expected one of {', '.join(STAGES)}")
    return stage


def check_resource(resource: str) -> str:
    """A resource part: lower-case letters, digits and single '-' between them."""
    if not _RESOURCE_RE.fullmatch(resource):
        raise NamingError(
            f"invalid resource name {resource!r}: use lower-case letters, digits and single "
            "'-' between them (no leading, trailing or doubled '-')"
        )
    return resource


def resource_name(kind: Kind, resource: str, stage: str) -> str:
    """``atlas-codex-{resource}-{stage}``, checked against the limit of ``kind``."""
    name = f"{PROJECT}-{check_resource(resource)}-{check_stage(stage)}"
    limit = MAX_LENGTH[kind]
    if len(name) > limit:
        raise NamingError(
            f"{kind.value} name {name!r} is {len(name)} characters; AWS allows at most {limit}"
        )
    return name


def table_name(resource: TableResource, stage: str) -> str:
    return resource_name(Kind.TABLE, _known(resource, TABLES, "table"), stage)


def queue_name(resource: QueueResource, stage: str) -> str:
    return resource_name(Kind.QUEUE, _known(resource, QUEUES, "queue"), stage)


def function_name(resource: FunctionResource, stage: str) -> str:
    return resource_name(Kind.FUNCTION, _known(resource, FUNCTIONS, "function"), stage)


def log_group_name(function: FunctionResource, stage: str) -> str:
    return f"/aws/lambda/{function_name(function, stage)}"


def alarm_name(resource: str, stage: str) -> str:
    return resource_name(Kind.ALARM, resource, stage)


def topic_name(resource: str, stage: str) -> str:
    return resource_name(Kind.TOPIC, resource, stage)


def stack_name(component: str, stage: str) -> str:
    return resource_name(Kind.STACK, component, stage)


def bucket_name(instance_id: str) -> str:
    """``atlas-codex-artifacts-{instance_id}``: S3 names are global, so the instance id
    (account, region and stage) makes them unique. 3-63 characters, no dots."""
    if not _INSTANCE_RE.fullmatch(instance_id):
        raise NamingError(
            f"invalid bucket instance id {instance_id!r}: use lower-case letters, digits and "
            "single '-' between them"
        )
    name = f"{PROJECT}-{ARTIFACTS}-{instance_id}"
    if len(name) > BUCKET_MAX_LENGTH:
        raise NamingError(
            f"bucket name {name!r} is {len(name)} characters; S3 allows at most {BUCKET_MAX_LENGTH}"
        )
    return name


def instance_id(account: str, region: str, stage: str) -> str:
    """The bucket's instance id for one deployment: ``{account}-{region}-{stage}``."""
    return f"{account}-{region}-{check_stage(stage)}"


def parse_name(name: str) -> tuple[str, Stage]:
    """Split ``atlas-codex-{resource}-{stage}`` into ``(resource, stage)``.

    Raises :class:`NamingError` when ``name`` does not follow the scheme. Bucket names
    are not parsed here (their suffix is an instance id): see :func:`parse_bucket_name`.
    """
    prefix = f"{PROJECT}-"
    if not name.startswith(prefix):
        raise NamingError(f"name {name!r} does not start with {prefix!r}")
    rest = name[len(prefix) :]
    resource, sep, stage = rest.rpartition("-")
    if not sep or not resource:
        raise NamingError(f"name {name!r} is not of the form {PROJECT}-{{resource}}-{{stage}}")
    check_resource(resource)
    return resource, check_stage(stage)


def parse_bucket_name(name: str) -> str:
    """Return the instance id of an artifacts bucket name, or raise :class:`NamingError`."""
    prefix = f"{PROJECT}-{ARTIFACTS}-"
    if not name.startswith(prefix):
        raise NamingError(f"bucket name {name!r} does not start with {prefix!r}")
    instance = name[len(prefix) :]
    if bucket_name(instance) != name:  # pragma: no cover - bucket_name either equals or raises
        raise NamingError(f"bucket name {name!r} does not follow the scheme")
    return instance


def _known(resource: str, known: tuple[str, ...], what: str) -> str:
    if resource not in known:
        raise NamingError(f"unknown {what} {resource!r}: expected one of {', '.join(known)}")
    return resource


# --------------------------------------------------------------- the rest of the stage's names

METRICS_NAMESPACE: Final = "AtlasCodex"
"""The CloudWatch namespace of the application's own metrics (Powertools Metrics, EMF)."""


def service_name(function: FunctionResource) -> str:
    """The Powertools service name of a function: ``atlas-codex-{function}`` (no stage:
    logs and metrics carry the stage as their own key)."""
    return f"{PROJECT}-{_known(function, FUNCTIONS, 'function')}"


def role_name(function: FunctionResource, stage: str) -> str:
    return resource_name(Kind.ROLE, f"{_known(function, FUNCTIONS, 'function')}-role", stage)


def rest_api_name(stage: str) -> str:
    return resource_name(Kind.API, "api", stage)


def websocket_api_name(stage: str) -> str:
    return resource_name(Kind.API, "websocket", stage)


def access_log_group_name(stage: str, api: Literal["rest", "websocket"] = "rest") -> str:
    name = rest_api_name(stage) if api == "rest" else websocket_api_name(stage)
    return f"/aws/apigateway/{name}"


def usage_plan_name(stage: str) -> str:
    return resource_name(Kind.USAGE_PLAN, "usage-plan", stage)


def web_acl_name(stage: str) -> str:
    return resource_name(Kind.WEB_ACL, "waf", stage)


def schedule_rule_name(stage: str) -> str:
    return resource_name(Kind.RULE, "health-schedule", stage)


def alarm_topic_name(stage: str) -> str:
    return topic_name("alarms", stage)


def dashboard_name(stage: str) -> str:
    return resource_name(Kind.DASHBOARD, "dashboard", stage)


def budget_name(stage: str) -> str:
    return resource_name(Kind.BUDGET, "budget", stage)


def openai_secret_name(stage: str) -> str:
    """The Secrets Manager secret holding a deployed stage's OpenAI API key (made by the
    operator, never by a stack: a secret's value does not belong in a template)."""
    return resource_name(Kind.SECRET, "openai-api-key", stage)
