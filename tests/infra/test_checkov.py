"""checkov over every stage's synthesized templates: zero findings that are not accepted on
the resource, with a reason (stacks/checkov.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from stacks.checkov import ACCEPTED
from stacks.stages import StageStacks

pytestmark = pytest.mark.infra

CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def report(stage_stacks: dict[str, StageStacks], cloud_assembly: Path) -> list[dict[str, Any]]:
    assert CHECKOV.exists(), "checkov is installed by `make setup` into .venv-checkov"
    run = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(cloud_assembly),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.stdout.strip(), run.stderr[-2000:]
    data = json.loads(run.stdout)
    return data if isinstance(data, list) else [data]


def test_checkov_finds_nothing_that_is_not_accepted_with_a_reason(
    report: list[dict[str, Any]],
) -> None:
    failed = [
        f"{f['check_id']} {f['resource']} in {Path(f['file_path']).name}: {f['check_name']}"
        for r in report
        for f in r["results"]["failed_checks"]
    ]
    assert failed == []
    passed = sum(r["summary"]["passed"] for r in report)
    assert passed > 100, "checkov checked the templates"


def test_every_accepted_check_is_used_and_has_its_reason_on_the_resource(
    report: list[dict[str, Any]],
) -> None:
    skipped = {
        (s["check_id"], s["resource"].split(".")[0])
        for r in report
        for s in r["results"]["skipped_checks"]
    }
    for kind, accepted in ACCEPTED.items():
        for a in accepted:
            assert (a.check, kind) in skipped, f"{a.check} on {kind} is accepted but never skipped"
            assert len(a.reason.split()) >= 8
    comments = {
        s["check_result"]["suppress_comment"]
        for r in report
        for s in r["results"]["skipped_checks"]
    }
    assert comments <= {a.reason for accepted in ACCEPTED.values() for a in accepted}


def _skips(resource: dict[str, Any]) -> dict[str, str]:
    found = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    return {s["id"]: s["comment"] for s in found}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_each_reason_says_what_the_resource_is(
    resources: dict[str, dict[str, dict[str, Any]]], stage: str
) -> None:
    """A reason is read by a reviewer as a fact about the resource it is written on."""
    checked = 0
    for resource in resources[stage].values():
        skips, props = _skips(resource), resource.get("Properties", {})
        if resource["Type"] == "AWS::S3::Bucket":
            versioned = props.get("VersioningConfiguration", {}).get("Status") == "Enabled"
            assert ("CKV_AWS_21" in skips) is not versioned
            checked += 1
        if resource["Type"] == "AWS::DynamoDB::Table" and "CKV_AWS_119" in skips:
            assert props["SSESpecification"] == {"SSEEnabled": True}  # the AWS managed key
            assert "AWS managed key" in skips["CKV_AWS_119"]
            checked += 1
        if resource["Type"] == "AWS::ApiGateway::Method" and "CKV_AWS_59" in skips:
            preflight = props["HttpMethod"] == "OPTIONS"
            assert ("preflight" in skips["CKV_AWS_59"]) is preflight
            if preflight:
                assert props["Integration"]["Type"] == "MOCK"
            checked += 1
    assert checked > 5
