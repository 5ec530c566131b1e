from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from stacks.guards import merge
from stacks.stages import StageStacks, build_app

ALL_STAGES = ("local", "dev", "staging", "prod")
LAYERS = ("data", "messaging", "compute", "monitoring")


@pytest.fixture(scope="session")
def cloud_assembly(cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cdk.out")


@pytest.fixture(scope="session")
def stage_stacks(cdk_context: dict[str, Any], cloud_assembly: Path) -> dict[str, StageStacks]:
    """Every stage (local included) synthesized once, without bundling assets, with cdk-nag's
    report written as JSON (synthesis fails on any unacknowledged finding)."""
    context = {
        **cdk_context,
        "stage": ",".join(ALL_STAGES),
        "aws:cdk:bundling-stacks": [],
        "@aws-cdk/core:validationReportJson": True,
    }
    app = cdk.App(context=context, outdir=str(cloud_assembly))
    built = build_app(app)
    app.synth()
    return built


@pytest.fixture(scope="session")
def validation_report(stage_stacks: dict[str, StageStacks], cloud_assembly: Path) -> Any:
    return json.loads((cloud_assembly / "validation-report.json").read_text())


@pytest.fixture(scope="session")
def templates(stage_stacks: dict[str, StageStacks]) -> dict[str, dict[str, Template]]:
    """``templates[stage][layer]`` for every stage and stack layer."""
    return {
        stage: {layer: Template.from_stack(getattr(s, layer)) for layer in LAYERS}
        for stage, s in stage_stacks.items()
    }


@pytest.fixture(scope="session")
def template_json(templates: dict[str, dict[str, Template]]) -> dict[str, dict[str, Any]]:
    """``template_json[stage][layer]``: the synthesized JSON."""
    return {
        stage: {layer: t.to_json() for layer, t in by_layer.items()}
        for stage, by_layer in templates.items()
    }


@pytest.fixture(scope="session")
def resources(template_json: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``resources[stage][logical_id]`` over all stacks of a stage."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for stage, by_layer in template_json.items():
        out[stage] = {}
        for template in by_layer.values():
            out[stage].update(template["Resources"])
    return out


@pytest.fixture(scope="session")
def stage_resources(template_json: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``stage_resources[stage]["layer/logical_id"]``: what the guards check."""
    return {stage: merge(by_layer) for stage, by_layer in template_json.items()}
