"""The REST API: the routes of ``atlas_codex.ground.api_routes`` to the api function, behind API keys.

API Gateway checks the key and enforces the usage plan's throttling and quota before the
function runs; the function checks the same key against its own store to find the owner.
Bodies must be JSON objects (the function validates their fields and names the bad one).
API Gateway's own refusals answer in the API's error shape, never as a bare "Forbidden".
"""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from atlas_codex.ground import naming
from atlas_codex.ground.api_routes import CORRELATION_HEADER, REQUEST_HEADERS, ROUTES
from atlas_codex_stage.settings import TRACING, StageSettings
from stacks import nag
from stacks.constructs.log_group import stage_log_group

# (response type, status, code, message, field): API Gateway's refusals, in the one error
# shape of the API (atlas_codex.jobs.views.ErrorBody).
GATEWAY_ERRORS: Final = (
    (
        apigw.ResponseType.INVALID_API_KEY,
        "401",
        "unauthorized",
        "a valid API key is required in the x-api-key header",
        "x-api-key",
    ),
    (
        apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
        "404",
        "not_found",
        "no such route; see /openapi.json",
        None,
    ),
    (
        apigw.ResponseType.BAD_REQUEST_BODY,
        "400",
        "invalid_json",
        "the request body must be a JSON object",
        "body",
    ),
    (apigw.ResponseType.QUOTA_EXCEEDED, "429", "quota_exceeded", "daily quota exceeded", None),
    (apigw.ResponseType.THROTTLED, "429", "throttled", "too many requests; retry later", None),
    (
        apigw.ResponseType.REQUEST_TOO_LARGE,
        "413",
        "body_too_large",
        "the request is too large",
        "body",
    ),
    (
        apigw.ResponseType.WAF_FILTERED,
        "403",
        "refused_by_firewall",
        "the web application firewall refused the request (a known bad input, an address on "
        "a reputation list, or too many requests from one address)",
        None,
    ),
    (apigw.ResponseType.DEFAULT_4_XX, None, "bad_request", "the request was refused", None),
    (apigw.ResponseType.DEFAULT_5_XX, None, "unavailable", "the service failed; retry later", None),
)

ACCESS_LOG_FIELDS: Final = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    # What the runbook asks a responder to read (RUNBOOK, "API p99 latency", "API 5xx rate"):
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus",
    "integrationError": "$context.integration.error",
    "errorType": "$context.error.responseType",
    "errorMessage": "$context.error.message",
}
"""The REST stage's access log line, one JSON object per request."""
ACCESS_LOG_FORMAT: Final = apigw.AccessLogFormat.custom(
    "{" + ",".join(f'"{k}":"{v}"' for k, v in ACCESS_LOG_FIELDS.items()) + "}"
)

OBJECT_BODY_SCHEMA: Final = apigw.JsonSchema(
    schema=apigw.JsonSchemaVersion.DRAFT4,
    title="JsonObject",
    type=apigw.JsonSchemaType.OBJECT,
)


def error_template(code: str, message: str, field: str | None) -> str:
    body = {
        "error": {
            "code": code,
            "message": message,
            "field": field,
            "correlation_id": "$context.requestId",
        }
    }
    return json.dumps(body)


