from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.stages import StageStacks, build_app

ALL_STAGES = ("local", "dev", "staging", "prod")


@pytest.fixture(scope="session")
def stage_stacks(
    cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, StageStacks]:
    """Every stage (local included) synthesized once, without bundling assets."""
    context = {**cdk_context, "stage": ",".join(ALL_STAGES), "aws:cdk:bundling-stacks": []}
    app = cdk.App(context=context, outdir=str(tmp_path_factory.mktemp("cdk.out")))
    return build_app(app)


@pytest.fixture(scope="session")
def templates(stage_stacks: dict[str, StageStacks]) -> dict[str, dict[str, Template]]:
    """``templates[stage][layer]`` for every stage and stack layer."""
    return {
        stage: {"data": Template.from_stack(s.data), "messaging": Template.from_stack(s.messaging)}
        for stage, s in stage_stacks.items()
    }


@pytest.fixture(scope="session")
def resources(templates: dict[str, dict[str, Template]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``resources[stage][logical_id]`` over all stacks of a stage."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for stage, by_layer in templates.items():
        out[stage] = {}
        for template in by_layer.values():
            out[stage].update(template.to_json()["Resources"])
    return out
