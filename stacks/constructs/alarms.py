"""Alarms that tell the responder what to do: each names its symptom and its RUNBOOK section.

Every alarm's description ends with ``Runbook: docs/RUNBOOK.md#<section>``; a test checks
that the section exists. Metrics are addressed by the names of the naming scheme, so this
construct needs no reference to the resources it watches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from aws_cdk import CfnResource
from aws_cdk import aws_sns as sns
from constructs import Construct

from atlas_codex.ground import limits, metrics, naming
from atlas_codex.ground.naming import FunctionResource
from atlas_codex.ground.table_specs import TABLE_SPECS
from atlas_codex_stage.settings import StageSettings

RUNBOOK: Final = "docs/RUNBOOK.md"


@dataclass(frozen=True)
class RunbookSection:
    anchor: str
    title: str


# One section of docs/RUNBOOK.md per kind of alarm; the anchors are GitHub's heading slugs.
FUNCTION_ERRORS: Final = RunbookSection("function-error-rate", "Function error rate")
FUNCTION_THROTTLES: Final = RunbookSection("function-throttles", "Function throttles")
DLQ_DEPTH: Final = RunbookSection("dead-letter-queue-not-empty", "Dead-letter queue not empty")
QUEUE_AGE: Final = RunbookSection("jobs-queue-backlog", "Jobs queue backlog")
API_5XX: Final = RunbookSection("api-5xx-rate", "API 5xx rate")
API_LATENCY: Final = RunbookSection("api-p99-latency", "API p99 latency")
DYNAMODB_THROTTLES: Final = RunbookSection("dynamodb-throttles", "DynamoDB throttles")
HEALTH_FAILED: Final = RunbookSection("health-check-failed", "Health check failed")
BUDGET_SPEND: Final = RunbookSection("model-budget-spend", "Model budget spend")
WORKER_STOPPED: Final = RunbookSection("worker-not-running", "Worker not running")
HEALTH_SILENT: Final = RunbookSection("health-monitor-silent", "Health monitor silent")
SECTIONS: Final = (
    FUNCTION_ERRORS,
    FUNCTION_THROTTLES,
    DLQ_DEPTH,
    QUEUE_AGE,
    API_5XX,
    API_LATENCY,
    DYNAMODB_THROTTLES,
    HEALTH_FAILED,
    BUDGET_SPEND,
    WORKER_STOPPED,
    HEALTH_SILENT,
)
WORKER_STOPPED_EXPRESSION: Final = "IF(FILL(waiting, 0) > 0 AND FILL(invocations, 0) == 0, 1, 0)"
"""1 in a period where messages wait in the jobs queue and the worker was not invoked."""
HEALTH_SILENT_PERIODS: Final = 2
"""Periods without a health run before its alarm (the schedule runs every five minutes)."""


FAST_ROUTES: Final = (("POST", "/jobs", "submit"), ("GET", "/jobs/{job_id}", "status"))
"""Routes that answer at once: their p99 is held to ``alarms.api_p99_latency_ms``."""
SYNC_ROUTES: Final = (("POST", "/extract", "extract"), ("POST", "/jobs/quote", "quote"))
"""Routes that fetch pages inline: watched against the sync limit."""
SYNC_MARGIN_MS: Final = 2000
"""Past the sync limit by this much, a request is about to meet the gateway's timeout."""


def describe(symptom: str, section: RunbookSection) -> str:
    return f"{symptom} Runbook: {RUNBOOK}#{section.anchor}"


Metric = dict[str, Any]
"""A CloudWatch metric as plain data: namespace, name, dimensions, statistic."""


def metric(namespace: str, name: str, dimensions: dict[str, str], statistic: str) -> Metric:
    return {"namespace": namespace, "name": name, "dimensions": dimensions, "stat": statistic}


def _stat(m: Metric, period: int) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": m["namespace"],
            "MetricName": m["name"],
            "Dimensions": [{"Name": k, "Value": v} for k, v in m["dimensions"].items()],
        },
        "Period": period,
        "Stat": m["stat"],
    }


