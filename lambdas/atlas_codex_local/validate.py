"""``atlas-codex validate``: after a deploy, is the stage what the stacks say it should be?

Reads the stacks' outputs, checks that the tables, queues, bucket, log groups, alarms,
schedule and budget exist with the expected names and settings, asks ``/health``, and runs a
canary job through the whole pipeline. Prints one row per check (PASS, FAIL or SKIP with
why) and exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Literal

from atlas_codex.ground import naming
from atlas_codex.ground.table_specs import TABLE_SPECS
from atlas_codex_local.ops import NO_SETTINGS, OpsError, Target, add_target_arguments, table

Verdict = Literal["PASS", "FAIL", "SKIP"]
LAYERS: Final = ("data", "messaging", "compute", "monitoring")
DEFAULT_CANARY_TIMEOUT_S: Final = 60.0
LOCAL_CANARY_URL: Final = "http://127.0.0.1:8765/"
"""The local stage's demo site (the one private address its settings allow)."""
DEPLOYED_CANARY_URL: Final = "https://example.com/"


@dataclass
class Row:
    check: str
    verdict: Verdict
    detail: str


class Validator:
    def __init__(
        self,
        target: Target,
        *,
        endpoint: str | None,
        api_key: str | None,
        canary_url: str,
        timeout_s: float,
    ) -> None:
        self.target = target
        self.stage = target.stage
        self.settings = target.settings
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.api_key = api_key
        self.canary_url = canary_url
        self.timeout_s = timeout_s
        self.rows: list[Row] = []
        self.outputs: dict[str, dict[str, str]] = {}

    def check(self, name: str, run: Callable[[], tuple[Verdict, str] | str]) -> None:
        verdict: Verdict
        try:
            result = run()
            verdict, detail = ("PASS", result) if isinstance(result, str) else result
        except AssertionError as exc:
            verdict, detail = "FAIL", str(exc)
        except Exception as exc:  # every check reports, none stops the others
            verdict, detail = "FAIL", f"{type(exc).__name__}: {exc}"[:300]
        self.rows.append(Row(name, verdict, detail))

    def run(self) -> list[Row]:
        for layer in LAYERS:
            self.check(
                f"stack {naming.stack_name(layer, self.stage)}",
                partial(self.stack, layer),
            )
        for spec in TABLE_SPECS:
            self.check(f"table {self.target.table(spec.resource)}", partial(self.table, spec))
        pairs: tuple[tuple[naming.QueueResource, naming.QueueResource, Any], ...] = (
            ("queue", "dlq", self.settings.jobs_queue),
            ("webhooks", "webhooks-dlq", self.settings.webhooks_queue),
        )
        for work, dlq, settings in pairs:
            self.check(
                f"queue {naming.queue_name(work, self.stage)}",
                partial(self.queue, work, dlq, settings),
            )
        self.check(f"bucket {self.target.bucket}", self.bucket)
        self.check("log groups", self.log_groups)
        self.check("alarms", self.alarms)
        self.check(f"schedule {naming.schedule_rule_name(self.stage)}", self.schedule)
        self.check(f"budget {naming.budget_name(self.stage)}", self.budget)
        self.check("GET /health", self.health)
        self.check("canary job", self.canary)
        return self.rows

    # ------------------------------------------------------------------ resources

    def stack(self, layer: str) -> tuple[Verdict, str] | str:
        name = naming.stack_name(layer, self.stage)
        if layer == "compute" and self.stage == "local":
            return "SKIP", "local mode serves the API and runs the functions itself"
        cloudformation = self.target.client("cloudformation")
        try:
            stack = cloudformation.describe_stacks(StackName=name)["Stacks"][0]
        except cloudformation.exceptions.ClientError as exc:
            raise AssertionError(f"not deployed ({exc.response['Error']['Message']})") from None
        status = stack["StackStatus"]
        assert status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), f"status {status}"
        self.outputs[layer] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        return f"{status}, {len(self.outputs[layer])} outputs"

    def table(self, spec: Any) -> str:
        name = self.target.table(spec.resource)
        db = self.target.client("dynamodb")
        described = db.describe_table(TableName=name)["Table"]
        keys = {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]}
        assert keys.get(spec.partition_key) == "HASH", f"partition key is not {spec.partition_key}"
        indexes = {i["IndexName"] for i in described.get("GlobalSecondaryIndexes", [])}
        missing = {i.name for i in spec.indexes} - indexes
        assert not missing, f"missing indexes {sorted(missing)}"
        sse = described.get("SSEDescription", {}).get("Status")
        if self.stage != "local":
            assert sse == "ENABLED", "not encrypted with a KMS key"
        ttl = db.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == spec.ttl_attribute, f"TTL is not on {spec.ttl_attribute}"
        pitr = db.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        pitr_on = pitr["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        if self.settings.data.point_in_time_recovery:
            assert pitr_on, "point-in-time recovery is off"
        if self.settings.data.deletion_protection:
            assert described.get("DeletionProtectionEnabled"), "deletion protection is off"
        return f"keys, {len(indexes)} indexes, TTL" + (", PITR" if pitr_on else "")

    def queue(self, work: naming.QueueResource, dlq: naming.QueueResource, settings: Any) -> str:
        sqs = self.target.client("sqs")
        url = self.target.queue_url(work)
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attrs.get("RedrivePolicy", "{}"))
        assert redrive, "no redrive policy"
        assert redrive["deadLetterTargetArn"].endswith(f":{naming.queue_name(dlq, self.stage)}"), (
            f"redrives to {redrive['deadLetterTargetArn']}"
        )
        assert int(redrive["maxReceiveCount"]) == settings.max_receive_count, (
            f"max receives {redrive['maxReceiveCount']}, expected {settings.max_receive_count}"
        )
        assert int(attrs["VisibilityTimeout"]) == settings.visibility_timeout_s, (
            f"visibility {attrs['VisibilityTimeout']} s, expected {settings.visibility_timeout_s} s"
        )
        if self.stage != "local":
            assert attrs.get("SqsManagedSseEnabled") == "true" or attrs.get("KmsMasterKeyId"), (
                "not encrypted"
            )
        self.target.queue_url(dlq)
        return (
            f"redrives to {naming.queue_name(dlq, self.stage)} after {settings.max_receive_count}"
        )

    def bucket(self) -> str:
        s3 = self.target.client("s3")
        name = self.target.bucket
        s3.head_bucket(Bucket=name)
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules, "no default encryption"
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert all(block.values()), f"public access not fully blocked: {block}"
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        return f"encrypted, public access blocked, {len(lifecycle)} lifecycle rules"

    def log_groups(self) -> tuple[Verdict, str] | str:
        if self.stage == "local":
            return "SKIP", "local mode logs to its console"
        logs = self.target.client("logs")
        wrong = []
        for function in naming.FUNCTIONS:
            name = naming.log_group_name(function, self.stage)
            groups = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
            group = next((g for g in groups if g["logGroupName"] == name), None)
            if group is None:
                wrong.append(f"{name} missing")
            elif group.get("retentionInDays") != self.settings.log_retention_days:
                wrong.append(f"{name} keeps {group.get('retentionInDays', 'forever')} days")
        assert not wrong, "; ".join(wrong)
        return f"{len(naming.FUNCTIONS)} log groups, {self.settings.log_retention_days} days"

    def alarms(self) -> str:
        cloudwatch = self.target.client("cloudwatch")
        found = {
            a["AlarmName"]: a
            for page in cloudwatch.get_paginator("describe_alarms").paginate(
                AlarmNamePrefix=f"{naming.PROJECT}-"
            )
            for a in page["MetricAlarms"]
            if a["AlarmName"].endswith(f"-{self.stage}")
        }
        expected = [naming.alarm_name(f"{fn}-error-rate", self.stage) for fn in naming.FUNCTIONS]
        expected += [naming.alarm_name(f"{q}-depth", self.stage) for q in ("dlq", "webhooks-dlq")]
        expected += [
            naming.alarm_name(r, self.stage) for r in ("health-checks-failed", "budget-spend")
        ]
        missing = [name for name in expected if name not in found]
        assert not missing, f"missing {', '.join(missing)}"
        silent = [n for n, a in found.items() if not a.get("AlarmActions")]
        assert not silent, f"alarms that notify nobody: {', '.join(silent)}"
        unlinked = [
            n for n, a in found.items() if "docs/RUNBOOK.md#" not in a.get("AlarmDescription", "")
        ]
        assert not unlinked, f"alarms without a runbook link: {', '.join(unlinked)}"
        return f"{len(found)} alarms, each with actions and a runbook link"

    def schedule(self) -> tuple[Verdict, str] | str:
        if self.stage == "local":
            return "SKIP", "local mode runs the health handler on its own timer"
        rule = self.target.client("events").describe_rule(
            Name=naming.schedule_rule_name(self.stage)
        )
        assert rule["State"] == "ENABLED", f"the rule is {rule['State']}"
        assert rule.get("ScheduleExpression") == "rate(5 minutes)", rule.get("ScheduleExpression")
        return "enabled, rate(5 minutes)"

    def budget(self) -> str:
        budgets = self.target.client("budgets")
        budget = budgets.describe_budget(
            AccountId=self.settings.account, BudgetName=naming.budget_name(self.stage)
        )["Budget"]
        amount = float(budget["BudgetLimit"]["Amount"])
        assert amount == self.settings.budget.aws_monthly_usd, (
            f"limit ${amount:g}, expected ${self.settings.budget.aws_monthly_usd:g}"
        )
        notes = budgets.describe_notifications_for_budget(
            AccountId=self.settings.account, BudgetName=naming.budget_name(self.stage)
        )["Notifications"]
        assert len(notes) == 2 * len(self.settings.budget.notify_at_pct), (
            f"{len(notes)} notifications"
        )
        return f"${amount:g} a month, {len(notes)} notifications"

    # ------------------------------------------------------------------ the service

    def _http(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        assert self.endpoint, "no --endpoint (and no ApiUrl output to read it from)"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["x-api-key"] = self.api_key
        request = urllib.request.Request(  # noqa: S310 - the operator's own endpoint
            f"{self.endpoint}{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def health(self) -> str:
        if self.endpoint is None and "compute" in self.outputs:
            self.endpoint = self.outputs["compute"].get("ApiUrl", "").rstrip("/") or None
        status, body = self._http("GET", "/health")
        assert status == 200, f"HTTP {status}: {body}"
        assert body.get("stage") == self.stage, f"answered for stage {body.get('stage')}"
        return f"status {body['status']}, checked at {body.get('checked_at') or 'not yet'}"

    def canary(self) -> tuple[Verdict, str] | str:
        if not self.api_key:
            return "SKIP", "pass --api-key to run a canary job"
        job = {
            "type": "async",
            "urls": [self.canary_url],
            "selectors": {"fields": {"title": {"selector": "title"}}},
        }
        status, body = self._http("POST", "/jobs", job)
        assert status in (200, 202), f"POST /jobs: HTTP {status}: {body}"
        job_id = body["job_id"]
        end = time.monotonic() + self.timeout_s
        while time.monotonic() < end:
            status, body = self._http("GET", f"/jobs/{job_id}")
            assert status == 200, f"GET /jobs/{job_id}: HTTP {status}"
            if body["status"] in ("completed", "failed", "cancelled", "timeout"):
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"{job_id} still {body['status']} after {self.timeout_s:g} s")
        error = body.get("error") or {}
        assert body["status"] == "completed", (
            f"{job_id} {body['status']}: {error.get('code')}: {error.get('message')}"
        )
        return f"{job_id} completed"


def register(sub: Any) -> None:
    parser = sub.add_parser("validate", help="check a deployed stage end to end")
    add_target_arguments(parser)
    parser.add_argument("--endpoint", help="the API URL (default: the compute stack's ApiUrl)")
    parser.add_argument("--api-key", help="a key for the canary job")
    parser.add_argument("--canary-url", help="the page the canary job extracts")
    parser.add_argument("--timeout", type=float, default=DEFAULT_CANARY_TIMEOUT_S)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    target = Target.from_args(args)
    try:
        settings = target.settings
    except OpsError as exc:
        print(f"atlas-codex validate: {exc}", file=sys.stderr)
        return 1
    if settings is None:
        print(f"atlas-codex validate: {NO_SETTINGS.format(what='validation')}", file=sys.stderr)
        return 1
    validator = Validator(
        target,
        endpoint=args.endpoint,
        api_key=args.api_key,
        canary_url=args.canary_url
        or (LOCAL_CANARY_URL if args.stage == "local" else DEPLOYED_CANARY_URL),
        timeout_s=args.timeout,
    )
    rows = validator.run()
    failed = [r for r in rows if r.verdict == "FAIL"]
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
    else:
        print(table([(r.verdict, r.check, r.detail) for r in rows], ("result", "check", "detail")))
        print(
            f"\n{len(rows) - len(failed)} of {len(rows)} checks passed or skipped; {len(failed)} failed"
        )
    return 1 if failed else 0
