"""Change review: masked template snapshots, and a diff that refuses to lose state.

``python -m stacks.review diff cdk.out`` compares the synthesized templates with a baseline —
the snapshots checked in under ``tests/infra/snapshots`` (what main was reviewed as), or with
``--against deployed`` the templates CloudFormation holds for the stage's stacks — and prints,
per stage and stack, the resources added, removed, modified and replaced. It exits non-zero
when a change would replace or delete a stateful resource: a table, a bucket, a key, or a
queue (against deployed stacks: a queue that holds messages). ``cdk diff`` shows changes;
it does not refuse them.

``python -m stacks.review snapshot cdk.out`` rewrites the snapshots from a synthesis.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from atlas_codex.ground import naming
from stacks.guards import templates_in

ROOT: Final = Path(__file__).resolve().parent.parent
SNAPSHOT_DIR: Final = ROOT / "tests" / "infra" / "snapshots"

STATEFUL: Final = frozenset(
    {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::SQS::Queue", "AWS::KMS::Key"}
)
# Properties whose change makes CloudFormation replace the resource (from the CloudFormation
# reference, "Update requires: Replacement"), for the types whose replacement matters here.
REPLACING: Final[dict[str, frozenset[str]]] = {
    "AWS::DynamoDB::Table": frozenset({"TableName", "KeySchema", "LocalSecondaryIndexes"}),
    "AWS::S3::Bucket": frozenset({"BucketName", "ObjectLockEnabled"}),
    "AWS::SQS::Queue": frozenset({"QueueName", "FifoQueue"}),
    "AWS::KMS::Key": frozenset({"KeySpec", "KeyUsage", "MultiRegion"}),
    "AWS::Lambda::Function": frozenset({"FunctionName", "PackageType"}),
    "AWS::IAM::Role": frozenset({"RoleName", "Path"}),
    "AWS::Logs::LogGroup": frozenset({"LogGroupName", "LogGroupClass"}),
    "AWS::SNS::Topic": frozenset({"TopicName", "FifoTopic"}),
    "AWS::CloudWatch::Alarm": frozenset({"AlarmName"}),
    "AWS::CloudWatch::Dashboard": frozenset({"DashboardName"}),
    "AWS::ApiGateway::UsagePlan": frozenset(),
    "AWS::Budgets::Budget": frozenset({"Budget"}),
    "AWS::WAFv2::WebACL": frozenset({"Name", "Scope"}),
    "AWS::ApiGatewayV2::Stage": frozenset({"StageName", "ApiId"}),
    "AWS::ApiGateway::Stage": frozenset({"StageName", "RestApiId"}),
}

_ASSET_HASH: Final = re.compile(r"\b[0-9a-f]{64}\b")
_DEPLOYMENT_HASH: Final = re.compile(r"(Deployment[0-9A-F]{8})[0-9a-f]{32}")
_VERSION_HASH: Final = re.compile(r"(CurrentVersion[0-9A-F]{8})[0-9a-f]{32}")
"""A published version's logical id ends in a hash of the function's code and settings."""
_ACCOUNT: Final = re.compile(r"(?<![0-9])\d{12}(?![0-9])")

Change = Literal["added", "removed", "modified", "replaced"]


def mask(template: Any) -> Any:
    """The template as a reviewer compares it: asset hashes, account ids, the API
    deployment's config hash and a published version's code hash masked (a changed method shows on the method itself), and the
    CDK tooling's ``aws:*`` resource metadata (paths, asset locations) left out."""
    template = json.loads(json.dumps(template))
    for resource in template.get("Resources", {}).values():
        metadata = resource.get("Metadata")
        if isinstance(metadata, dict):
            kept = {k: v for k, v in metadata.items() if not k.startswith("aws:")}
            if kept:
                resource["Metadata"] = kept
            else:
                del resource["Metadata"]
    text = json.dumps(template, sort_keys=True)
    text = _DEPLOYMENT_HASH.sub(r"\1<config-hash>", text)
    text = _VERSION_HASH.sub(r"\1<code-hash>", text)
    text = _ASSET_HASH.sub("<asset-hash>", text)
    text = _ACCOUNT.sub("<account>", text)
    return json.loads(text)


@dataclass
class ResourceChange:
    logical_id: str
    type: str
    change: Change
    properties: list[str] = field(default_factory=list)

    @property
    def stateful(self) -> bool:
        return self.type in STATEFUL

    @property
    def loses_state(self) -> bool:
        return self.stateful and self.change in ("removed", "replaced")


@dataclass
class StackDiff:
    stage: str
    layer: str
    changes: list[ResourceChange]


