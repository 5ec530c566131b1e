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

from atlas_codex import metrics, naming
from atlas_codex.naming import FunctionResource
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
)


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
        self.add(
            "queue-oldest-message",
            self.sqs_metric("ApproximateAgeOfOldestMessage", jobs_queue),
            thresholds.queue_oldest_message_s,
            describe(
                f"A job has waited more than {thresholds.queue_oldest_message_s} s in "
                f"{jobs_queue}: the worker is not keeping up or not running.",
                QUEUE_AGE,
            ),
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
        self.add(
            "api-p99-latency",
            self.api_metric("Latency", "p99"),
            thresholds.api_p99_latency_ms,
            describe(
                f"{api}'s p99 latency is above {thresholds.api_p99_latency_ms} ms.", API_LATENCY
            ),
        )
        for table in naming.TABLES:
            table_name = naming.table_name(table, self.stage)
            throttled = Expression(
                "reads + writes",
                {
                    "reads": self.dynamodb_metric("ReadThrottleEvents", table_name),
                    "writes": self.dynamodb_metric("WriteThrottleEvents", table_name),
                },
                f"{table} throttled requests",
            )
            self.add(
                f"{table}-table-throttles",
                throttled,
                thresholds.dynamodb_throttles,
                describe(f"Requests to {table_name} were throttled.", DYNAMODB_THROTTLES),
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

    def dynamodb_metric(self, name: str, table_name: str) -> Metric:
        return metric("AWS/DynamoDB", name, {"TableName": table_name}, "Sum")

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
    ) -> CfnResource:
        name = naming.alarm_name(resource, self.stage)
        properties: dict[str, Any] = {
            "AlarmName": name,
            "AlarmDescription": description,
            "Threshold": threshold,
            "EvaluationPeriods": self.settings.alarms.evaluation_periods,
            "ComparisonOperator": (
                "GreaterThanOrEqualToThreshold" if inclusive else "GreaterThanThreshold"
            ),
            "TreatMissingData": "notBreaching",
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
