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

from atlas_codex import naming
from atlas_codex_stage.settings import VISIBILITY_TO_TIMEOUT_RATIO

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


def check_retention(resources: Resources, stage: str) -> list[str]:
    """Prod keeps its stateful resources when the stack deletes or replaces them."""
    if stage != "prod":
        return []
    return [
        f"{key}: {resource['Type']} is not retained on delete and replace"
        for key, resource in resources.items()
        if resource["Type"] in STATEFUL_TYPES
        and (
            resource.get("DeletionPolicy") != "Retain"
            or resource.get("UpdateReplacePolicy") != "Retain"
        )
    ]


def check_stage(resources: Resources, stage: str, runbook: str | None = None) -> list[str]:
    text = RUNBOOK_PATH.read_text() if runbook is None else runbook
    return [
        *check_names(resources, stage),
        *check_visibility(resources),
        *check_dead_letter_queues(resources),
        *check_functions(resources),
        *check_alarms(resources, text),
        *check_retention(resources, stage),
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
        problems = check_stage(merge(templates), stage)
        for problem in problems:
            print(f"guards: {stage}: {problem}", file=sys.stderr)
        failed |= bool(problems)
        if not quiet:
            print(f"guards: {stage}: {'FAILED' if problems else 'ok'} ({len(templates)} stacks)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