def diff_templates(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[ResourceChange]:
    old = before.get("Resources", {})
    new = after.get("Resources", {})
    changes: list[ResourceChange] = []
    for logical_id in sorted(set(old) | set(new)):
        if logical_id not in new:
            changes.append(ResourceChange(logical_id, old[logical_id]["Type"], "removed"))
            continue
        if logical_id not in old:
            changes.append(ResourceChange(logical_id, new[logical_id]["Type"], "added"))
            continue
        was, now = old[logical_id], new[logical_id]
        if was["Type"] != now["Type"]:
            changes.append(ResourceChange(logical_id, now["Type"], "replaced", ["Type"]))
            continue
        old_props, new_props = was.get("Properties", {}), now.get("Properties", {})
        changed = sorted(
            key
            for key in set(old_props) | set(new_props)
            if old_props.get(key) != new_props.get(key)
        )
        attributes = [
            key
            for key in ("DeletionPolicy", "UpdateReplacePolicy", "DependsOn", "Condition")
            if was.get(key) != now.get(key)
        ]
        if not changed and not attributes:
            continue
        replacing = REPLACING.get(now["Type"], frozenset())
        kind: Change = "replaced" if replacing & set(changed) else "modified"
        changes.append(ResourceChange(logical_id, now["Type"], kind, changed + attributes))
    return changes


def snapshot_path(stage: str) -> Path:
    return SNAPSHOT_DIR / f"{stage}.json"


def load_snapshot(stage: str) -> dict[str, Any]:
    path = snapshot_path(stage)
    return json.loads(path.read_text()) if path.exists() else {}


def write_snapshot(stage: str, templates: Mapping[str, Any]) -> Path:
    SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(stage)
    masked = {layer: mask(templates[layer]) for layer in sorted(templates)}
    path.write_text(json.dumps(masked, indent=1, sort_keys=True) + "\n")
    return path


QueueDepth = Callable[[str], int | None]
"""Messages in a queue, by name (None: unknown); used only against deployed stacks."""


def index_refusals(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What CloudFormation would reject of a table's global secondary indexes, or what would
    break the running functions: more than one index created or deleted in one update
    (DynamoDB takes one per update), an index's keys or projection changed in place (it must
    be deleted and created under a new name, in two deploys), and an index removed that the
    code still queries (the data stack deploys before the compute stack: the running
    functions would query a deleted index). RUNBOOK, "Changing a table's indexes"."""
    from atlas_codex.ground.table_specs import TABLE_SPECS

    queried = {index.name for spec in TABLE_SPECS for index in spec.indexes}
    problems: list[str] = []
    old_resources, new_resources = before.get("Resources", {}), after.get("Resources", {})
    for logical_id, now in new_resources.items():
        was = old_resources.get(logical_id)
        if now.get("Type") != "AWS::DynamoDB::Table" or was is None:
            continue
        old = {
            i["IndexName"]: i for i in was.get("Properties", {}).get("GlobalSecondaryIndexes", [])
        }
        new = {
            i["IndexName"]: i for i in now.get("Properties", {}).get("GlobalSecondaryIndexes", [])
        }
        created, deleted = sorted(set(new) - set(old)), sorted(set(old) - set(new))
        if len(created) + len(deleted) > 1:
            problems.append(
                f"{logical_id}: {len(created)} index(es) created ({', '.join(created) or '-'}) "
                f"and {len(deleted)} deleted ({', '.join(deleted) or '-'}) in one update; "
                "DynamoDB takes one create or delete per update: split it into deploys"
            )
        for name in sorted(set(old) & set(new)):
            moved = [
                part
                for part in ("KeySchema", "Projection")
                if old[name].get(part) != new[name].get(part)
            ]
            if moved:
                problems.append(
                    f"{logical_id}: index {name}'s {' and '.join(moved)} cannot change in "
                    "place; create a new index under a new name, move the code to it, then "
                    "delete the old one"
                )
        for name in deleted:
            if name in queried:
                problems.append(
                    f"{logical_id}: index {name} is removed while the code still queries it"
                )
    return problems


def review(
    synthesized: Mapping[str, Mapping[str, Any]],
    baseline: Callable[[str, str], Mapping[str, Any] | None],
    queue_depth: QueueDepth | None = None,
) -> tuple[list[StackDiff], list[str]]:
    """Compare every stage and stack with its baseline; return the diffs and the refusals."""
    diffs: list[StackDiff] = []
    refusals: list[str] = []
    for stage, templates in sorted(synthesized.items()):
        for layer, template in sorted(templates.items()):
            before = baseline(stage, layer)
            after = mask(template)
            changes = diff_templates(mask(before) if before else {}, after)
            diffs.append(StackDiff(stage, layer, changes))
            refusals += [
                f"{naming.stack_name(layer, stage)}: {problem}"
                for problem in index_refusals(mask(before) if before else {}, after)
            ]
            for change in changes:
                if not change.loses_state:
                    continue
                if change.type == "AWS::SQS::Queue" and queue_depth is not None:
                    props = (before or {}).get("Resources", {}).get(change.logical_id, {})
                    name = props.get("Properties", {}).get("QueueName")
                    depth = queue_depth(name) if isinstance(name, str) else None
                    if depth == 0:
                        continue
                refusals.append(
                    f"{naming.stack_name(layer, stage)}: {change.logical_id} ({change.type}) "
                    f"would be {change.change}"
                    + (
                        f" by a change of {', '.join(change.properties)}"
                        if change.properties
                        else ""
                    )
                )
    return diffs, refusals


def render(diffs: list[StackDiff]) -> str:
    lines: list[str] = []
    for diff in diffs:
        counts = {k: sum(1 for c in diff.changes if c.change == k) for k in _KINDS}
        summary = ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "no changes"
        lines.append(f"{naming.stack_name(diff.layer, diff.stage)}: {summary}")
        for change in diff.changes:
            mark = {"added": "+", "removed": "-", "modified": "~", "replaced": "!"}[change.change]
            detail = f" ({', '.join(change.properties)})" if change.properties else ""
            state = "  [STATEFUL]" if change.stateful else ""
            lines.append(
                f"  {mark} {change.change:<9} {change.type} {change.logical_id}{detail}{state}"
            )
    return "\n".join(lines)


_KINDS: Final[tuple[Change, ...]] = ("added", "removed", "modified", "replaced")


def _deployed_baseline(
    endpoint_url: str | None,
) -> tuple[Callable[[str, str], Mapping[str, Any] | None], QueueDepth]:
    import boto3
    from botocore.exceptions import ClientError

    cloudformation = boto3.client("cloudformation", endpoint_url=endpoint_url)
    sqs = boto3.client("sqs", endpoint_url=endpoint_url)

    def baseline(stage: str, layer: str) -> Mapping[str, Any] | None:
        try:
            body = cloudformation.get_template(
                StackName=naming.stack_name(layer, stage), TemplateStage="Original"
            )["TemplateBody"]
        except ClientError as exc:
            if "does not exist" in str(exc):
                return None
            raise
        return body if isinstance(body, dict) else json.loads(body)

    def depth(queue: str) -> int | None:
        try:
            url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
            attrs = sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
        except ClientError:
            return None
        return sum(int(v) for v in attrs.values())

    return baseline, depth


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stacks.review", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    diff = sub.add_parser("diff", help="changes against a baseline; refuses lost state")
    diff.add_argument("assembly", nargs="?", default="cdk.out", type=Path)
    diff.add_argument("--against", choices=("snapshot", "deployed"), default="snapshot")
    diff.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local emulator)")
    diff.add_argument(
        "--allow-state-loss",
        action="store_true",
        help="report but do not fail (for a reviewed, deliberate replacement)",
    )
    snap = sub.add_parser("snapshot", help="rewrite the checked-in snapshots")
    snap.add_argument("assembly", nargs="?", default="cdk.out", type=Path)
    args = parser.parse_args(argv)

    synthesized = templates_in(args.assembly)
    if not synthesized:
        print(
            f"review: no Atlas Codex templates in {args.assembly}/ (run make synth)",
            file=sys.stderr,
        )
        return 2
    if args.command == "snapshot":
        for stage, templates in synthesized.items():
            print(f"review: wrote {write_snapshot(stage, templates).relative_to(ROOT)}")
        return 0

    queue_depth: QueueDepth | None = None
    if args.against == "deployed":
        baseline, queue_depth = _deployed_baseline(args.endpoint_url)
    else:

        def baseline(stage: str, layer: str) -> Mapping[str, Any] | None:
            return load_snapshot(stage).get(layer)

    diffs, refusals = review(synthesized, baseline, queue_depth)
    print(render(diffs))
    if refusals:
        print("", file=sys.stderr)
        for refusal in refusals:
            print(f"REFUSED: {refusal}", file=sys.stderr)
        print(
            "review: these changes would replace or delete stateful resources and lose their "
            "data. Keep the logical ids and names, or migrate first; rerun with "
            "--allow-state-loss only after a reviewed decision.",
            file=sys.stderr,
        )
        return 0 if args.allow_state_loss else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