@dataclass(frozen=True)
class Expression:
    """A metric math expression over named metrics (an alarm on a rate)."""

    expression: str
    metrics: dict[str, Metric]
    label: str


class StageAlarms(Construct):
    """Every alarm of one stage, each sending ALARM and OK to the stage's alarm topic.

    Alarms are written as plain CloudFormation (one construct call each, no metric objects):
    the stage has dozens of them, and synthesis time is measured.
    """

    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: StageSettings,
        functions: tuple[FunctionResource, ...],
        topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, cid)
        self.settings = settings
        self.stage = settings.stage
        self.period = settings.alarms.period_s
        self._topic_arn = topic.topic_arn
        self.alarms: list[CfnResource] = []
        self.alarm_names: list[str] = []
        thresholds = settings.alarms

        for fn in functions:
            name = naming.function_name(fn, self.stage)
            rate = Expression(
                "IF(invocations > 0, 100 * errors / invocations, 0)",
                {
                    "errors": self.lambda_metric("Errors", name),
                    "invocations": self.lambda_metric("Invocations", name),
                },
                f"{fn} error rate (%)",
            )
            self.add(
                f"{fn}-error-rate",
                rate,
                thresholds.error_rate_pct,
                describe(
                    f"More than {thresholds.error_rate_pct:g}% of {name}'s invocations failed.",
                    FUNCTION_ERRORS,
                ),
            )
            if fn in metrics.CONSUMERS:
                failed = Expression(
                    "IF(received > 0, 100 * failed / received, 0)",
                    {
                        "failed": self.consumer_metric(metrics.MESSAGES_FAILED, fn),
                        "received": self.consumer_metric(metrics.MESSAGES_RECEIVED, fn),
                    },
                    f"{fn} failed messages (%)",
                )
                self.add(
                    f"{fn}-failed-messages",
                    failed,
                    thresholds.error_rate_pct,
                    describe(
                        f"More than {thresholds.error_rate_pct:g}% of the messages {name} was "
                        "given failed with an error (not a planned retry).",
                        FUNCTION_ERRORS,
                    ),
                )
            self.add(
                f"{fn}-throttles",
                self.lambda_metric("Throttles", name),
                thresholds.throttles,
                describe(
                    f"{name} was throttled (reserved concurrency or the account limit).",
                    FUNCTION_THROTTLES,
                ),
            )
        for dlq in ("dlq", "webhooks-dlq"):
            queue = naming.queue_name(dlq, self.stage)
            self.add(
                f"{dlq}-depth",
                self.sqs_metric("ApproximateNumberOfMessagesVisible", queue),
                thresholds.dlq_depth,
                describe(f"Messages are waiting in {queue}: work was given up.", DLQ_DEPTH),
            )
        jobs_queue = naming.queue_name("queue", self.stage)
        backlog_s = settings.jobs_backlog_after_s
        self.add(
            "queue-oldest-message",
            self.sqs_metric("ApproximateAgeOfOldestMessage", jobs_queue),
            backlog_s,
            describe(
                f"A message in {jobs_queue} is older than {backlog_s} s, longer than any "
                "message retried on every receive can be: the worker is not keeping up or "
                "not running.",
                QUEUE_AGE,
            ),
        )
        worker = naming.function_name("worker", self.stage)
        self.add(
            "worker-not-running",
            Expression(
                WORKER_STOPPED_EXPRESSION,
                {
                    "waiting": self.sqs_metric("ApproximateNumberOfMessagesVisible", jobs_queue),
                    "invocations": self.lambda_metric("Invocations", worker),
                },
                "messages waiting while the worker runs no invocation",
            ),
            0,
            describe(
                f"Messages wait in {jobs_queue} and {worker} ran no invocation for "
                f"{self.period} s: the worker is not running.",
                WORKER_STOPPED,
            ),
        )
        self.add(
            "health-monitor-silent",
            metric(
                metrics.NAMESPACE,
                metrics.HEALTH_CHECKS_FAILED,
                metrics.dimensions("health", self.stage),
                "SampleCount",
            ),
            1,
            describe(
                f"The health monitor published no run for {HEALTH_SILENT_PERIODS * self.period} "
                "s: its schedule or its function stopped, and the health and budget alarms "
                "went quiet with it.",
                HEALTH_SILENT,
            ),
            below=True,
            missing_is_breaching=True,
            periods=HEALTH_SILENT_PERIODS,
        )
        api = naming.rest_api_name(self.stage)
        errors_5xx = Expression(
            "IF(requests > 0, 100 * errors / requests, 0)",
            {
                "errors": self.api_metric("5XXError", "Sum"),
                "requests": self.api_metric("Count", "Sum"),
            },
            "API 5xx rate (%)",
        )
        self.add(
            "api-5xx-rate",
            errors_5xx,
            thresholds.api_5xx_rate_pct,
            describe(
                f"More than {thresholds.api_5xx_rate_pct:g}% of {api}'s requests answered 5xx.",
                API_5XX,
            ),
        )
        # The routes that answer at once; POST /extract and POST /jobs/quote fetch pages and
        # may take up to the sync limit, so they are watched against that limit instead.
        for method, resource, label in FAST_ROUTES:
            self.add(
                f"api-{label}-p99-latency",
                self.api_route_metric("Latency", "p99", method, resource),
                thresholds.api_p99_latency_ms,
                describe(
                    f"{method} {resource} of {api} has a p99 latency above "
                    f"{thresholds.api_p99_latency_ms} ms.",
                    API_LATENCY,
                ),
            )
        sync_limit_ms = int(limits.SYNC_MAX_S * 1000) + SYNC_MARGIN_MS
        for method, resource, label in SYNC_ROUTES:
            self.add(
                f"api-{label}-p99-latency",
                self.api_route_metric("Latency", "p99", method, resource),
                sync_limit_ms,
                describe(
                    f"{method} {resource} of {api} has a p99 latency above {sync_limit_ms} ms: "
                    f"sync requests run past their {limits.SYNC_MAX_S:g} s limit toward the "
                    "gateway's 29 s timeout.",
                    API_LATENCY,
                ),
            )
        for spec in TABLE_SPECS:
            table_name = naming.table_name(spec.resource, self.stage)
            # Each index throttles on its own partitions (the by-status index has six keys),
            # and AWS/DynamoDB alarms ignore TreatMissingData: FILL makes "no throttles
            # reported" a zero, so an alarm returns to OK.
            for index in (None, *(i.name for i in spec.indexes)):
                where = f"{table_name} index {index}" if index else table_name
                throttled = Expression(
                    "FILL(reads, 0) + FILL(writes, 0)",
                    {
                        "reads": self.dynamodb_metric("ReadThrottleEvents", table_name, index),
                        "writes": self.dynamodb_metric("WriteThrottleEvents", table_name, index),
                    },
                    f"{where} throttled requests",
                )
                self.add(
                    f"{spec.resource}-{index}-index-throttles"
                    if index
                    else f"{spec.resource}-table-throttles",
                    throttled,
                    thresholds.dynamodb_throttles,
                    describe(f"Requests to {where} were throttled.", DYNAMODB_THROTTLES),
                )
        self.add(
            "health-checks-failed",
            self.app_metric(metrics.HEALTH_CHECKS_FAILED),
            thresholds.health_failed_checks,
            describe("The health monitor reported a failed check.", HEALTH_FAILED),
        )
        first_step = settings.budget.notify_at_pct[0]
        self.add(
            "budget-spend",
            self.app_metric(metrics.BUDGET_SPENT_PERCENT),
            first_step,
            describe(
                f"Model spend passed {first_step:g}% of the stage's monthly budget "
                f"(${settings.budget.monthly_usd:g}).",
                BUDGET_SPEND,
            ),
            inclusive=True,
        )

    # ------------------------------------------------------------------ metrics

    def lambda_metric(self, name: str, function_name: str) -> Metric:
        return metric("AWS/Lambda", name, {"FunctionName": function_name}, "Sum")

    def sqs_metric(self, name: str, queue_name: str) -> Metric:
        return metric("AWS/SQS", name, {"QueueName": queue_name}, "Maximum")

    def api_metric(self, name: str, statistic: str) -> Metric:
        dimensions = {"ApiName": naming.rest_api_name(self.stage), "Stage": self.stage}
        return metric("AWS/ApiGateway", name, dimensions, statistic)

    def dynamodb_metric(self, name: str, table_name: str, index: str | None = None) -> Metric:
        dims = {"TableName": table_name} | ({"GlobalSecondaryIndexName": index} if index else {})
        return metric("AWS/DynamoDB", name, dims, "Sum")

    def api_route_metric(self, name: str, statistic: str, method: str, resource: str) -> Metric:
        """A route's metric (the stage publishes per-method metrics: ``metrics_enabled``)."""
        dimensions = {
            "ApiName": naming.rest_api_name(self.stage),
            "Method": method,
            "Resource": resource,
            "Stage": self.stage,
        }
        return metric("AWS/ApiGateway", name, dimensions, statistic)

    def consumer_metric(self, name: str, function: FunctionResource) -> Metric:
        return metric(metrics.NAMESPACE, name, metrics.dimensions(function, self.stage), "Sum")

    def app_metric(self, name: str) -> Metric:
        return metric(metrics.NAMESPACE, name, metrics.dimensions("health", self.stage), "Maximum")

    # ------------------------------------------------------------------ alarms

    def add(
        self,
        resource: str,
        watched: Metric | Expression,
        threshold: float,
        description: str,
        *,
        inclusive: bool = False,
        below: bool = False,
        missing_is_breaching: bool = False,
        periods: int | None = None,
    ) -> CfnResource:
        """``below``: alarm under the threshold; ``missing_is_breaching``: no data is the
        symptom (a heartbeat); ``periods``: evaluation periods other than the stage's."""
        name = naming.alarm_name(resource, self.stage)
        comparison = (
            "LessThanThreshold"
            if below
            else "GreaterThanOrEqualToThreshold"
            if inclusive
            else "GreaterThanThreshold"
        )
        properties: dict[str, Any] = {
            "AlarmName": name,
            "AlarmDescription": description,
            "Threshold": threshold,
            "EvaluationPeriods": periods or self.settings.alarms.evaluation_periods,
            "ComparisonOperator": comparison,
            "TreatMissingData": "breaching" if missing_is_breaching else "notBreaching",
            "AlarmActions": [self._topic_arn],
            "OKActions": [self._topic_arn],
            # A plain CfnResource is not reached by Tags.of(); the stack's tags, spelled out.
            "Tags": [
                {"Key": "atlas-codex:layer", "Value": "monitoring"},
                {"Key": "project", "Value": naming.PROJECT},
                {"Key": "stage", "Value": self.stage},
            ],
        }
        if isinstance(watched, Expression):
            properties["Metrics"] = [
                {
                    "Id": "expr_1",
                    "Expression": watched.expression,
                    "Label": watched.label,
                    "ReturnData": True,
                },
                *(
                    {"Id": key, "MetricStat": _stat(m, self.period), "ReturnData": False}
                    for key, m in watched.metrics.items()
                ),
            ]
        else:
            properties |= {
                "Namespace": watched["namespace"],
                "MetricName": watched["name"],
                "Dimensions": [{"Name": k, "Value": v} for k, v in watched["dimensions"].items()],
                "Period": self.period,
            }
            stat = watched["stat"]
            properties["ExtendedStatistic" if stat.startswith("p") else "Statistic"] = stat
        alarm = CfnResource(self, resource, type="AWS::CloudWatch::Alarm", properties=properties)
        self.alarms.append(alarm)
        self.alarm_names.append(name)
        return alarm
