"""The WebSocket API: clients connect with their API key and subscribe to a job's status.

The websocket function checks the key on ``$connect`` (browsers cannot send headers, so it
also reads the ``api_key`` query parameter) and answers ``subscribe`` messages; the worker
and the api function post status changes to the subscribed connections.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex_stage.settings import StageSettings
from stacks import nag
from stacks.access_logs import WEBSOCKET_FORMAT
from stacks.constructs.log_group import stage_log_group


class ServiceWebSocketApi(Construct):
    def __init__(
        self,
        scope: Construct,
        cid: str,
        *,
        settings: StageSettings,
        handler: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, cid)
        stage = settings.stage
        name = naming.websocket_api_name(stage)

        def route(route_id: str) -> apigwv2.WebSocketRouteOptions:
            return apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(
                    f"{route_id}Integration", handler
                ),
                return_response=True,
            )

        self.api = apigwv2.WebSocketApi(
            self,
            "Api",
            api_name=name,
            description=f"Atlas Codex {stage}: live job status",
            route_selection_expression="$request.body.action",
            connect_route_options=route("Connect"),
            disconnect_route_options=route("Disconnect"),
            default_route_options=route("Default"),
        )
        nag.acknowledge(
            self.api,
            "AwsSolutions",
            "APIG4",
            "The websocket function authorizes $connect itself: it refuses a connection "
            "without a valid API key, and later routes only for registered connections.",
        )
        self.access_logs = stage_log_group(
            self,
            "AccessLogs",
            name=naming.access_log_group_name(stage, "websocket"),
            settings=settings,
        )
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=stage,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(  # every client together, per route
                rate_limit=settings.api.stage_rate_limit_rps,
                burst_limit=settings.api.stage_burst_limit,
            ),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigwv2.CfnStage)
        cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=WEBSOCKET_FORMAT,
        )

    @property
    def connections_arn(self) -> str:
        """Posting to any connection of this API's stage, and nothing else."""
        return Stack.of(self).format_arn(
            service="execute-api",
            resource=self.api.api_id,
            resource_name=f"{self.stage.stage_name}/POST/@connections/*",
        )

    @property
    def callback_url(self) -> str:
        """The management endpoint functions post to (``https://.../{stage}``)."""
        return self.stage.callback_url
