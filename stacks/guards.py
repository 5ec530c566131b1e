"""Synth-time guards no linter makes, over the synthesized templates of one stage.

``app.py`` runs them on every synthesis, after cdk-nag; ``python -m stacks.guards cdk.out``
checks a cloud assembly on its own;
the infra tests run the same checks on every stage and prove each one fires.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

from atlas_codex.ground import naming
from atlas_codex_stage.settings import (
    BUDGET_MAX_NOTIFICATIONS,
    DEFAULT_ACCOUNT_CONCURRENCY,
    UNRESERVED_CONCURRENCY,
    VISIBILITY_TO_TIMEOUT_RATIO,
)
from stacks import access_logs

ROOT: Final = Path(__file__).resolve().parent.parent
RUNBOOK_PATH: Final = ROOT / "docs" / "RUNBOOK.md"

Resources = Mapping[str, Mapping[str, Any]]
"""``logical id -> resource`` over every template of one stage (ids are unique per stage)."""

# The property that names a resource, per CloudFormation type.
NAME_PROPERTIES: Final = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::IAM::Role": "RoleName",
    "AWS::Events::Rule": "Name",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::ApiGateway::RestApi": "Name",
    "AWS::ApiGatewayV2::Api": "Name",
    "AWS::ApiGateway::UsagePlan": "UsagePlanName",
    "AWS::WAFv2::WebACL": "Name",
    "AWS::Logs::LogGroup": "LogGroupName",
}
UNNAMED_ALLOWED: Final = frozenset({"AWS::IAM::Role"})
"""Roles CDK makes for itself (API Gateway's logging role) keep generated names."""
STATEFUL_TYPES: Final = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key")
LOG_GROUP_PREFIXES: Final = ("/aws/lambda/", "/aws/apigateway/")
ACCOUNT_LIMIT_METADATA: Final = "AtlasCodex::AccountConcurrencyLimit"
"""Template metadata of the compute stack: the account limit its reserved concurrency is for."""
_RUNBOOK_LINK: Final = re.compile(r"Runbook: docs/RUNBOOK\.md#([a-z0-9-]+)$")


def merge(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """All resources of a stage's templates (``layer -> template``) by logical id."""
    out: dict[str, Mapping[str, Any]] = {}
    for layer, template in templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            out[f"{layer}/{logical_id}"] = resource
    return out


def of_type(resources: Resources, kind: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for logical_id, resource in resources.items():
        if resource["Type"] == kind:
            yield logical_id, resource


def _local_id(key: str) -> str:
    return key.split("/", 1)[-1]


def _find(resources: Resources, logical_id: str) -> Mapping[str, Any] | None:
    for key, resource in resources.items():
        if _local_id(key) == logical_id:
            return resource
    return None


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


def check_names(resources: Resources, stage: str) -> list[str]:
    problems = []
    for key, resource in resources.items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop is None:
            continue
        name = resource.get("Properties", {}).get(prop)
        if name is None and resource["Type"] in UNNAMED_ALLOWED:
            continue
        if not isinstance(name, str):
            problems.append(f"{key}: {prop} must be a literal name from the naming scheme")
            continue
        try:
            if resource["Type"] == "AWS::S3::Bucket":
                if not naming.parse_bucket_name(name).endswith(f"-{stage}"):
                    problems.append(f"{key}: bucket {name!r} is not the {stage} stage's")
                continue
            if resource["Type"] == "AWS::Logs::LogGroup":
                prefix = next((p for p in LOG_GROUP_PREFIXES if name.startswith(p)), None)
                if prefix is None:
                    problems.append(f"{key}: log group {name!r} is not under {LOG_GROUP_PREFIXES}")
                    continue
                name = name[len(prefix) :]
            if naming.parse_name(name)[1] != stage:
                problems.append(f"{key}: {name!r} belongs to another stage than {stage}")
        except naming.NamingError as exc:
            problems.append(f"{key}: {exc}")
    return problems


def _queue_name_of_arn(arn: Any) -> str | None:
    if isinstance(arn, str):
        return arn.rsplit(":", 1)[-1]
    if isinstance(arn, dict) and "Fn::Join" in arn:
        last = arn["Fn::Join"][1][-1]
        return last.rsplit(":", 1)[-1] if isinstance(last, str) else None
    return None


def check_visibility(resources: Resources) -> list[str]:
    """Each consumed queue's visibility timeout is at least 6x its consumer's timeout."""
    problems = []
    queues = {
        r["Properties"]["QueueName"]: r["Properties"]
        for _, r in of_type(resources, "AWS::SQS::Queue")
    }
    for key, mapping in of_type(resources, "AWS::Lambda::EventSourceMapping"):
        props = mapping["Properties"]
        queue_name = _queue_name_of_arn(props.get("EventSourceArn"))
        function_id = _ref(props.get("FunctionName"))
        function = _find(resources, function_id) if function_id else None
        if queue_name not in queues or function is None:
            problems.append(f"{key}: cannot tell which queue feeds which function")
            continue
        timeout = function["Properties"].get("Timeout", 3)
        visibility = queues[queue_name].get("VisibilityTimeout", 30)
        if visibility < VISIBILITY_TO_TIMEOUT_RATIO * timeout:
            problems.append(
                f"{queue_name}: visibility timeout {visibility} s < "
                f"{VISIBILITY_TO_TIMEOUT_RATIO} x {function['Properties']['FunctionName']}'s "
                f"timeout ({timeout} s)"
            )
    return problems


def check_dead_letter_queues(resources: Resources) -> list[str]:
    """Every queue either redrives to a DLQ or is one."""
    queues = dict(of_type(resources, "AWS::SQS::Queue"))
    targets = {
        _ref(q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
        for q in queues.values()
        if "RedrivePolicy" in q.get("Properties", {})
    }
    return [
        f"{key}: {q['Properties'].get('QueueName')} has no dead-letter queue"
        for key, q in queues.items()
        if "RedrivePolicy" not in q.get("Properties", {}) and _local_id(key) not in targets
    ]


def _alarmed_function_errors(alarm: Mapping[str, Any]) -> set[str]:
    """Function names whose Errors metric this alarm's math expression watches."""
    names = set()
    for query in alarm["Properties"].get("Metrics", []):
        stat = query.get("MetricStat", {}).get("Metric", {})
        if stat.get("MetricName") == "Errors" and stat.get("Namespace") == "AWS/Lambda":
            for dim in stat.get("Dimensions", []):
                if dim["Name"] == "FunctionName":
                    names.add(dim["Value"])
    return names


def check_functions(resources: Resources) -> list[str]:
    """Every function logs to its own log group with retention and has an error-rate alarm."""
    problems = []
    alarmed: set[str] = set()
    for _, alarm in of_type(resources, "AWS::CloudWatch::Alarm"):
        alarmed |= _alarmed_function_errors(alarm)
    for key, function in of_type(resources, "AWS::Lambda::Function"):
        props = function["Properties"]
        name = props.get("FunctionName", key)
        group_id = _ref(props.get("LoggingConfig", {}).get("LogGroup"))
        group = _find(resources, group_id) if group_id else None
        if group is None:
            problems.append(f"{name}: no explicit log group")
        elif not group["Properties"].get("RetentionInDays"):
            problems.append(f"{name}: its log group keeps logs forever (no retention)")
        if name not in alarmed:
            problems.append(f"{name}: no alarm on its error rate")
    return problems


def runbook_sections(text: str) -> set[str]:
    """GitHub's anchors of the Markdown headings in ``text``."""
    anchors = set()
    for line in text.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^a-z0-9 -]", "", title).replace(" ", "-"))
    return anchors


def check_alarms(resources: Resources, runbook: str) -> list[str]:
    """Every alarm's description ends with a link to a RUNBOOK section that exists."""
    sections = runbook_sections(runbook)
    problems = []
    for key, alarm in of_type(resources, "AWS::CloudWatch::Alarm"):
        description = alarm["Properties"].get("AlarmDescription", "")
        match = _RUNBOOK_LINK.search(description)
        if match is None:
            problems.append(f"{key}: the description does not end with its runbook link")
        elif match.group(1) not in sections:
            problems.append(f"{key}: docs/RUNBOOK.md has no section #{match.group(1)}")
        if not alarm["Properties"].get("AlarmActions"):
            problems.append(f"{key}: the alarm notifies nobody")
    return problems


RETAINED_ON_DELETE: Final = frozenset({"Retain", "RetainExceptOnCreate"})
"""Deletion policies that keep a resource once it exists (RetainExceptOnCreate lets a failed
first create roll back cleanly, so its retry does not meet a retained, named leftover)."""


def check_retention(resources: Resources, stage: str) -> list[str]:
    """Prod keeps its stateful resources when the stack deletes or replaces them."""
    if stage != "prod":
        return []
    return [
        f"{key}: {resource['Type']} is not retained on delete and replace"
        for key, resource in resources.items()
        if resource["Type"] in STATEFUL_TYPES
        and (
            resource.get("DeletionPolicy") not in RETAINED_ON_DELETE
            or resource.get("UpdateReplacePolicy") != "Retain"
        )
    ]


def check_access_logs(resources: Resources) -> list[str]:
    """Each API stage's access-log format names only variables of its own API type: API
    Gateway refuses to create a stage whose format uses another type's variables."""
    problems = []
    kinds = (
        ("AWS::ApiGateway::Stage", "AccessLogSetting", "REST", access_logs.REST_VARIABLES),
        (
            "AWS::ApiGatewayV2::Stage",
            "AccessLogSettings",
            "WebSocket",
            access_logs.WEBSOCKET_VARIABLES,
        ),
    )
    for kind, prop, label, known in kinds:
        for key, stage in of_type(resources, kind):
            log_format = stage["Properties"].get(prop, {}).get("Format")
            if not isinstance(log_format, str):
                continue
            unknown = sorted(access_logs.variables(log_format) - known)
            if unknown:
                problems.append(
                    f"{key}: the access-log format uses {', '.join('$context.' + v for v in unknown)}"
                    f", not variables of a {label} API"
                )
    return problems


def check_account_role(resources: Resources) -> list[str]:
    """A stage that writes logs waits for the account's API Gateway CloudWatch role: on a
    fresh account or region it cannot be created before it ("CloudWatch Logs role ARN must
    be set in account settings")."""
    accounts = {_local_id(key) for key, _ in of_type(resources, "AWS::ApiGateway::Account")}
    problems = []
    for kind, prop in (
        ("AWS::ApiGateway::Stage", "AccessLogSetting"),
        ("AWS::ApiGatewayV2::Stage", "AccessLogSettings"),
    ):
        for key, stage in of_type(resources, kind):
            if prop not in stage.get("Properties", {}):
                continue
            depends = stage.get("DependsOn", [])
            depends = [depends] if isinstance(depends, str) else depends
            if not accounts & set(depends):
                problems.append(
                    f"{key}: logs to CloudWatch but does not depend on the account's API "
                    "Gateway CloudWatch role (AWS::ApiGateway::Account)"
                )
    return problems


def check_budgets(resources: Resources) -> list[str]:
    """AWS Budgets takes at most ten notifications per budget."""
    return [
        f"{key}: {len(notes)} notifications; AWS Budgets allows {BUDGET_MAX_NOTIFICATIONS}"
        for key, budget in of_type(resources, "AWS::Budgets::Budget")
        if len(notes := budget["Properties"].get("NotificationsWithSubscribers", []))
        > BUDGET_MAX_NOTIFICATIONS
    ]


def check_concurrency(resources: Resources, account_limit: int) -> list[str]:
    """Reserved concurrency leaves AWS's 100 unreserved executions of the account's limit."""
    reserved = sum(
        int(fn["Properties"].get("ReservedConcurrentExecutions", 0))
        for _, fn in of_type(resources, "AWS::Lambda::Function")
    )
    if reserved > account_limit - UNRESERVED_CONCURRENCY:
        return [
            f"functions reserve {reserved} concurrent executions; an account limit of "
            f"{account_limit} leaves only {account_limit - reserved} unreserved "
            f"(AWS requires {UNRESERVED_CONCURRENCY})"
        ]
    return []


def check_log_groups_on_create(resources: Resources) -> list[str]:
    """A retained, named log group must not survive a failed first create (the retry would
    fail "already exists"): retained ones are RetainExceptOnCreate."""
    return [
        f"{key}: {group['Properties'].get('LogGroupName')} is retained even when its first "
        "create fails; use RetainExceptOnCreate"
        for key, group in of_type(resources, "AWS::Logs::LogGroup")
        if group.get("DeletionPolicy") == "Retain"
    ]


def account_limit_of(templates: Mapping[str, Mapping[str, Any]]) -> int:
    """The account's concurrency limit the compute stack was synthesized for."""
    compute = templates.get("compute", {})
    value = compute.get("Metadata", {}).get(ACCOUNT_LIMIT_METADATA, DEFAULT_ACCOUNT_CONCURRENCY)
    return int(value)


def check_stage(
    resources: Resources,
    stage: str,
    runbook: str | None = None,
    *,
    account_limit: int = DEFAULT_ACCOUNT_CONCURRENCY,
) -> list[str]:
    text = RUNBOOK_PATH.read_text() if runbook is None else runbook
    return [
        *check_names(resources, stage),
        *check_visibility(resources),
        *check_dead_letter_queues(resources),
        *check_functions(resources),
        *check_alarms(resources, text),
        *check_retention(resources, stage),
        *check_access_logs(resources),
        *check_account_role(resources),
        *check_budgets(resources),
        *check_concurrency(resources, account_limit),
        *check_log_groups_on_create(resources),
    ]


def templates_in(cloud_assembly: Path) -> dict[str, dict[str, Any]]:
    """``stage -> (layer -> template)`` for every Atlas Codex stack in a cloud assembly."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(cloud_assembly.glob(f"{naming.PROJECT}-*.template.json")):
        layer, stage = naming.parse_name(path.name.removesuffix(".template.json"))
        out.setdefault(stage, {})[layer] = json.loads(path.read_text())
    return out


def main(argv: list[str] | None = None, *, quiet: bool = False) -> int:
    args = sys.argv[1:] if argv is None else argv
    assembly = Path(args[0] if args else "cdk.out")
    stages = templates_in(assembly)
    if not stages:
        print(f"guards: no Atlas Codex templates in {assembly}/", file=sys.stderr)
        return 2
    failed = False
    for stage, templates in stages.items():
        problems = check_stage(merge(templates), stage, account_limit=account_limit_of(templates))
        for problem in problems:
            print(f"guards: {stage}: {problem}", file=sys.stderr)
        failed |= bool(problems)
        if not quiet:
            print(f"guards: {stage}: {'FAILED' if problems else 'ok'} ({len(templates)} stacks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
