"""``atlas-codex ops``: what an on-call responder runs, against a stage or the local emulator.

Every command takes ``--stage`` (names come from the naming scheme, values from ``cdk.json``)
and ``--endpoint-url`` (the moto server of local mode, or any AWS-compatible endpoint), prints
a human-readable table, or JSON with ``--json``, and exits non-zero with a clear message when
something is wrong (no such job, the stage's table does not exist, no credentials).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any, Final

from botocore.exceptions import ClientError

from atlas_codex.ground import naming
from atlas_codex.ground.values import utcnow
from atlas_codex.jobs.record import Job
from atlas_codex.jobs.vocabulary import JOB_STATUSES

LOG_FUNCTIONS: Final = naming.FUNCTIONS
NO_SETTINGS: Final = (
    "{what} comes from the stage settings: pass --cdk-json PATH (or set ATLAS_CODEX_CDK_JSON), "
    "or run inside the repository"
)


class OpsError(Exception):
    """A refusal or failure with a message for the operator; the command exits 1."""


# ---------------------------------------------------------------------------- target


@dataclass
class Target:
    stage: str
    endpoint_url: str | None = None
    region: str | None = None
    cdk_json: str | None = None
    """The file with the stage settings (default: found from the working directory)."""
    _clients: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Target:
        """The target named by the common arguments (:func:`add_target_arguments`)."""
        import os

        return cls(
            stage=args.stage,
            endpoint_url=args.endpoint_url or os.environ.get("AWS_ENDPOINT_URL"),
            region=args.region,
            cdk_json=args.cdk_json,
        )

    @cached_property
    def settings(self) -> Any:
        """The stage's settings from cdk.json (None when no cdk.json can be found)."""
        from atlas_codex_stage.settings import SettingsError, find_cdk_json, settings_from_file

        try:
            path = find_cdk_json(self.cdk_json)
            return None if path is None else settings_from_file(self.stage, path)
        except SettingsError as exc:
            raise OpsError(str(exc)) from None

    @property
    def region_name(self) -> str:
        if self.region:
            return self.region
        return str(self.settings.region) if self.settings is not None else "us-east-1"

    @property
    def local_endpoint(self) -> bool:
        from urllib.parse import urlsplit

        host = urlsplit(self.endpoint_url or "").hostname
        return host in ("127.0.0.1", "localhost", "::1")

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3
            from botocore.config import Config

            credentials: dict[str, str] = {}
            if self.local_endpoint and boto3.session.Session().get_credentials() is None:
                # The emulator takes any credentials; a responder's shell may have none.
                credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
            self._clients[service] = boto3.client(
                service,  # type: ignore[call-overload]
                endpoint_url=self.endpoint_url,
                region_name=self.region_name,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5),
                **credentials,
            )
        return self._clients[service]

    def table(self, resource: naming.TableResource) -> str:
        return naming.table_name(resource, self.stage)

    def queue_url(self, resource: naming.QueueResource) -> str:
        name = naming.queue_name(resource, self.stage)
        sqs = self.client("sqs")
        try:
            return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
        except sqs.exceptions.QueueDoesNotExist:
            raise OpsError(
                f"the queue {name} does not exist here: is the stage deployed?"
            ) from None

    @property
    def bucket(self) -> str:
        if self.settings is None:
            raise OpsError(NO_SETTINGS.format(what="the artifacts bucket's name"))
        return naming.bucket_name(self.settings.instance_id)

    def manager(self) -> Any:
        from atlas_codex.jobs.manager import JobManager

        return JobManager.on_aws(
            table_name=self.table("jobs"),
            bucket=self.bucket if self.settings is not None else "unknown",
            dynamodb=self.client("dynamodb"),
            s3=self.client("s3"),
            ttl_days=self.settings.data.job_ttl_days if self.settings is not None else 30,
        )


