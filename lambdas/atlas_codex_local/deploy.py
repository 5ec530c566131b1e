"""Deploy the local stage's synthesized templates into the emulator's CloudFormation.

Local mode's resources are the stacks' own: the ``local`` stage is synthesized (and cached,
keyed by the sources that shape the templates), then its data, messaging and monitoring
templates are created as stacks in the moto server. What the emulator cannot run is left
out and said so: the compute stack (moto runs no Lambda code without Docker and has no
WebSocket APIs in CloudFormation; local mode serves the API and runs the handlers itself),
and the tags of KMS keys (moto's CloudFormation mis-reads them). What moto's CloudFormation
skips or accepts without applying — alarms, budgets, table TTL and point-in-time recovery, the
bucket's public access block and lifecycle rules — is
created through the services' own APIs from the same template properties.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from atlas_codex.ground import naming
from atlas_codex_local.provision import StageResources

ROOT: Final = Path(__file__).resolve().parents[2]
CACHE_DIR: Final = ROOT / ".cache" / "local-templates"
LAYERS: Final = ("data", "messaging", "monitoring")
"""Deployed in this order; ``compute`` is served by local mode itself."""
BOOTSTRAP_PARAMETER: Final = "/cdk-bootstrap/hnb659fds/version"
BOOTSTRAP_VERSION: Final = "30"
TEMPLATE_INPUTS: Final = ("cdk.json", "app.py", "stacks", "lambdas/atlas_codex")


class DeployError(RuntimeError):
    pass


@dataclass(frozen=True)
class Deployed:
    stacks: dict[str, dict[str, str]]
    """``stack name -> outputs``."""
    left_out: list[str]


def inputs_digest(root: Path = ROOT) -> str:
    digest = hashlib.sha256()
    for entry in TEMPLATE_INPUTS:
        path = root / entry
        files = [path] if path.is_file() else sorted(path.rglob("*.py")) if path.exists() else []
        for file in files:
            digest.update(file.relative_to(root).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:20]


def templates_cached(root: Path = ROOT) -> bool:
    cache = CACHE_DIR / inputs_digest(root)
    return all((cache / f"{layer}.json").exists() for layer in (*LAYERS, "compute"))


def local_templates(root: Path = ROOT) -> dict[str, dict[str, Any]]:
    """The local stage's templates by layer, synthesized once per change of their sources."""
    cache = CACHE_DIR / inputs_digest(root)
    if not templates_cached(root):
        with tempfile.TemporaryDirectory() as out:
            run = subprocess.run(
                [sys.executable, str(root / "tools" / "synth_local.py"), out],
                cwd=root,
                capture_output=True,
                text=True,
                check=False,
            )
            if run.returncode != 0:
                raise DeployError(f"synthesizing the local stage failed:\n{run.stderr[-2000:]}")
            CACHE_DIR.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}.", dir=CACHE_DIR))
            for layer in (*LAYERS, "compute"):
                name = naming.stack_name(layer, "local")
                shutil.copy(Path(out) / f"{name}.template.json", staging / f"{layer}.json")
            try:
                staging.rename(cache)
            except OSError:  # another process cached the same templates first
                shutil.rmtree(staging, ignore_errors=True)
    return {
        layer: json.loads((cache / f"{layer}.json").read_text()) for layer in (*LAYERS, "compute")
    }


CREATED_DIRECTLY: Final = frozenset({"AWS::CloudWatch::Alarm", "AWS::Budgets::Budget"})
"""Types moto's CloudFormation skips: created through their own APIs from the same template."""


