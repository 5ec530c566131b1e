"""The stateless layer: the functions, the REST and WebSocket APIs, and the health schedule.

It refers to the data and messaging stacks by name (the naming scheme makes every name and
ARN known at synth time) rather than by CloudFormation exports, so the stateful stacks never
get stuck behind an export this stack still imports.
"""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack, Tags
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex.ground.artifacts import PAGES_PREFIX, RESULTS_PREFIX
from atlas_codex.ground.config import EnvVar
from atlas_codex.ground.naming import FunctionResource, QueueResource, TableResource
from atlas_codex.ground.table_specs import TABLE_SPECS
from atlas_codex_stage.environment import function_environment
from atlas_codex_stage.settings import StageSettings
from stacks import nag
from stacks.constructs.function import ServiceFunction
from stacks.constructs.rest_api import ServiceRestApi
from stacks.constructs.websocket_api import ServiceWebSocketApi
from stacks.functions import FUNCTION_SPECS, HEALTH_SCHEDULE_MINUTES
from stacks.guards import ACCOUNT_LIMIT_METADATA
from stacks.packaging import render_code, runtime_code

TABLES_BY_NAME: Final = {spec.resource: spec for spec in TABLE_SPECS}


class ComputeStack(Stack):
    def __init__(self, scope: Construct, settings: StageSettings, **kwargs: Any) -> None:
        super().__init__(scope, naming.stack_name("compute", settings.stage), **kwargs)
        stage = settings.stage
        self.settings = settings
        self.tables: dict[TableResource, dynamodb.ITable] = {
            spec.resource: dynamodb.Table.from_table_attributes(
                self,
                f"Table{spec.resource.title()}",
                table_name=naming.table_name(spec.resource, stage),
                global_indexes=[index.name for index in spec.indexes] or None,
            )
            for spec in TABLE_SPECS
        }
        self.queues: dict[QueueResource, sqs.IQueue] = {
            queue: sqs.Queue.from_queue_arn(
                self,
                f"Queue{queue.title().replace('-', '')}",
                self.format_arn(service="sqs", resource=naming.queue_name(queue, stage)),
            )
            for queue in naming.QUEUES
        }
        self.bucket = s3.Bucket.from_bucket_name(
            self, "Artifacts", naming.bucket_name(settings.instance_id)
        )
        environment = function_environment(
            settings,
            tables={name: table.table_name for name, table in self.tables.items()},
            queue_urls={name: queue.queue_url for name, queue in self.queues.items()},
            bucket=self.bucket.bucket_name,
        )
        codes = {"runtime": runtime_code(), "render": render_code()}
        # The render function runs a page's scripts: it is told its stage and which private
        # hosts it may reach, and nothing about the stage's tables, queues or bucket.
        render_environment = {
            EnvVar.STAGE.value: stage,
            EnvVar.ALLOWED_PRIVATE_HOSTS.value: environment[EnvVar.ALLOWED_PRIVATE_HOSTS.value],
        }

        self.functions: dict[FunctionResource, ServiceFunction] = {}
        for spec in FUNCTION_SPECS:
            self.functions[spec.name] = ServiceFunction(
                self,
                f"{spec.name.title()}Function",
                spec=spec,
                settings=settings,
                code=codes[spec.code],
                environment=render_environment if spec.code == "render" else environment,
                snapstart=spec.name == "api" and settings.api.snapstart,
            )

        self.websocket = ServiceWebSocketApi(
            self,
            "WebSocket",
            settings=settings,
            handler=self.functions["websocket"].function,
        )
        self.rest = ServiceRestApi(
            self,
            "Rest",
            settings=settings,
            handler=self.functions["api"].entry,
        )
        # API Gateway writes a stage's logs through the account's CloudWatch role, which the
        # REST API sets: on a fresh account the WebSocket stage must wait for it too.
        account = self.rest.api.node.try_find_child("Account")
        assert account is not None, "the REST API sets the account's CloudWatch role"
        self.websocket.stage.node.add_dependency(account)
        # The console (served by the api function) subscribes to status changes there.
        self.functions["api"].function.add_environment(
            EnvVar.WEBSOCKET_URL.value, self.websocket.stage.url
        )
        for fn in self.functions.values():
            self._grant(fn)
        self.openai_secret = secretsmanager.Secret.from_secret_name_v2(
            self, "OpenAiKey", naming.openai_secret_name(stage)
        )
        for spec in FUNCTION_SPECS:  # the functions that may call a model
            if not spec.reads_openai_key:
                continue
            fn = self.functions[spec.name]
            fn.function.add_environment(
                EnvVar.OPENAI_SECRET_NAME.value, naming.openai_secret_name(stage)
            )
            # GetSecretValue alone: grant_read would add DescribeSecret, which nothing calls.
            fn.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[f"{self.openai_secret.secret_arn}-??????"],
                )
            )
            nag.acknowledge(
                fn.role,
                "AwsSolutions",
                "IAM5",
                "Secrets Manager appends six random characters to a secret's ARN; the grant "
                "names the stage's one OpenAI key secret and nothing else.",
                finding=f"Resource::{nag.rendered(self, self.openai_secret.secret_arn)}-??????",
            )
        self.health_schedule = events.Rule(
            self,
            "HealthSchedule",
            rule_name=naming.schedule_rule_name(stage),
            description=f"Runs {naming.function_name('health', stage)} every "
            f"{HEALTH_SCHEDULE_MINUTES} minutes",
            schedule=events.Schedule.rate(Duration.minutes(HEALTH_SCHEDULE_MINUTES)),
            targets=[
                targets.LambdaFunction(
                    self.functions["health"].function,
                    retry_attempts=1,
                    max_event_age=Duration.minutes(HEALTH_SCHEDULE_MINUTES),
                )
            ],
        )
        # Scheduled runs are asynchronous invocations: no retries, nothing older than a period.
        self.functions["health"].function.configure_async_invoke(
            retry_attempts=0, max_event_age=Duration.minutes(HEALTH_SCHEDULE_MINUTES)
        )
        nag.acknowledge(
            self.functions["health"].function,
            "Serverless",
            "LambdaAsyncFailureDestination",
            "Only the schedule invokes it asynchronously; a failed run is visible through its "
            "error-rate alarm and superseded by the next run.",
        )
        nag.acknowledge(
            self.health_schedule,
            "Serverless",
            "EventBusDLQ",
            "A missed health run is superseded by the next one five minutes later; a DLQ of "
            "stale runs would hold nothing worth replaying.",
        )

        CfnOutput(self, "ApiUrl", value=self.rest.api.url)
        CfnOutput(self, "UsagePlanId", value=self.rest.usage_plan.usage_plan_id)
        CfnOutput(self, "WebSocketUrl", value=self.websocket.stage.url)
        Tags.of(self).add("atlas-codex:layer", "compute")
        # For the synth-time guard that checks reserved concurrency against the account.
        self.template_options.metadata = {
            ACCOUNT_LIMIT_METADATA: settings.account_concurrency_limit
        }

    def _grant(self, fn: ServiceFunction) -> None:
        """Exactly the actions and resources the function's code uses: no wildcards but the
        ones a resource cannot name (object keys, connection ids), each acknowledged."""
        spec = fn.spec
        role = fn.role
        for table, grant in sorted(spec.tables.items()):
            table_spec = TABLES_BY_NAME[table]
            arn = self.tables[table].table_arn
            known = {i.name for i in table_spec.indexes}
            assert set(grant.indexes) <= known, f"{spec.name}: {table} has no index {grant.indexes}"
            if grant.actions:
                role.add_to_policy(
                    iam.PolicyStatement(
                        actions=[f"dynamodb:{a}" for a in grant.actions], resources=[arn]
                    )
                )
            if grant.indexes:
                role.add_to_policy(
                    iam.PolicyStatement(
                        actions=["dynamodb:Query"],
                        resources=[f"{arn}/index/{name}" for name in grant.indexes],
                    )
                )
        senders = [self.queues[q].queue_arn for q in spec.sends_to]
        if senders:
            role.add_to_policy(iam.PolicyStatement(actions=["sqs:SendMessage"], resources=senders))
        if spec.consumes is not None:
            fn.function.add_event_source(
                sources.SqsEventSource(
                    self.queues[spec.consumes],
                    batch_size=spec.batch_size,
                    report_batch_item_failures=True,
                    # No more pollers than the function may run: a throttled batch would go
                    # back to the queue and spend one of its messages' receives untried.
                    max_concurrency=self.settings.functions.of(spec.name).reserved_concurrency,
                )
            )
            nag.acknowledge(
                fn.function,
                "Serverless",
                "LambdaEventSourceMappingDestination",
                "An SQS event source cannot have an on-failure destination; failed messages "
                "reach the queue's dead-letter queue through its redrive policy.",
            )
        if spec.bucket is not None:
            by_prefix = {RESULTS_PREFIX: spec.bucket.results, PAGES_PREFIX: spec.bucket.pages}
            reads = [prefix for prefix, actions in by_prefix.items() if "GetObject" in actions]
            if reads:
                # Listing the prefixes it reads makes S3 answer a missing key with 404 (not
                # 403), so "these pages were never stored or have expired" is told apart.
                role.add_to_policy(
                    iam.PolicyStatement(
                        actions=["s3:ListBucket"],
                        resources=[self.bucket.bucket_arn],
                        conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in reads]}},
                    )
                )
            for prefix, actions in by_prefix.items():
                if not actions:
                    continue
                objects = self.bucket.arn_for_objects(f"{prefix}*")
                role.add_to_policy(
                    iam.PolicyStatement(actions=[f"s3:{a}" for a in actions], resources=[objects])
                )
                nag.acknowledge(
                    role,
                    "AwsSolutions",
                    "IAM5",
                    f"Object keys under {prefix} are job ids known only at run time; the "
                    "wildcard is limited to that prefix of the stage's own bucket.",
                    finding=f"Resource::{nag.rendered(self, objects)}",
                )
        if spec.posts_to_connections:
            connections = self.websocket.connections_arn
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["execute-api:ManageConnections"], resources=[connections]
                )
            )
            fn.function.add_environment(
                EnvVar.WEBSOCKET_ENDPOINT.value, self.websocket.callback_url
            )
            nag.acknowledge(
                role,
                "AwsSolutions",
                "IAM5",
                "WebSocket connection ids are known only at run time; the grant is limited to "
                "posting to connections of this stage's own WebSocket API.",
                finding=f"Resource::{nag.rendered(self, connections)}",
            )
        for callee in spec.invokes:
            assert callee == "render", "the render function is the only one invoked"
            # Its ARN from the naming scheme (like the queues'), not a reference to it.
            target = self.format_arn(
                service="lambda",
                resource="function",
                resource_name=naming.function_name(callee, self.settings.stage),
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
            role.add_to_policy(
                iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[target])
            )
            fn.function.add_environment(
                EnvVar.RENDER_FUNCTION.value, naming.function_name(callee, self.settings.stage)
            )
        if spec.reads_dead_letters:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sqs:ReceiveMessage"],
                    resources=[self.queues[q].queue_arn for q in spec.reads_dead_letters],
                )
            )
        if spec.reads_queue_metrics:
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["sqs:GetQueueAttributes"],
                    resources=[q.queue_arn for q in self.queues.values()],
                )
            )

    def function(self, name: FunctionResource) -> lambda_.Function:
        return self.functions[name].function
