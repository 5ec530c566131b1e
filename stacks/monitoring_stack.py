"""What responders see: the alarm topic, the alarms, the stage's dashboard and cost budget."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, CfnResource, Stack, Tags
from constructs import Construct

from atlas_codex.ground import metrics, naming
from atlas_codex.ground.naming import FunctionResource
from atlas_codex.ground.table_specs import JOBS
from atlas_codex_stage.settings import StageSettings
from stacks.constructs.alarm_topic import AlarmTopic
from stacks.constructs.alarms import Metric, StageAlarms, metric
from stacks.constructs.cost_budget import CostBudget


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        settings: StageSettings,
        *,
        functions: tuple[FunctionResource, ...],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, naming.stack_name("monitoring", settings.stage), **kwargs)
        self.topic = AlarmTopic(self, "Alarms", settings=settings)
        self.alarms = StageAlarms(
            self, "StageAlarms", settings=settings, functions=functions, topic=self.topic.topic
        )
        self.budget = CostBudget(self, "Cost", settings=settings, topic=self.topic.topic)
        # The budget publishes only once the topic's policy allows it.
        self.budget.node.add_dependency(self.topic.topic.node.find_child("Policy"))
        self.dashboard = _dashboard(self, settings, functions, self.alarms)
        CfnOutput(self, "AlarmTopicArn", value=self.topic.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=naming.dashboard_name(settings.stage))
        Tags.of(self).add("atlas-codex:layer", "monitoring")


def _dashboard(
    scope: Stack,
    settings: StageSettings,
    functions: tuple[FunctionResource, ...],
    alarms: StageAlarms,
) -> CfnResource:
    """The stage's dashboard, written as its JSON body (one construct, no metric objects)."""
    stage = settings.stage
    region = settings.region
    jobs_table = naming.table_name(JOBS.resource, stage)
    fn_names = [naming.function_name(fn, stage) for fn in functions]
    queues = [naming.queue_name(q, stage) for q in naming.QUEUES]

    def outcome_metric(name: str, job_outcome: str) -> Metric:
        return metric(
            metrics.NAMESPACE, name, metrics.outcome_dimensions(stage, job_outcome), "Sum"
        )

    def line(m: Metric, label: str | None = None) -> list[Any]:
        dims = [part for kv in m["dimensions"].items() for part in kv]
        return [m["namespace"], m["name"], *dims, {"stat": m["stat"], "label": label or m["name"]}]

    def graph(
        title: str, left: list[list[Any]], width: int, right: list[list[Any]] | None = None
    ) -> dict[str, Any]:
        lines = left + [[*m[:-1], {**m[-1], "yAxis": "right"}] for m in right or []]
        return {
            "type": "metric",
            "width": width,
            "height": 6,
            "properties": {
                "title": title,
                "region": region,
                "view": "timeSeries",
                "period": 300,
                "metrics": lines,
            },
        }

    def per_function(name: str, stat: str = "Sum") -> list[list[Any]]:
        return [line(metric("AWS/Lambda", name, {"FunctionName": f}, stat), f) for f in fn_names]

    alarm_arns = [
        scope.format_arn(
            service="cloudwatch",
            resource="alarm",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        for name in alarms.alarm_names
    ]
    widgets: list[dict[str, Any]] = [
        {
            "type": "alarm",
            "width": 24,
            "height": 4,
            "properties": {
                "title": "Alarms (each description links its RUNBOOK section)",
                "alarms": alarm_arns,
            },
        },
        graph(
            "API requests and 5xx",
            [line(alarms.api_metric("Count", "Sum")), line(alarms.api_metric("5XXError", "Sum"))],
            8,
            right=[line(alarms.api_metric("4XXError", "Sum"))],
        ),
        graph(
            "API latency (p50, p99)",
            [
                line(alarms.api_metric("Latency", "p50"), "p50"),
                line(alarms.api_metric("Latency", "p99"), "p99"),
            ],
            8,
        ),
        graph(
            "Health checks and model budget",
            [
                line(alarms.app_metric(metrics.HEALTH_CHECKS_FAILED)),
                line(alarms.app_metric(metrics.HEALTH_CHECKS_DEGRADED)),
            ],
            8,
            right=[line(alarms.app_metric(metrics.BUDGET_SPENT_PERCENT))],
        ),
        graph(
            "Jobs finished, by outcome",
            [line(outcome_metric(metrics.JOBS_FINISHED, o), o) for o in metrics.OUTCOMES],
            12,
        ),
        graph(
            "Model spend of finished jobs (USD), by outcome",
            [line(outcome_metric(metrics.JOB_MODEL_SPEND_USD, o), o) for o in metrics.OUTCOMES],
            12,
        ),
        graph("Invocations", per_function("Invocations"), 6),
        graph("Errors", per_function("Errors"), 6),
        graph("Duration p99 (ms)", per_function("Duration", "p99"), 6),
        graph("Throttles", per_function("Throttles"), 6),
        graph(
            "Queue messages per consumer: received, failed (errors), returned (retries)",
            [
                line(alarms.consumer_metric(name, fn), f"{fn} {name}")
                for fn in metrics.CONSUMERS
                for name in (
                    metrics.MESSAGES_RECEIVED,
                    metrics.MESSAGES_FAILED,
                    metrics.MESSAGES_RETURNED,
                )
            ],
            24,
        ),
        graph(
            "Queue depth (jobs, webhooks and their DLQs)",
            [line(alarms.sqs_metric("ApproximateNumberOfMessagesVisible", q), q) for q in queues],
            12,
        ),
        graph(
            "Oldest message age (s)",
            [line(alarms.sqs_metric("ApproximateAgeOfOldestMessage", q), q) for q in queues],
            12,
        ),
        graph(
            "DynamoDB throttled requests",
            [
                line(alarms.dynamodb_metric(m, naming.table_name(t, stage)), f"{t} {m}")
                for t in naming.TABLES
                for m in ("ReadThrottleEvents", "WriteThrottleEvents")
            ],
            12,
        ),
        graph(
            "Jobs table writes per index (units), throttles on the right",
            [
                line(
                    alarms.dynamodb_metric("ConsumedWriteCapacityUnits", jobs_table, i.name),
                    i.name,
                )
                for i in JOBS.indexes
            ],
            12,
            right=[
                line(
                    alarms.dynamodb_metric("WriteThrottleEvents", jobs_table, i.name),
                    f"{i.name} throttles",
                )
                for i in JOBS.indexes
            ],
        ),
        {
            "type": "text",
            "width": 24,
            "height": 2,
            "properties": {
                "markdown": (
                    "**Hottest partition keys.** "
                    + (
                        "Contributor Insights watches every table and index for throttled "
                        "keys: [the jobs table's throttled keys]"
                        f"(https://{region}.console.aws.amazon.com/dynamodbv2/home?region="
                        f"{region}#table?name={jobs_table}&tab=monitoring). "
                        if settings.data.throttled_keys_insights
                        else "This stage does not enable Contributor Insights "
                        "(`data.throttled_keys_insights`). "
                    )
                    + "The job indexes and the month's spend are written sharded "
                    "(docs/CAPACITY.md): one hot key points at one client or one batch."
                )
            },
        },
    ]
    body = {"start": "-PT6H", "widgets": widgets}
    return CfnResource(
        scope,
        "Dashboard",
        type="AWS::CloudWatch::Dashboard",
        properties={
            "DashboardName": naming.dashboard_name(stage),
            "DashboardBody": json.dumps(body),
        },
    )
