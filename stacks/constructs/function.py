"""One Atlas Codex function: its own role, its own log group, JSON logs, bounded timeout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import Annotations, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex_stage.settings import TRACING, StageSettings
from stacks import nag
from stacks.constructs.log_group import stage_log_group
from stacks.functions import FunctionSpec
from stacks.packaging import ARCHITECTURE, RUNTIME

SNAPSTART_ALIAS = "live"


NO_DLQ_BECAUSE: Final = {
    "api": "Invoked synchronously only, by API Gateway: a failure is the client's answer.",
    "websocket": "Invoked synchronously only, by the WebSocket API: a failure is its answer.",
    "render": "Invoked synchronously only (RequestResponse) by the api and worker functions, "
    "which record a failed render on the job's page.",
    "worker": "Invoked only by its SQS event source, which redrives failed messages to the "
    "jobs queue's own dead-letter queue.",
    "webhooks": "Invoked only by its SQS event source, which redrives failed messages to the "
    "webhooks queue's own dead-letter queue.",
    "health": "Invoked asynchronously only by its five-minute schedule, with no retry and no "
    "event older than one period: a lost run is superseded by the next, and the "
    "health-monitor-silent and error-rate alarms watch it; a dead-letter queue would hold "
    "nothing worth replaying.",
}
"""Why each function has no on-failure dead-letter queue (cdk-nag Serverless LambdaDLQ)."""


class ServiceFunction(Construct):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        spec: FunctionSpec,
        settings: StageSettings,
        code: lambda_.Code,
        environment: Mapping[str, str],
        snapstart: bool = False,
    ) -> None:
        super().__init__(scope, cid)
        stage = settings.stage
        own = settings.functions.of(spec.name)
        self.spec = spec
        self.log_group = stage_log_group(
            self, "Logs", name=naming.log_group_name(spec.name, stage), settings=settings
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=naming.role_name(spec.name, stage),
            description=f"{naming.function_name(spec.name, stage)}: {spec.description}",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        )
        # Its own log group only (not the managed AWSLambdaBasicExecutionRole's logs:* on *).
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[self.log_group.log_group_arn],
            )
        )
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=naming.function_name(spec.name, stage),
            description=spec.description,
            runtime=RUNTIME,
            architecture=(
                ARCHITECTURE
                if spec.architecture is None
                else {
                    "arm64": lambda_.Architecture.ARM_64,
                    "x86_64": lambda_.Architecture.X86_64,
                }[spec.architecture]
            ),
            handler=spec.handler,
            code=code,
            memory_size=own.memory_mb,
            timeout=Duration.seconds(own.timeout_s),
            reserved_concurrent_executions=own.reserved_concurrency,
            role=self.role,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # INFO: the platform's REPORT and INIT_REPORT lines (duration, memory, init or
            # restore) reach the log group; the runbook reads them.
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            application_log_level_v2=lambda_.ApplicationLogLevel.INFO,
            tracing=lambda_.Tracing.ACTIVE if TRACING else lambda_.Tracing.DISABLED,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snapstart else None,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": naming.service_name(spec.name),
                "POWERTOOLS_METRICS_NAMESPACE": naming.METRICS_NAMESPACE,
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )
        self.entry: lambda_.IFunction = self.function
        """What callers invoke: the function, or with SnapStart the alias of its published
        version (SnapStart applies to published versions only, never to $LATEST)."""
        if snapstart:
            Annotations.of(self.function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "The alias below publishes a version on every code or configuration change "
                "(current_version), and API Gateway calls that alias.",
            )
            self.entry = lambda_.Alias(
                self,
                "Live",
                alias_name=SNAPSTART_ALIAS,
                version=self.function.current_version,
                description="The published version API Gateway calls (SnapStart)",
            )
        nag.acknowledge(
            self.function,
            "AwsSolutions",
            "IAM5",
            "X-Ray's PutTraceSegments and PutTelemetryRecords accept no resource; CDK adds "
            "them for active tracing.",
            finding="Resource::*",
        )
        for pack, rule in (("AwsSolutions", "L1"), ("Serverless", "LambdaLatestVersion")):
            nag.acknowledge(
                self.function,
                pack,  # type: ignore[arg-type]
                rule,
                "Python 3.13 is the newest Lambda runtime whose interpreter these machines "
                "can install, so the tests and the shipped bytecode run on the functions' "
                "exact Python (docs/ARCHITECTURE.md, 'Python').",
            )
        nag.acknowledge(self.function, "Serverless", "LambdaDLQ", NO_DLQ_BECAUSE[spec.name])
