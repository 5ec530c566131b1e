"""The volume each stage is sized for holds on what the templates deploy: the throttles,
reservations and event source caps read from the synthesized stage are the settings the
capacity model (bench/capacity.py, docs/CAPACITY.md) computes with, and at the stage's
``design_jobs_per_day`` no limit on the request path breaks."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from atlas_codex.ground.aws_cost import use_profile
from atlas_codex_stage.settings import (
    DEFAULTS_KEY,
    STAGES_KEY,
    StageSettings,
    load_stage_settings,
)
from bench.capacity import CAPACITY_DOC, STAGE, document, first_limit, loads

pytestmark = pytest.mark.infra

STAGES = ("dev", "staging", "prod")


def _settings(context: dict[str, Any], stage: str) -> StageSettings:
    return load_stage_settings(stage, context[DEFAULTS_KEY], context[STAGES_KEY])


def _one(template: Template, kind: str) -> dict[str, Any]:
    found = list(template.find_resources(kind).values())
    assert len(found) == 1, kind
    props: dict[str, Any] = found[0]["Properties"]
    return props


def _function(template: Template, name: str) -> dict[str, Any]:
    for resource in template.find_resources("AWS::Lambda::Function").values():
        if resource["Properties"]["FunctionName"].startswith(f"atlas-codex-{name}-"):
            props: dict[str, Any] = resource["Properties"]
            return props
    raise AssertionError(f"no {name} function")


def deployed(settings: StageSettings, compute: Template) -> StageSettings:
    """The stage settings as the template deploys them: every figure the capacity model
    reads about API Gateway and Lambda is taken from the synthesized resources."""
    (method,) = _one(compute, "AWS::ApiGateway::Stage")["MethodSettings"]
    assert (method["HttpMethod"], method["ResourcePath"]) == ("*", "/*")  # each method
    websocket = _one(compute, "AWS::ApiGatewayV2::Stage")["DefaultRouteSettings"]
    assert websocket["ThrottlingRateLimit"] == method["ThrottlingRateLimit"]
    plan = _one(compute, "AWS::ApiGateway::UsagePlan")
    worker = _function(compute, "worker")
    api = _function(compute, "api")
    mappings = compute.find_resources("AWS::Lambda::EventSourceMapping")
    (worker_mapping,) = [
        m["Properties"] for m in mappings.values() if "-queue-" in m["Properties"]["EventSourceArn"]
    ]
    cap = worker_mapping.get("ScalingConfig", {}).get("MaximumConcurrency")
    assert cap == worker.get("ReservedConcurrentExecutions")  # the source cannot outrun it
    functions = settings.functions.model_copy(
        update={
            "api": settings.functions.api.model_copy(
                update={
                    "reserved_concurrency": api.get("ReservedConcurrentExecutions"),
                    "memory_mb": api["MemorySize"],
                }
            ),
            "worker": settings.functions.worker.model_copy(
                update={"reserved_concurrency": cap, "memory_mb": worker["MemorySize"]}
            ),
        }
    )
    return settings.model_copy(
        update={
            "functions": functions,
            "api": settings.api.model_copy(
                update={
                    "stage_rate_limit_rps": float(method["ThrottlingRateLimit"]),
                    "stage_burst_limit": method["ThrottlingBurstLimit"],
                    "rate_limit_rps": float(plan["Throttle"]["RateLimit"]),
                    "burst_limit": plan["Throttle"]["BurstLimit"],
                    "quota_per_day": plan["Quota"]["Limit"],
                }
            ),
        }
    )


@pytest.mark.parametrize("stage", STAGES)
def test_the_deployed_stage_carries_its_design_volume(
    stage: str, cdk_context: dict[str, Any], templates: dict[str, dict[str, Template]]
) -> None:
    settings = _settings(cdk_context, stage)
    live = deployed(settings, templates[stage]["compute"])
    assert live == settings  # what docs/CAPACITY.md computes with is what deploys
    for model_calls in (0.0, 1.0):
        broken = [
            f"{x.limit}: {x.load:,.0f} {x.unit} against {x.capacity:,.0f}"
            for x in loads(use_profile(), live, settings.design_jobs_per_day, model_calls)
            if not x.plan and x.headroom < 1
        ]
        assert not broken, (stage, settings.design_jobs_per_day, model_calls, broken)


def test_a_stage_throttle_under_the_design_volume_is_named_as_its_first_limit(
    cdk_context: dict[str, Any],
) -> None:
    """The stage's throttle applies to every client together: set under what the design
    volume sends, it is the limit the model names first (it was not counted at all)."""
    settings = _settings(cdk_context, "prod")
    peak_rps = settings.design_jobs_per_day / 86_400 * 5 * 2  # submission and read per job
    throttled = settings.model_copy(
        update={"api": settings.api.model_copy(update={"stage_rate_limit_rps": peak_rps / 2})}
    )
    first = first_limit(use_profile(), throttled, settings.design_jobs_per_day, 0.0)
    assert first.limit.startswith("API Gateway REST stage throttle")
    assert first.headroom < 1


def test_the_capacity_document_is_computed_from_the_settings_that_deploy(
    cdk_context: dict[str, Any],
) -> None:
    text = document(use_profile(), _settings(cdk_context, STAGE))
    assert CAPACITY_DOC.read_text() == text, "docs/CAPACITY.md is stale: run make bench"