def adapt(template: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The template as the emulator can create it, and what was left out and why."""
    adapted = copy.deepcopy(template)
    notes: list[str] = []
    resources = adapted.get("Resources", {})
    for logical_id in [k for k, r in resources.items() if r["Type"] in CREATED_DIRECTLY]:
        del resources[logical_id]
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::KMS::Key" and "Tags" in resource.get("Properties", {}):
            del resource["Properties"]["Tags"]
            notes.append(f"{logical_id}: tags left out (moto's CloudFormation mis-reads KMS tags)")
    return adapted, notes


def deploy(
    cloudformation: Any,
    ssm: Any,
    templates: dict[str, dict[str, Any]],
    *,
    cloudwatch: Any,
    budgets: Any,
    dynamodb: Any,
    s3: Any,
    account: str,
    stage: str = "local",
    layers: tuple[str, ...] = LAYERS,
) -> Deployed:
    """Create (or leave as they are) the stage's stacks; return their outputs."""
    try:
        ssm.put_parameter(
            Name=BOOTSTRAP_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
        )
    except Exception as exc:
        raise DeployError(f"cannot write the bootstrap parameter: {exc}") from None
    outputs: dict[str, dict[str, str]] = {}
    left_out = [f"{naming.stack_name('compute', stage)}: served by local mode itself"]
    for layer in layers:
        name = naming.stack_name(layer, stage)
        template, notes = adapt(templates[layer])
        left_out += [f"{name}: {n}" for n in notes]
        with contextlib.suppress(cloudformation.exceptions.AlreadyExistsException):
            cloudformation.create_stack(
                StackName=name,
                TemplateBody=json.dumps(template),
                Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            )
        stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_COMPLETE") or "ROLLBACK" in stack["StackStatus"]:
            raise DeployError(
                f"{name}: {stack['StackStatus']} {stack.get('StackStatusReason', '')}".strip()
            )
        outputs[name] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        physical = {
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in cloudformation.describe_stack_resources(StackName=name)["StackResources"]
            if "LogicalResourceId" in r
        }
        skipped = sorted(
            f"{r['Type']} {logical_id}"
            for logical_id, r in templates[layer].get("Resources", {}).items()
            if logical_id not in physical and r["Type"] not in CREATED_DIRECTLY
        )
        left_out += [f"{name}: {s} (not in the emulator's CloudFormation)" for s in skipped]
        _create_directly(templates[layer], physical, cloudwatch, budgets, account)
        _complete(templates[layer], physical, dynamodb, s3)
    return Deployed(stacks=outputs, left_out=left_out)


def stage_resources(deployed: Deployed, stage: str = "local") -> StageResources:
    """The names and URLs local mode configures its functions with, from the stacks' outputs."""
    data = deployed.stacks[naming.stack_name("data", stage)]
    messaging = deployed.stacks[naming.stack_name("messaging", stage)]
    return StageResources(
        stage=stage,
        tables={
            "jobs": data["JobsTableName"],
            "connections": data["ConnectionsTableName"],
            "idempotency": data["IdempotencyTableName"],
            "usage": data["UsageTableName"],
        },
        queue_urls={
            "queue": messaging["JobsQueueUrl"],
            "dlq": messaging["JobsDlqUrl"],
            "webhooks": messaging["WebhooksQueueUrl"],
            "webhooks-dlq": messaging["WebhooksDlqUrl"],
        },
        bucket=data["ArtifactsBucketName"],
    )


def _resolve(value: Any, physical: dict[str, str]) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return physical[value["Ref"]]
    if isinstance(value, dict):
        return {k: _resolve(v, physical) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, physical) for v in value]
    return value


def _complete(template: dict[str, Any], physical: dict[str, str], dynamodb: Any, s3: Any) -> None:
    """Properties moto's CloudFormation accepts but does not apply: table TTL and PITR,
    the bucket's public access block and lifecycle rules."""
    for logical_id, resource in template.get("Resources", {}).items():
        if resource["Type"] == "AWS::S3::Bucket" and logical_id in physical:
            _complete_bucket(resource.get("Properties", {}), physical[logical_id], s3)
        if resource["Type"] != "AWS::DynamoDB::Table" or logical_id not in physical:
            continue
        props = resource.get("Properties", {})
        name = physical[logical_id]
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
            )
        pitr = props.get("PointInTimeRecoverySpecification", {})
        if pitr.get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
            )


def _complete_bucket(props: dict[str, Any], name: str, s3: Any) -> None:
    block = props.get("PublicAccessBlockConfiguration")
    if block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    rules = props.get("LifecycleConfiguration", {}).get("Rules", [])
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
        )


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    out: dict[str, Any] = {
        "ID": rule.get("Id", ""),
        "Status": rule.get("Status", "Enabled"),
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        }
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        }
    return out


def _create_directly(
    template: dict[str, Any], physical: dict[str, str], cloudwatch: Any, budgets: Any, account: str
) -> None:
    """Alarms and budgets from the template's own properties, through their APIs."""
    for resource in template.get("Resources", {}).values():
        props = _resolve(resource.get("Properties", {}), physical)
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            cloudwatch.put_metric_alarm(**props)
        elif resource["Type"] == "AWS::Budgets::Budget":
            budget = props["Budget"]
            with contextlib.suppress(budgets.exceptions.DuplicateRecordException):
                budgets.create_budget(
                    AccountId=account,
                    Budget={
                        "BudgetName": budget["BudgetName"],
                        "BudgetType": budget["BudgetType"],
                        "TimeUnit": budget["TimeUnit"],
                        "BudgetLimit": {
                            "Amount": str(budget["BudgetLimit"]["Amount"]),
                            "Unit": budget["BudgetLimit"]["Unit"],
                        },
                    },
                    NotificationsWithSubscribers=[
                        {
                            "Notification": {
                                **n["Notification"],
                                "Threshold": float(n["Notification"]["Threshold"]),
                            },
                            "Subscribers": n["Subscribers"],
                        }
                        for n in props.get("NotificationsWithSubscribers", [])
                    ],
                )