# ---------------------------------------------------------------------------- output


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(h) for h in header], *[["" if v is None else str(v) for v in r] for r in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(args: argparse.Namespace, data: Any, human: Callable[[], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(human())


_SINCE: Final = re.compile(r"^(\d+)([smhd])$")


def parse_since(value: str) -> datetime:
    """``30m``, ``2h``, ``7d`` ago, or an ISO-8601 instant."""
    match = _SINCE.fullmatch(value)
    if match:
        seconds = int(match[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]
        return utcnow() - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a duration like 30m, 2h, 7d or an ISO time"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------- jobs


def job_show(target: Target, args: argparse.Namespace) -> int:
    from atlas_codex.jobs.errors import JobNotFound

    try:
        job: Job = target.manager().get(args.job_id)
    except JobNotFound:
        raise OpsError(f"no job {args.job_id} in {target.table('jobs')}") from None
    logs = _job_logs(target, job) if args.logs else None
    data = {"job": job.model_dump(mode="json"), "logs": logs}

    def human() -> str:
        parts = [
            table(
                [
                    ("job", job.job_id),
                    ("type", job.type),
                    ("status", job.status),
                    ("owner", job.owner_id),
                    ("correlation id", job.correlation_id),
                    ("created", job.created_at),
                    ("updated", job.updated_at),
                    ("deadline", job.deadline_at),
                    ("urls", ", ".join(job.request.urls)),
                    ("strategy chain", " -> ".join(job.fallback_chain) or None),
                    ("model", job.model),
                    (
                        "cost (estimated / actual)",
                        f"${job.cost.estimated_usd} / ${job.cost.actual_usd}",
                    ),
                    ("error", f"{job.error.code}: {job.error.message}" if job.error else None),
                    ("parent", job.parent_id),
                    ("webhook", job.webhook.model_dump_json() if job.webhook else None),
                ],
                ("field", "value"),
            ),
            "",
            "Timeline",
            table([(c.at, c.status, c.reason) for c in job.timeline], ("at", "status", "reason")),
        ]
        if job.attempts:
            parts += [
                "",
                "Attempts",
                table(
                    [
                        (
                            a.strategy,
                            a.model,
                            a.input_tokens,
                            a.output_tokens,
                            a.cost_usd,
                            a.error.code if a.error else "ok",
                        )
                        for a in job.attempts
                    ],
                    ("strategy", "model", "tokens in", "tokens out", "cost", "outcome"),
                ),
            ]
        if logs is not None:
            parts += ["", f"Log lines for correlation id {job.correlation_id}"]
            parts += logs or ["(none found)"]
        return "\n".join(parts)

    emit(args, data, human)
    return 0


def _job_logs(target: Target, job: Job) -> list[str]:
    """The job's log lines from every function's log group, by correlation id."""
    logs = target.client("logs")
    pattern = f'{{ $.correlation_id = "{job.correlation_id}" }}'
    start = int(job.created_at.timestamp() * 1000)
    lines: list[tuple[int, str]] = []
    for function in LOG_FUNCTIONS:
        group = naming.log_group_name(function, target.stage)
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=group, filterPattern=pattern, startTime=start
            )
            for page in pages:
                lines.extend(
                    (e["timestamp"], f"[{function}] {e['message'].rstrip()}")
                    for e in page["events"]
                )
        except logs.exceptions.ResourceNotFoundException:
            continue
        except Exception as exc:  # logs are a bonus: never fail the command for them
            return [f"(CloudWatch Logs unreachable: {type(exc).__name__}: {exc})"]
    return [line for _, line in sorted(lines)]


def jobs_list(target: Target, args: argparse.Namespace) -> int:
    from atlas_codex.jobs.store.index_reader import ShardPosition
    from atlas_codex.jobs.store.status_index import StatusIndex
    from atlas_codex.jobs.store.table import job_from_wire_item

    statuses = [args.status] if args.status else list(JOB_STATUSES)
    index = StatusIndex(dynamodb=target.client("dynamodb"), table_name=target.table("jobs"))
    jobs: list[Job] = []
    for status in statuses:
        start: list[ShardPosition] | None = None
        while len(jobs) < args.limit * len(statuses):
            page = _query(
                functools.partial(
                    index.page,
                    status,
                    newest_first=True,
                    limit=args.limit,
                    updated_since=args.since,
                    start=start,
                ),
                target.table("jobs"),
            )
            records = _query(functools.partial(index.records, page.items), target.table("jobs"))
            jobs.extend(job_from_wire_item(item) for item in records)
            if page.next_start is None:
                break
            start = page.next_start
    jobs = sorted(jobs, key=lambda j: j.updated_at, reverse=True)[: args.limit]
    emit(
        args,
        [
            j.model_dump(
                mode="json", include={"job_id", "type", "status", "owner_id", "updated_at", "error"}
            )
            for j in jobs
        ],
        lambda: (
            table(
                [
                    (
                        j.job_id,
                        j.type,
                        j.status,
                        j.owner_id,
                        j.updated_at,
                        j.error.code if j.error else None,
                    )
                    for j in jobs
                ],
                ("job", "type", "status", "owner", "updated", "error"),
            )
            + f"\n{len(jobs)} jobs"
        ),
    )
    return 0


def _query[T](read: Callable[[], T], table: str) -> T:
    try:
        return read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        raise OpsError(f"the table {table} does not exist here: is the stage deployed?") from None


def jobs_sweep(target: Target, args: argparse.Namespace) -> int:
    from atlas_codex.ground.config import message_lost_after
    from atlas_codex.jobs.queue import SqsDeadLetters, SqsJobQueue
    from atlas_codex.jobs.sweeper import (
        MAX_DEAD_LETTERS_PER_SWEEP,
        SweepReport,
        fail_dead_lettered,
        sweep,
    )

    if target.settings is None:
        raise OpsError(NO_SETTINGS.format(what="when a pending job's message counts as lost"))
    queue = target.settings.jobs_queue
    lost_after = message_lost_after(queue.visibility_timeout_s, queue.max_receive_count)
    jobs_queue = SqsJobQueue(sqs=target.client("sqs"), queue_url=target.queue_url("queue"))
    # As the scheduled sweep does: first a job whose message is on the DLQ ends failed (the
    # DLQ is only read), then the stuck and the lost.
    letters = SqsDeadLetters(sqs=target.client("sqs"), queue_url=target.queue_url("dlq"))
    report = fail_dead_lettered(
        target.manager(),
        letters.peek(MAX_DEAD_LETTERS_PER_SWEEP, hide_s=0 if args.dry_run else 30),
        report=SweepReport(),
        dry_run=args.dry_run,
    )
    report = sweep(
        target.manager(),
        requeue=jobs_queue.send,
        lost_after=lost_after,
        dry_run=args.dry_run,
        report=report,
    )
    data = {
        "checked": report.checked,
        "timed_out": report.timed_out,
        "requeued": report.requeued,
        "dead_lettered": report.dead_lettered,
        "already_done": report.already_done,
        "dry_run": args.dry_run,
    }
    verbs = ("would time out", "would re-queue") if args.dry_run else ("timed out", "re-queued")
    emit(
        args,
        data,
        lambda: (
            f"checked {report.checked} jobs (processing past their deadline, or pending with no "
            f"message for {int(lost_after.total_seconds())} s); {verbs[0]} "
            f"{len(report.timed_out)}, {verbs[1]} {len(report.requeued)}"
            + "".join(f"\n  {verbs[0]}  {j}" for j in report.timed_out)
            + "".join(f"\n  {verbs[1]}  {j}" for j in report.requeued)
            + "".join(
                f"\n  {'would fail' if args.dry_run else 'failed'} (dead-lettered)  {j}"
                for j in report.dead_lettered
            )
            + ("\n--dry-run changed nothing" if args.dry_run else "")
        ),
    )
    return 0


# ---------------------------------------------------------------------------- DLQs

DLQS: Final[dict[str, tuple[naming.QueueResource, naming.QueueResource]]] = {
    "jobs": ("dlq", "queue"),
    "webhooks": ("webhooks-dlq", "webhooks"),
}


def _dlq_messages(
    target: Target, queue: str, limit: int, visibility: int
) -> tuple[str, list[dict[str, Any]]]:
    url = target.queue_url(DLQS[queue][0])
    sqs = target.client("sqs")
    messages: list[dict[str, Any]] = []
    seen: set[str] = set()
    while len(messages) < limit:
        out = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(messages)),
            VisibilityTimeout=visibility,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        batch = [m for m in out.get("Messages", []) if m["MessageId"] not in seen]
        if not batch:
            break
        for message in batch:
            seen.add(message["MessageId"])
            messages.append(message)
    return url, messages


def _describe(message: dict[str, Any]) -> dict[str, Any]:
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = {}
    attrs = message.get("Attributes", {})
    sent = attrs.get("SentTimestamp")
    return {
        "message_id": message["MessageId"],
        "job_id": body.get("job_id") if isinstance(body, dict) else None,
        "correlation_id": body.get("correlation_id") if isinstance(body, dict) else None,
        "sent_at": datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat() if sent else None,
        "receives": attrs.get("ApproximateReceiveCount"),
        "body": message["Body"][:200],
    }


def dlq_show(target: Target, args: argparse.Namespace) -> int:
    # Visibility 0: the messages stay in the queue, visible, exactly as they were.
    _, messages = _dlq_messages(target, args.queue, args.max, visibility=0)
    described = [_describe(m) for m in messages]
    emit(
        args,
        described,
        lambda: (
            table(
                [
                    (d["message_id"], d["job_id"], d["correlation_id"], d["sent_at"], d["receives"])
                    for d in described
                ],
                ("message", "job", "correlation id", "sent", "receives"),
            )
            + f"\n{len(described)} messages in the {args.queue} DLQ (nothing was removed)"
        ),
    )
    return 0


def dlq_redrive(target: Target, args: argparse.Namespace) -> int:
    """Move messages back to their work queue: send first, delete from the DLQ only after."""
    source_url = target.queue_url(DLQS[args.queue][1])
    sqs = target.client("sqs")
    # A long visibility while we work, so no second reader takes the same messages.
    dlq_url, messages = _dlq_messages(
        target, args.queue, args.max, visibility=0 if args.dry_run else 120
    )
    moved: list[str] = []
    for message in messages:
        if args.dry_run:
            continue
        attributes = {
            k: {kk: vv for kk, vv in v.items() if kk in ("DataType", "StringValue", "BinaryValue")}
            for k, v in message.get("MessageAttributes", {}).items()
        }
        sqs.send_message(
            QueueUrl=source_url, MessageBody=message["Body"], MessageAttributes=attributes
        )
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        moved.append(message["MessageId"])
    described = [_describe(m) for m in messages]
    verb = "would move" if args.dry_run else "moved"
    emit(
        args,
        {"dry_run": args.dry_run, "messages": described, "moved": moved},
        lambda: (
            f"{verb} {len(described)} messages from the {args.queue} DLQ to its queue"
            + "".join(f"\n  {d['message_id']}  job {d['job_id']}" for d in described)
        ),
    )
    return 0


# ---------------------------------------------------------------------------- budget


def budget(target: Target, args: argparse.Namespace) -> int:
    from atlas_codex.accounts.usage import UsageLedger

    if target.settings is None:
        raise OpsError(NO_SETTINGS.format(what="the stage's budget"))
    ledger = UsageLedger(
        dynamodb=target.client("dynamodb"), table_name=target.table("usage"), stage=target.stage
    )
    try:
        spent = ledger.month_spend()
        owners = ledger.owners()
    except target.client("dynamodb").exceptions.ResourceNotFoundException:
        raise OpsError(f"the table {target.table('usage')} does not exist here") from None
    limit = Decimal(str(target.settings.budget.monthly_usd))
    pct = float(spent / limit * 100)
    data = {
        "stage": target.stage,
        "spent_usd": float(spent),
        "budget_usd": float(limit),
        "percent": round(pct, 2),
        "owners": [{"owner_id": o.owner_id, "spent_usd": float(o.usd)} for o in owners],
    }

    def human() -> str:
        head = f"{target.stage}: ${spent:.2f} of ${limit:.2f} this month ({pct:.1f}%)"
        rows = [(o.owner_id, f"${o.usd:.4f}", f"{float(o.usd / limit * 100):.1f}%") for o in owners]
        return head + "\n\n" + table(rows, ("owner", "spent", "of budget"))

    emit(args, data, human)
    return 0


# ---------------------------------------------------------------------------- keys


def _key_store(target: Target) -> Any:
    from atlas_codex.accounts.auth import ApiKeyStore

    return ApiKeyStore(dynamodb=target.client("dynamodb"), table_name=target.table("usage"))


def _usage_plan_id(target: Target) -> str | None:
    """The stage's API Gateway usage plan, when the stage runs behind API Gateway."""
    try:
        plans = target.client("apigateway").get_usage_plans(limit=500)["items"]
    except Exception:
        return None
    name = naming.usage_plan_name(target.stage)
    return next((p["id"] for p in plans if p.get("name") == name), None)


def keys_create(target: Target, args: argparse.Namespace) -> int:
    issued = _key_store(target).issue(args.owner, name=args.name)
    gateway = None
    plan = _usage_plan_id(target)
    if plan is not None:
        # API Gateway checks the same key (throttling, quota) before the function does.
        apigw = target.client("apigateway")
        gateway_key = apigw.create_api_key(
            name=f"{naming.PROJECT}-{issued.record.key_id}",
            value=issued.key,
            enabled=True,
            description=f"owner {args.owner}: {args.name}",
        )
        apigw.create_usage_plan_key(usagePlanId=plan, keyId=gateway_key["id"], keyType="API_KEY")
        gateway = gateway_key["id"]
    data = {
        "key": issued.key,
        "key_id": issued.record.key_id,
        "owner_id": args.owner,
        "name": args.name,
        "usage_plan": plan,
        "gateway_key_id": gateway,
    }
    emit(
        args,
        data,
        lambda: (
            f"API key for {args.owner} (shown once, stored only as a hash):\n\n  {issued.key}\n\n"
            + f"key id {issued.record.key_id}"
            + (
                f"; registered with usage plan {plan}"
                if plan
                else "; no API Gateway usage plan here"
            )
        ),
    )
    return 0


def keys_list(target: Target, args: argparse.Namespace) -> int:
    db = target.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        try:
            page = db.scan(
                TableName=target.table("usage"),
                FilterExpression="begins_with(pk, :p) AND sk = :sk",
                ExpressionAttributeValues={":p": {"S": "apikey#"}, ":sk": {"S": "apikey"}},
                **kwargs,
            )
        except db.exceptions.ResourceNotFoundException:
            raise OpsError(f"the table {target.table('usage')} does not exist here") from None
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    keys = sorted(
        (
            {
                "key_id": i["pk"]["S"].removeprefix("apikey#"),
                "owner_id": i["owner_id"]["S"],
                "name": i["name"]["S"],
                "created_at": i["created_at"]["S"],
                "revoked": i["revoked"]["BOOL"],
            }
            for i in items
        ),
        key=lambda k: str(k["created_at"]),
    )
    if args.owner:
        keys = [k for k in keys if k["owner_id"] == args.owner]
    emit(
        args,
        keys,
        lambda: table(
            [
                (
                    k["key_id"],
                    k["owner_id"],
                    k["name"],
                    k["created_at"],
                    "revoked" if k["revoked"] else "active",
                )
                for k in keys
            ],
            ("key id", "owner", "name", "created", "state"),
        ),
    )
    return 0


def keys_revoke(target: Target, args: argparse.Namespace) -> int:
    if not _key_store(target).revoke(args.key_id):
        raise OpsError(f"no API key with id {args.key_id}")
    plan = _usage_plan_id(target)
    if plan is not None:
        apigw = target.client("apigateway")
        for key in apigw.get_api_keys(nameQuery=f"{naming.PROJECT}-{args.key_id}", limit=10)[
            "items"
        ]:
            apigw.update_api_key(
                apiKey=key["id"],
                patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}],
            )
    emit(args, {"key_id": args.key_id, "revoked": True}, lambda: f"revoked {args.key_id}")
    return 0