class ServiceRestApi(Construct):
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
        self.access_logs = stage_log_group(
            self, "AccessLogs", name=naming.access_log_group_name(stage), settings=settings
        )

        origins = list(settings.api.cors_origins)
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=naming.rest_api_name(stage),
            description=f"Atlas Codex {stage}: the jobs API",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            api_key_source_type=apigw.ApiKeySourceType.HEADER,
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=ACCESS_LOG_FORMAT,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                metrics_enabled=True,
                tracing_enabled=TRACING,
                # every client together, per method; one client's share is its usage plan
                throttling_rate_limit=settings.api.stage_rate_limit_rps,
                throttling_burst_limit=settings.api.stage_burst_limit,
            ),
            default_cors_preflight_options=apigw.CorsOptions(
                allow_origins=origins,
                allow_methods=sorted({r.method for r in ROUTES}),
                allow_headers=list(REQUEST_HEADERS),
                expose_headers=[CORRELATION_HEADER],
            ),
            min_compression_size=None,
        )
        object_body = self.api.add_model(
            "JsonObject", content_type="application/json", schema=OBJECT_BODY_SCHEMA
        )
        body_validator = self.api.add_request_validator(
            "BodyValidator", validate_request_body=True, validate_request_parameters=True
        )
        params_validator = self.api.add_request_validator(
            "ParamsValidator", validate_request_body=False, validate_request_parameters=True
        )
        integration = apigw.LambdaIntegration(handler, proxy=True)
        for route in ROUTES:
            resource = self.api.root.resource_for_path(route.path)
            # HEAD is answered wherever GET is (RFC 9110 9.3.2): the handler serves the GET
            # and sends its status and headers without the body.
            for method in (route.method, "HEAD") if route.method == "GET" else (route.method,):
                resource.add_method(
                    method,
                    integration,
                    api_key_required=not route.public,
                    request_validator=body_validator if route.takes_body else params_validator,
                    request_models=(
                        {"application/json": object_body} if route.takes_body else None
                    ),
                    operation_name=f"{method} {route.path}",
                )

        allow_origin = (
            {"Access-Control-Allow-Origin": f"'{origins[0]}'"} if len(origins) == 1 else {}
        )
        for response_type, status, code, message, field in GATEWAY_ERRORS:
            self.api.add_gateway_response(
                f"Gateway{code.title().replace('_', '')}{status or ''}",
                type=response_type,
                status_code=status,
                response_headers=allow_origin or None,
                templates={"application/json": error_template(code, message, field)},
            )

        self.usage_plan = self.api.add_usage_plan(
            "UsagePlan",
            name=naming.usage_plan_name(stage),
            description=f"Atlas Codex {stage}: per-key throttling and daily quota",
            throttle=apigw.ThrottleSettings(
                rate_limit=settings.api.rate_limit_rps, burst_limit=settings.api.burst_limit
            ),
            quota=apigw.QuotaSettings(limit=settings.api.quota_per_day, period=apigw.Period.DAY),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.api, stage=self.api.deployment_stage)],
        )
        _acknowledge_api_keys(self.api)
        nag.acknowledge(
            self.api,
            "AwsSolutions",
            "IAM4",
            "API Gateway's account-wide logging role needs exactly this AWS-managed policy "
            "to write the access and execution logs.",
            finding="Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs",
        )
        self.web_acl: wafv2.CfnWebACL | None = None
        if settings.api.waf_enabled:
            self.web_acl = _web_acl(self, settings)
            wafv2.CfnWebACLAssociation(
                self,
                "WafAssociation",
                resource_arn=self.api.deployment_stage.stage_arn,
                web_acl_arn=self.web_acl.attr_arn,
            )

        else:
            nag.acknowledge(
                self.api,
                "AwsSolutions",
                "APIG3",
                f"The {stage} stage's settings turn WAF off (api.waf_enabled): API keys, the "
                "usage plan's throttling and quota guard it; prod turns WAF on.",
            )

    @property
    def stage_name(self) -> str:
        return self.api.deployment_stage.stage_name


def _acknowledge_api_keys(scope: Construct) -> None:
    nag.acknowledge(
        scope,
        "AwsSolutions",
        "APIG4",
        "Clients are machines with API keys: API Gateway requires the key on every route "
        "but /health, /openapi.json and the console's static files, and the function maps it "
        "to its owner.",
    )
    nag.acknowledge(
        scope,
        "AwsSolutions",
        "COG4",
        "No end-user sign-in: clients authenticate with API keys issued per owner, not "
        "with a Cognito user pool.",
    )


COUNTED_RULES: Final = {
    "AWSManagedRulesCommonRuleSet": (
        # Blocks any body over 8 KB; the API takes up to limits.MAX_REQUEST_BODY_BYTES (a
        # 160-URL job is ~9 KB) and answers a larger one itself: 413 in its error shape.
        "SizeRestrictions_BODY",
        # Blocks requests without a User-Agent; clients are machines with API keys, and
        # plenty of HTTP clients send none. Counted, so the WAF metrics still show them.
        "NoUserAgent_HEADER",
    ),
}
"""Managed rules set to count instead of block: what the API's own limits already answer."""


def _managed_rule(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    counted = [
        wafv2.CfnWebACL.RuleActionOverrideProperty(
            name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
        )
        for rule in COUNTED_RULES.get(name, ())
    ]
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS", name=name, rule_action_overrides=counted or None
            )
        ),
        visibility_config=_visibility(name),
    )


def _visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def _web_acl(scope: Construct, settings: StageSettings) -> wafv2.CfnWebACL:
    name = naming.web_acl_name(settings.stage)
    # Per client address, five minutes of the stage's rate: a flood, not a busy client.
    per_ip_limit = max(100, int(settings.api.rate_limit_rps * 300))
    return wafv2.CfnWebACL(
        scope,
        "Waf",
        name=name,
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=_visibility(name),
        rules=[
            _managed_rule("AWSManagedRulesCommonRuleSet", 0),
            _managed_rule("AWSManagedRulesKnownBadInputsRuleSet", 1),
            _managed_rule("AWSManagedRulesAmazonIpReputationList", 2),
            wafv2.CfnWebACL.RuleProperty(
                name="rate-limit-per-ip",
                priority=3,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        aggregate_key_type="IP", limit=per_ip_limit
                    )
                ),
                visibility_config=_visibility("rate-limit-per-ip"),
            ),
        ],
    )
