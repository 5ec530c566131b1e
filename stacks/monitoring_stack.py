"""What responders see: the alarm topic, the alarms, the stage's dashboard and cost budget."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from atlas_codex import metrics, naming
from atlas_codex.naming import FunctionResource
from stacks.constructs.alarm_topic import AlarmTopic
from stacks.constructs.alarms import StageAlarms
from stacks.constructs.cost_budget import CostBudget
from stacks.settings import StageSettings


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
    scope: Construct,
    settings: StageSettings,
    functions: tuple[FunctionResource, ...],
    alarms: StageAlarms,
) -> cloudwatch.Dashboard:
    stage = settings.stage
    fn_names = [naming.function_name(fn, stage) for fn in functions]

    def per_function(metric: str, statistic: str = "Sum") -> list[cloudwatch.IMetric]:
        return [
            cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name=metric,
                dimensions_map={"FunctionName": name},
                statistic=statistic,
                label=name,
                period=Duration.minutes(5),
            )
            for name in fn_names
        ]

    queues = [naming.queue_name(q, stage) for q in naming.QUEUES]
    dashboard = cloudwatch.Dashboard(
        scope,
        "Dashboard",
        dashboard_name=naming.dashboard_name(stage),
        default_interval=Duration.hours(6),
    )
    dashboard.add_widgets(
        cloudwatch.AlarmStatusWidget(
            title="Alarms (each description links its RUNBOOK section)",
            alarms=list(alarms.alarms),
            width=24,
            height=4,
        )
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="API requests and 5xx",
            left=[alarms.api_metric("Count", "Sum"), alarms.api_metric("5XXError", "Sum")],
            right=[alarms.api_metric("4XXError", "Sum")],
            width=8,
        ),
        cloudwatch.GraphWidget(
            title="API latency (p50, p99)",
            left=[alarms.api_metric("Latency", "p50"), alarms.api_metric("Latency", "p99")],
            width=8,
        ),
        cloudwatch.GraphWidget(
            title="Health checks and model budget",
            left=[
                alarms.app_metric(metrics.HEALTH_CHECKS_FAILED),
                alarms.app_metric(metrics.HEALTH_CHECKS_DEGRADED),
            ],
            right=[alarms.app_metric(metrics.BUDGET_SPENT_PERCENT)],
            width=8,
        ),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(title="Invocations", left=per_function("Invocations"), width=6),
        cloudwatch.GraphWidget(title="Errors", left=per_function("Errors"), width=6),
        cloudwatch.GraphWidget(
            title="Duration p99 (ms)", left=per_function("Duration", "p99"), width=6
        ),
        cloudwatch.GraphWidget(title="Throttles", left=per_function("Throttles"), width=6),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="Queue depth (jobs, webhooks and their DLQs)",
            left=[alarms.sqs_metric("ApproximateNumberOfMessagesVisible", q) for q in queues],
            width=12,
        ),
        cloudwatch.GraphWidget(
            title="Oldest message age (s)",
            left=[alarms.sqs_metric("ApproximateAgeOfOldestMessage", q) for q in queues],
            width=12,
        ),
    )
    dashboard.add_widgets(
        cloudwatch.GraphWidget(
            title="DynamoDB throttled requests",
            left=[
                alarms.dynamodb_metric(metric, naming.table_name(t, stage))
                for t in naming.TABLES
                for metric in ("ReadThrottleEvents", "WriteThrottleEvents")
            ],
            width=24,
        )
    )
    return dashboard
