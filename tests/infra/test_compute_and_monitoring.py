"""Template tests of the compute and monitoring stacks: what a reviewer would check by hand."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from atlas_codex.ground import metrics, naming
from atlas_codex.ground.api_routes import ROUTES
from atlas_codex.ground.config import EnvVar, RenderConfig, RuntimeConfig
from atlas_codex.ground.table_specs import TABLE_SPECS
from atlas_codex_stage.settings import DEFAULTS_KEY, STAGES_KEY, StageSettings, load_stage_settings
from stacks.functions import FUNCTION_SPECS, SPECS_BY_NAME
from stacks.packaging import RUNTIME
from stacks.stages import StageStacks

pytestmark = pytest.mark.infra

DEPLOYED = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def settings(cdk_context: dict[str, Any]) -> dict[str, StageSettings]:
    return {
        stage: load_stage_settings(stage, cdk_context[DEFAULTS_KEY], cdk_context[STAGES_KEY])
        for stage in ("local", *DEPLOYED)
    }


def _functions(template: Template) -> dict[str, Any]:
    return {
        r["Properties"]["FunctionName"]: r
        for r in template.find_resources("AWS::Lambda::Function").values()
    }


@pytest.mark.parametrize("stage", DEPLOYED)
def test_each_function_runs_on_arm64_python_with_json_logs_tracing_and_its_settings(
    templates: dict[str, Any], settings: dict[str, StageSettings], stage: str
) -> None:
    functions = _functions(templates[stage]["compute"])
    assert set(functions) == {naming.function_name(s.name, stage) for s in FUNCTION_SPECS}
    for spec in FUNCTION_SPECS:
        props = functions[naming.function_name(spec.name, stage)]["Properties"]
        own = settings[stage].functions.of(spec.name)
        assert props["Runtime"] == RUNTIME.name
        assert props["Runtime"] >= "python3.12"
        # arm64 but the render function: the browser it runs is built for x86-64 only.
        assert props["Architectures"] == (["x86_64"] if spec.name == "render" else ["arm64"])
        assert props["Handler"] == f"atlas_codex.handlers.{spec.name}.handler"
        assert props["Timeout"] == own.timeout_s
        assert props["MemorySize"] == own.memory_mb
        assert props.get("ReservedConcurrentExecutions") == own.reserved_concurrency
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        assert props["TracingConfig"] == {"Mode": "Active"}
        env = props["Environment"]["Variables"]
        assert env["POWERTOOLS_SERVICE_NAME"] == naming.service_name(spec.name)
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == metrics.NAMESPACE
        assert env[EnvVar.STAGE.value] == stage


def test_prod_reserves_concurrency_from_its_settings(templates: dict[str, Any]) -> None:
    functions = _functions(templates["prod"]["compute"])
    assert functions["atlas-codex-api-prod"]["Properties"]["ReservedConcurrentExecutions"] == 100
    assert functions["atlas-codex-worker-prod"]["Properties"]["ReservedConcurrentExecutions"] == 100


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_function_environment_passes_the_runtime_config_validation(
    stage_stacks: dict[str, StageStacks], stage: str
) -> None:
    compute = stage_stacks[stage].compute
    for spec in FUNCTION_SPECS:
        fn = compute.function(spec.name)
        raw = compute.resolve(fn.node.default_child._cfn_properties["environment"])  # type: ignore[union-attr]
        env = {key: _render(value) for key, value in raw["variables"].items()}
        if spec.name == "render":
            # Its own small configuration: no table, queue or bucket is named to it.
            assert RenderConfig.from_env(env).stage == stage
            assert not any("TABLE" in key or "QUEUE" in key or "BUCKET" in key for key in env)
            continue
        config = RuntimeConfig.from_env(env)
        assert config.stage == stage
        if "render" in SPECS_BY_NAME[spec.name].invokes:
            assert config.render_function == naming.function_name("render", stage)
        assert (config.websocket_endpoint is not None) == spec.posts_to_connections


def _render(value: Any) -> str:
    """CloudFormation intrinsics rendered as a deployed stack would resolve them."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return str(sep).join(_render(p) for p in parts)
    if value == {"Ref": "AWS::URLSuffix"}:
        return "amazonaws.com"
    if "Ref" in value:
        return "abc123def4"  # an API id
    raise AssertionError(f"unexpected intrinsic {value}")