# ---------------------------------------------------------------------------- wiring


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", default="local", choices=naming.STAGES, help="default: local")
    parser.add_argument(
        "--endpoint-url", help="AWS endpoint (default: $AWS_ENDPOINT_URL, else the real AWS)"
    )
    parser.add_argument("--region", help="default: the stage's region from cdk.json")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--cdk-json",
        help="the cdk.json with the stage settings (default: $ATLAS_CODEX_CDK_JSON, else the "
        "nearest cdk.json from the working directory up, else the installed checkout's)",
    )


def register(sub: Any) -> None:
    ops = sub.add_parser("ops", help="operator commands for a stage (alarm responders)")
    groups = ops.add_subparsers(dest="group", required=True)

    job = groups.add_parser("job", help="one job").add_subparsers(dest="action", required=True)
    show = job.add_parser("show", help="record, timeline, attempts, cost and log lines")
    show.add_argument("job_id")
    show.add_argument("--no-logs", dest="logs", action="store_false", help="skip CloudWatch Logs")
    show.set_defaults(op=job_show)

    jobs = groups.add_parser("jobs", help="many jobs").add_subparsers(dest="action", required=True)
    listing = jobs.add_parser("list", help="jobs by status, newest change first")
    listing.add_argument("--status", choices=JOB_STATUSES)
    listing.add_argument("--since", type=parse_since, help="30m, 2h, 7d or an ISO time")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(op=jobs_list)
    sweep_p = jobs.add_parser(
        "sweep",
        help="time out jobs processing past their deadline; re-queue pending jobs whose "
        "message was lost",
    )
    sweep_p.add_argument("--dry-run", action="store_true")
    sweep_p.set_defaults(op=jobs_sweep)

    dlq = groups.add_parser("dlq", help="dead-letter queues").add_subparsers(
        dest="action", required=True
    )
    dshow = dlq.add_parser("show", help="messages in a DLQ, without removing them")
    dredrive = dlq.add_parser("redrive", help="move DLQ messages back to their queue")
    for p in (dshow, dredrive):
        p.add_argument("--queue", choices=sorted(DLQS), default="jobs")
        p.add_argument("--max", type=int, default=100)
    dredrive.add_argument("--dry-run", action="store_true")
    dshow.set_defaults(op=dlq_show)
    dredrive.set_defaults(op=dlq_redrive)

    budget_p = groups.add_parser("budget", help="model spend vs the monthly budget, per owner")
    budget_p.set_defaults(op=budget)

    keys = groups.add_parser("keys", help="API keys").add_subparsers(dest="action", required=True)
    kcreate = keys.add_parser("create", help="issue a key (shown once)")
    kcreate.add_argument("--owner", required=True)
    kcreate.add_argument("--name", default="default")
    kcreate.set_defaults(op=keys_create)
    klist = keys.add_parser("list", help="keys and their state (never the keys themselves)")
    klist.add_argument("--owner")
    klist.set_defaults(op=keys_list)
    krevoke = keys.add_parser("revoke", help="revoke a key by its id")
    krevoke.add_argument("key_id")
    krevoke.set_defaults(op=keys_revoke)

    for parser in _leaves(ops):
        add_target_arguments(parser)
    ops.set_defaults(run=run)


def _leaves(parser: argparse.ArgumentParser) -> Iterable[argparse.ArgumentParser]:
    found = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                found = True
                yield from _leaves(child)
    if not found:
        yield parser


def run(args: argparse.Namespace) -> int:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    target = Target.from_args(args)
    name = f"atlas-codex ops {args.group}" + (
        f" {args.action}" if getattr(args, "action", None) else ""
    )
    try:
        return int(args.op(target, args))
    except OpsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    except NoCredentialsError:
        print(
            f"{name}: no AWS credentials (set a profile, or --endpoint-url for local mode)",
            file=sys.stderr,
        )
        return 1
    except EndpointConnectionError as exc:
        print(
            f"{name}: cannot reach {exc.kwargs.get('endpoint_url', 'the endpoint')}",
            file=sys.stderr,
        )
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