@pytest.mark.parametrize("stage", DEPLOYED)
def test_each_function_has_its_own_role_with_no_wildcard_action(
    template_json: dict[str, Any], stage: str
) -> None:
    compute = template_json[stage]["compute"]["Resources"]
    roles = {k: r for k, r in compute.items() if r["Type"] == "AWS::IAM::Role"}
    function_roles = [
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in compute.values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    assert len(set(function_roles)) == len(FUNCTION_SPECS)
    for role_id in function_roles:
        assert roles[role_id]["Properties"].get("ManagedPolicyArns") is None
    for policy in (r for r in compute.values() if r["Type"] == "AWS::IAM::Policy"):
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            for action in actions:
                assert "*" not in action, f"wildcard action {action}"


def test_the_webhook_sender_cannot_touch_the_bucket_or_the_connections(
    template_json: dict[str, Any],
) -> None:
    compute = template_json["dev"]["compute"]["Resources"]
    text = json.dumps(_policies_of(compute, "atlas-codex-webhooks-dev"))
    assert "s3:" not in text
    assert "atlas-codex-connections-dev" not in text
    assert "execute-api:ManageConnections" not in text
    assert "atlas-codex-webhooks-dlq-dev" in text
    assert "sqs:SendMessage" in text


def _policies_of(compute: dict[str, Any], function_name: str) -> list[dict[str, Any]]:
    role_id = next(
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in compute.values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["FunctionName"] == function_name
    )
    return [
        statement
        for r in compute.values()
        if r["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
    ]


@pytest.mark.parametrize("function", ["api", "worker"])
def test_bucket_readers_may_list_only_their_prefixes_so_a_missing_page_is_a_404(
    template_json: dict[str, Any], function: str
) -> None:
    statements = _policies_of(
        template_json["dev"]["compute"]["Resources"], f"atlas-codex-{function}-dev"
    )
    [listing] = [s for s in statements if s["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["results/*", "pages/*"]}}
    assert "/" not in json.dumps(listing["Resource"]).split(":::")[-1]  # the bucket, no objects


@pytest.mark.parametrize("stage", DEPLOYED)
def test_queue_consumers_report_partial_batch_failures(
    templates: dict[str, Any], stage: str
) -> None:
    compute: Template = templates[stage]["compute"]
    mappings = compute.find_resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 2
    for mapping in mappings.values():
        assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


@pytest.mark.parametrize("stage", DEPLOYED)
def test_every_route_is_deployed_with_an_api_key_unless_public(
    template_json: dict[str, Any], stage: str
) -> None:
    compute = template_json[stage]["compute"]["Resources"]
    methods = [
        r["Properties"]
        for r in compute.values()
        if r["Type"] == "AWS::ApiGateway::Method" and r["Properties"]["HttpMethod"] != "OPTIONS"
    ]
    by_name = {m["OperationName"]: m for m in methods}
    # Every route, and HEAD wherever GET is (served as the GET, without its body).
    heads = {f"HEAD {r.path}" for r in ROUTES if r.method == "GET"}
    assert set(by_name) == {f"{r.method} {r.path}" for r in ROUTES} | heads
    for route in ROUTES:
        method = by_name[f"{route.method} {route.path}"]
        assert method["ApiKeyRequired"] is (not route.public)
        assert "RequestValidatorId" in method
        if route.takes_body:
            assert "application/json" in method["RequestModels"]
        if route.method == "GET":
            head = by_name[f"HEAD {route.path}"]
            assert head["ApiKeyRequired"] is method["ApiKeyRequired"]
            assert head["Integration"] == method["Integration"]


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_usage_plan_throttles_and_quotas_from_the_settings(
    templates: dict[str, Any], settings: dict[str, StageSettings], stage: str
) -> None:
    api = settings[stage].api
    templates[stage]["compute"].has_resource_properties(
        "AWS::ApiGateway::UsagePlan",
        {
            "UsagePlanName": naming.usage_plan_name(stage),
            "Throttle": {"RateLimit": api.rate_limit_rps, "BurstLimit": api.burst_limit},
            "Quota": {"Limit": api.quota_per_day, "Period": "DAY"},
        },
    )


@pytest.mark.parametrize("stage", DEPLOYED)
def test_api_stages_write_access_logs_and_refusals_use_the_error_shape(
    templates: dict[str, Any], stage: str
) -> None:
    compute: Template = templates[stage]["compute"]
    compute.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {"StageName": stage, "AccessLogSetting": Match.object_like({"Format": Match.any_value()})},
    )
    compute.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {"StageName": stage, "AccessLogSettings": Match.object_like({})},
    )
    invalid_key = next(
        r["Properties"]
        for r in compute.find_resources("AWS::ApiGateway::GatewayResponse").values()
        if r["Properties"]["ResponseType"] == "INVALID_API_KEY"
    )
    body = json.loads(invalid_key["ResponseTemplates"]["application/json"])
    assert invalid_key["StatusCode"] == "401"
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["field"] == "x-api-key"


def test_waf_protects_the_api_only_where_the_settings_turn_it_on(
    templates: dict[str, Any], settings: dict[str, StageSettings]
) -> None:
    for stage in DEPLOYED:
        count = len(templates[stage]["compute"].find_resources("AWS::WAFv2::WebACLAssociation"))
        assert count == (1 if settings[stage].api.waf_enabled else 0), stage
    assert settings["prod"].api.waf_enabled


def test_prod_cors_names_its_origins(template_json: dict[str, Any]) -> None:
    text = json.dumps(template_json["prod"]["compute"])
    assert "https://app.atlas-codex.example" in text
    assert "'*'" not in text
    env_origins = {
        r["Properties"]["Environment"]["Variables"].get(EnvVar.CORS_ORIGINS.value)
        for r in template_json["prod"]["compute"]["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["FunctionName"] != "atlas-codex-render-prod"
    }
    assert env_origins == {"https://app.atlas-codex.example"}
    private = {
        r["Properties"]["Environment"]["Variables"][EnvVar.ALLOWED_PRIVATE_HOSTS.value]
        for r in template_json["prod"]["compute"]["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }
    assert private == {""}


# ------------------------------------------------------------------- monitoring


@pytest.mark.parametrize("stage", DEPLOYED)
def test_every_function_has_an_error_rate_alarm_over_errors_and_invocations(
    templates: dict[str, Any], settings: dict[str, StageSettings], stage: str
) -> None:
    monitoring: Template = templates[stage]["monitoring"]
    for spec in FUNCTION_SPECS:
        monitoring.has_resource_properties(
            "AWS::CloudWatch::Alarm",
            {
                "AlarmName": naming.alarm_name(f"{spec.name}-error-rate", stage),
                "Threshold": settings[stage].alarms.error_rate_pct,
                "ComparisonOperator": "GreaterThanThreshold",
                "Metrics": Match.array_with(
                    [
                        Match.object_like(
                            {"Expression": "IF(invocations > 0, 100 * errors / invocations, 0)"}
                        )
                    ]
                ),
                "AlarmActions": [{"Ref": Match.any_value()}],
            },
        )


@pytest.mark.parametrize("stage", DEPLOYED)
def test_dlqs_queue_age_api_tables_health_and_budget_are_alarmed(
    templates: dict[str, Any], settings: dict[str, StageSettings], stage: str
) -> None:
    alarms = {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in templates[stage]["monitoring"].find_resources("AWS::CloudWatch::Alarm").values()
    }
    thresholds = settings[stage].alarms

    def alarm(resource: str) -> Any:
        return alarms[naming.alarm_name(resource, stage)]

    for dlq in ("dlq", "webhooks-dlq"):
        assert alarm(f"{dlq}-depth")["Threshold"] == thresholds.dlq_depth
        assert alarm(f"{dlq}-depth")["Dimensions"] == [
            {"Name": "QueueName", "Value": naming.queue_name(dlq, stage)}
        ]
    queue_age = alarm("queue-oldest-message")
    assert queue_age["MetricName"] == "ApproximateAgeOfOldestMessage"
    jobs_queue = settings[stage].jobs_queue
    # never on a message that is only being retried: past every receive's visibility timeout
    assert queue_age["Threshold"] > jobs_queue.visibility_timeout_s * (
        jobs_queue.max_receive_count - 1
    )
    for route, (method, resource) in {
        "submit": ("POST", "/jobs"),
        "status": ("GET", "/jobs/{job_id}"),
    }.items():
        fast = alarm(f"api-{route}-p99-latency")
        assert fast["ExtendedStatistic"] == "p99"
        assert fast["Threshold"] == thresholds.api_p99_latency_ms
        dims = {d["Name"]: d["Value"] for d in fast["Dimensions"]}
        assert (dims["Method"], dims["Resource"]) == (method, resource)
    # /extract runs up to the sync limit by design: watched against that limit, not 2 s
    assert alarm("api-extract-p99-latency")["Threshold"] > 25_000
    assert alarm("api-5xx-rate")["Threshold"] == thresholds.api_5xx_rate_pct
    indexes = 0
    for spec in TABLE_SPECS:
        throttles = alarm(f"{spec.resource}-table-throttles")
        assert throttles["Metrics"][0]["Expression"] == "FILL(reads, 0) + FILL(writes, 0)"
        for index in spec.indexes:
            indexed = alarm(f"{spec.resource}-{index.name}-index-throttles")
            dims = {
                d["Name"]: d["Value"]
                for d in indexed["Metrics"][1]["MetricStat"]["Metric"]["Dimensions"]
            }
            assert dims["GlobalSecondaryIndexName"] == index.name
            indexes += 1
    for consumer in ("worker", "webhooks"):
        failed = alarm(f"{consumer}-failed-messages")
        names = {m["MetricStat"]["Metric"]["MetricName"] for m in failed["Metrics"][1:]}
        assert names == {metrics.MESSAGES_FAILED, metrics.MESSAGES_RECEIVED}
    health = alarm("health-checks-failed")
    assert health["Namespace"] == metrics.NAMESPACE
    assert health["MetricName"] == metrics.HEALTH_CHECKS_FAILED
    budget = alarm("budget-spend")
    assert budget["MetricName"] == metrics.BUDGET_SPENT_PERCENT
    assert budget["Threshold"] == settings[stage].budget.notify_at_pct[0]
    assert len(alarms) == (
        2 * len(FUNCTION_SPECS)  # error rate, throttles
        + 2  # failed messages of the two consumers
        + 2  # DLQs
        + 1  # queue age
        + 1  # 5xx
        + 4  # p99 of submit, status, extract, quote
        + len(naming.TABLES)
        + indexes
        + 2  # health, budget
        + 2  # a worker that is not running, a health monitor that went silent
    )


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_budget_notifies_the_topic_at_each_step_actual_and_forecasted(
    templates: dict[str, Any], settings: dict[str, StageSettings], stage: str
) -> None:
    monitoring: Template = templates[stage]["monitoring"]
    budget = next(iter(monitoring.find_resources("AWS::Budgets::Budget").values()))["Properties"]
    assert budget["Budget"]["BudgetLimit"] == {
        "Amount": settings[stage].budget.aws_monthly_usd,
        "Unit": "USD",
    }
    # the stage's own bill, not the account's: filtered by the tag every stack sets
    assert budget["Budget"]["FilterExpression"] == {
        "Tags": {"Key": "stage", "Values": [stage], "MatchOptions": ["EQUALS"]}
    }
    steps = {
        (n["Notification"]["Threshold"], n["Notification"]["NotificationType"])
        for n in budget["NotificationsWithSubscribers"]
    }
    assert steps == {(p, k) for p in (80.0, 95.0) for k in ("ACTUAL", "FORECASTED")}
    topic_id = next(iter(monitoring.find_resources("AWS::SNS::Topic")))
    for n in budget["NotificationsWithSubscribers"]:
        assert n["Subscribers"] == [{"SubscriptionType": "SNS", "Address": {"Ref": topic_id}}]
    policy = json.dumps(monitoring.find_resources("AWS::SNS::TopicPolicy"))
    assert "budgets.amazonaws.com" in policy
    assert "cloudwatch.amazonaws.com" in policy
    key_policy = json.dumps(monitoring.find_resources("AWS::KMS::Key"))
    assert "budgets.amazonaws.com" in key_policy


@pytest.mark.parametrize("stage", DEPLOYED)
def test_each_stage_has_a_dashboard(templates: dict[str, Any], stage: str) -> None:
    templates[stage]["monitoring"].has_resource_properties(
        "AWS::CloudWatch::Dashboard", {"DashboardName": naming.dashboard_name(stage)}
    )


def test_the_dashboard_graphs_every_job_outcome_across_functions(
    template_json: dict[str, Any],
) -> None:
    from atlas_codex.ground import metrics

    [dashboard] = [
        r
        for r in template_json["dev"]["monitoring"]["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = json.loads(dashboard["Properties"]["DashboardBody"])
    [widget] = [
        w for w in body["widgets"] if w["properties"].get("title") == "Jobs finished, by outcome"
    ]
    lines = widget["properties"]["metrics"]
    assert [line[-1]["label"] for line in lines] == list(metrics.OUTCOMES)
    for line in lines:  # exactly the dimensions the jobs publish: no per-function series
        assert line[:3] == [metrics.NAMESPACE, metrics.JOBS_FINISHED, "stage"]
        assert line[4] == "outcome"
        assert len(line) == 7


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_the_alarm_topic_reaches_the_stage_s_destinations(
    templates: dict[str, Any], settings: dict[str, StageSettings], stage: str
) -> None:
    monitoring: Template = templates[stage]["monitoring"]
    topic_id = next(iter(monitoring.find_resources("AWS::SNS::Topic")))
    subscriptions = [
        s["Properties"] for s in monitoring.find_resources("AWS::SNS::Subscription").values()
    ]
    assert subscriptions, "an alarm nobody receives is not an alarm"
    assert {(s["Protocol"], s["Endpoint"]) for s in subscriptions} == {
        ("email", address) for address in settings[stage].alarms.emails
    }
    assert all(s["TopicArn"] == {"Ref": topic_id} for s in subscriptions)
    for alarm in monitoring.find_resources("AWS::CloudWatch::Alarm").values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]


@pytest.mark.parametrize("stage", DEPLOYED)
def test_every_log_group_is_encrypted_with_the_stage_s_logs_key(
    templates: dict[str, Any], stage: str
) -> None:
    compute: Template = templates[stage]["compute"]
    keys = compute.find_resources("AWS::KMS::Key")
    logs_key = next(k for k, r in keys.items() if "log groups" in r["Properties"]["Description"])
    statement = next(
        s
        for s in keys[logs_key]["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "CloudWatchLogs"
    )
    assert "kms:EncryptionContext:aws:logs:arn" in json.dumps(statement["Condition"])
    groups = compute.find_resources("AWS::Logs::LogGroup")
    assert len(groups) == 8  # six functions, two APIs' access logs
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [logs_key, "Arn"]}


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_api_starts_from_a_snapshot_where_the_stage_says_so(
    templates: dict[str, Any],
    template_json: dict[str, Any],
    settings: dict[str, StageSettings],
    stage: str,
) -> None:
    compute = templates[stage]["compute"]
    api_name = naming.function_name("api", stage)
    functions = _functions(compute)
    assert all("SnapStart" not in f["Properties"] for n, f in functions.items() if n != api_name)
    aliases = compute.find_resources("AWS::Lambda::Alias")
    resources = template_json[stage]["compute"]["Resources"]
    proxies = [
        json.dumps(r["Properties"]["Integration"]["Uri"])
        for r in resources.values()
        if r["Type"] == "AWS::ApiGateway::Method"
        and r["Properties"].get("Integration", {}).get("Type") == "AWS_PROXY"
    ]
    assert proxies
    api = functions[api_name]
    if not settings[stage].api.snapstart:
        assert "SnapStart" not in api["Properties"]
        assert aliases == {}
        return
    assert api["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    ((alias_id, alias),) = aliases.items()
    assert alias["Properties"]["Name"] == "live"
    version = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert resources[version]["Type"] == "AWS::Lambda::Version"
    # API Gateway calls the alias (a published version) on every route, never $LATEST.
    assert all(alias_id in uri for uri in proxies)


def test_snapstart_is_on_where_latency_matters_and_off_where_it_only_costs(
    settings: dict[str, StageSettings],
) -> None:
    assert settings["staging"].api.snapstart
    assert settings["prod"].api.snapstart
    assert not settings["dev"].api.snapstart


@pytest.mark.parametrize("stage", DEPLOYED)
def test_the_render_function_may_touch_nothing_and_only_the_api_and_worker_invoke_it(
    templates: dict[str, Any], stage: str
) -> None:
    template = templates[stage]["compute"]
    render_arn_fn = None
    for logical, resource in template.find_resources("AWS::Lambda::Function").items():
        if resource["Properties"]["FunctionName"] == naming.function_name("render", stage):
            render_arn_fn = logical
    assert render_arn_fn is not None
    invokers: set[str] = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        role = json.dumps(policy["Properties"]["Roles"])
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        actions = {
            a
            for st in statements
            for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
        }
        if "Render" in role:
            # Its own logs and X-Ray only: no data, queue, bucket, secret or other function.
            assert actions <= {
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }, actions
        for st in statements:
            if "lambda:InvokeFunction" in json.dumps(st["Action"]):
                resource = json.dumps(st["Resource"])
                # That function only, named by the scheme (no wildcard, no other function).
                assert resource.count(":function:") == 1
                assert f":function:{naming.function_name('render', stage)}" in resource
                assert "*" not in resource
                invokers.add(role)
    assert len(invokers) == 2
    assert all("Api" in r or "Worker" in r for r in invokers)


def test_the_firewall_accepts_what_the_api_accepts_and_refuses_in_its_error_shape(
    templates: dict[str, Any], settings: dict[str, StageSettings]
) -> None:
    """Staging runs prod's Web ACL, so a difference shows there first; the managed rules
    that would refuse a request the API takes (a body over 8 KB, no User-Agent) count instead
    of blocking; a refusal reads like every other error of the API."""
    from atlas_codex.ground import limits

    urls = [f"https://shop.example/products/desk-lamp-{n:04d}?ref=catalog" for n in range(160)]
    body = json.dumps({"urls": urls, "selectors": {"fields": {"name": {"selector": "h1"}}}})
    assert 8 * 1024 < len(body) < limits.MAX_REQUEST_BODY_BYTES  # what prod used to refuse
    assert settings["staging"].api.waf_enabled
    for stage in ("staging", "prod"):
        compute = templates[stage]["compute"]
        [acl] = compute.find_resources("AWS::WAFv2::WebACL").values()
        common = next(
            r for r in acl["Properties"]["Rules"] if r["Name"] == "AWSManagedRulesCommonRuleSet"
        )
        overrides = {
            o["Name"]: o["ActionToUse"]
            for o in common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"]
        }
        assert overrides == {
            "SizeRestrictions_BODY": {"Count": {}},
            "NoUserAgent_HEADER": {"Count": {}},
        }
        [refused] = [
            r["Properties"]
            for r in compute.find_resources("AWS::ApiGateway::GatewayResponse").values()
            if r["Properties"]["ResponseType"] == "WAF_FILTERED"
        ]
        assert refused["StatusCode"] == "403"
        template = refused["ResponseTemplates"]["application/json"]
        assert (
            '"code": "refused_by_firewall"' in template
            or '"code":"refused_by_firewall"' in template
        )


def test_a_stopped_worker_and_a_silent_health_monitor_each_raise_an_alarm(
    templates: dict[str, Any],
) -> None:
    """The worker-not-running alarm is 1 exactly when messages wait and the worker ran no
    invocation (evaluated here as CloudWatch's metric math would, missing data filled with 0);
    the health heartbeat alarms on a missing run (missing data is breaching)."""
    from stacks.constructs.alarms import WORKER_STOPPED_EXPRESSION

    monitoring = templates["prod"]["monitoring"]
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in monitoring.find_resources("AWS::CloudWatch::Alarm").values()
    }
    stopped = alarms["atlas-codex-worker-not-running-prod"]
    [expression] = [m for m in stopped["Metrics"] if "Expression" in m]
    assert expression["Expression"] == WORKER_STOPPED_EXPRESSION
    assert stopped["ComparisonOperator"] == "GreaterThanThreshold"
    assert stopped["Threshold"] == 0

    def evaluate(waiting: float | None, invocations: float | None) -> float:
        """The expression for one period, as metric math reads it."""
        python = (
            WORKER_STOPPED_EXPRESSION.replace("FILL(waiting, 0)", repr(waiting or 0))
            .replace("FILL(invocations, 0)", repr(invocations or 0))
            .replace(" AND ", " and ")
        )
        condition, yes, no = python.removeprefix("IF(").removesuffix(")").rsplit(", ", 2)
        return float(yes) if eval(condition) else float(no)

    assert evaluate(waiting=12, invocations=None) > 0  # a stopped worker: ALARM
    assert evaluate(waiting=12, invocations=3) == 0  # working through the queue
    assert evaluate(waiting=None, invocations=None) == 0  # idle: nothing waits

    silent = alarms["atlas-codex-health-monitor-silent-prod"]
    assert silent["TreatMissingData"] == "breaching"
    assert silent["ComparisonOperator"] == "LessThanThreshold"
    assert silent["Statistic"] == "SampleCount"
    assert silent["Threshold"] == 1


def test_the_logs_hold_what_the_runbook_tells_a_responder_to_read(
    templates: dict[str, Any],
) -> None:
    """The access log has each request's latency, the integration's status and error and
    the gateway's own error; every function sends its REPORT/INIT_REPORT lines (init,
    restore, duration, memory: the platform's INFO level)."""
    compute = templates["prod"]["compute"]
    [stage] = compute.find_resources("AWS::ApiGateway::Stage").values()
    line = json.loads(stage["Properties"]["AccessLogSetting"]["Format"])
    for field in (
        "responseLatency",
        "integrationLatency",
        "integrationStatus",
        "integrationError",
        "errorType",
        "errorMessage",
        "resourcePath",
        "status",
    ):
        assert field in line, field
    assert line["requestId"] == "$context.requestId"
    functions = compute.find_resources("AWS::Lambda::Function")
    assert functions
    for function in functions.values():
        assert function["Properties"]["LoggingConfig"]["SystemLogLevel"] == "INFO"


def test_the_logs_key_serves_the_stage_s_own_log_groups_only(templates: dict[str, Any]) -> None:
    """CloudWatch Logs may use a stage's log key for that stage's log groups, by name: every
    log group the stage makes is among them, and no wildcard opens it to the account's."""
    for layer, template in templates["prod"].items():
        keys = template.find_resources("AWS::KMS::Key")
        groups = template.find_resources("AWS::Logs::LogGroup")
        if not groups:
            continue
        text = json.dumps(keys)
        assert "log-group:*" not in text, layer
        for group in groups.values():
            name = group["Properties"]["LogGroupName"]
            assert f"log-group:{name}" in text, (layer, name)
