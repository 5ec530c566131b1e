"""cfn-lint with the serverless rules (cfn-lint-serverless) on every stage's templates.

Zero errors; a finding is tolerated only when listed below with why it does not apply.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Final

import pytest

from stacks.stages import StageStacks

pytestmark = pytest.mark.infra

# rule id -> (the CloudFormation type it may concern, why it does not apply)
TOLERATED: Final = {
    "ES1001": (
        "AWS::Lambda::EventSourceMapping",
        "An SQS event source mapping cannot have an on-failure destination; failed messages "
        "reach the queue's dead-letter queue through its redrive policy (alarmed).",
    ),
    "ES6000": (
        "AWS::SQS::Queue",
        "Raised on the dead-letter queues themselves, which must not redrive further.",
    ),
    "ES1007": (
        "AWS::Lambda::Permission",
        "The health function has its EventInvokeConfig; the rule compares FunctionName "
        "literally, and CDK names the function by Ref there and by GetAtt in the permission.",
    ),
    "ES4000": (
        "AWS::Events::Rule",
        "The health schedule's target has no DLQ: a missed run is superseded by the next one "
        "five minutes later (also acknowledged to cdk-nag).",
    ),
    "ES7000": (
        "AWS::SNS::Subscription",
        "The alarm topic's subscriptions (email, HTTPS pager) have no DLQ: an alarm SNS could "
        "not deliver stays in ALARM on the dashboard's alarm row (also acknowledged to cdk-nag).",
    ),
    "W3005": (
        "AWS::Lambda::Function",
        "lambda.Function itself adds its role to DependsOn beside the GetAtt; redundant, "
        "harmless, and not ours to remove without an escape hatch on every function.",
    ),
}


@pytest.fixture(scope="module")
def findings(stage_stacks: dict[str, StageStacks], cloud_assembly: Path) -> list[dict[str, Any]]:
    templates = sorted(str(p) for p in cloud_assembly.glob("atlas-codex-*.template.json"))
    assert len(templates) == 4 * len(stage_stacks)
    run = subprocess.run(
        [
            str(Path(sys.executable).with_name("cfn-lint")),
            "--append-rules",
            "cfn_lint_serverless.rules",
            "--format",
            "json",
            "--",
            *templates,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert run.returncode in (0, 2, 4, 6), run.stderr  # 2 errors, 4 warnings, 6 both
    found: list[dict[str, Any]] = json.loads(run.stdout or "[]")
    for match in found:
        template = json.loads(Path(match["Filename"]).read_text())
        path = match["Location"]["Path"]
        resource = template["Resources"].get(path[1], {}) if len(path) > 1 else {}
        match["ResourceType"] = resource.get("Type")
    return found


def test_cfn_lint_finds_no_error_and_no_unexplained_warning(
    findings: list[dict[str, Any]],
) -> None:
    unexplained = [
        f"{m['Rule']['Id']} {m['Filename'].rsplit('/', 1)[-1]} {m['Message']}"
        for m in findings
        if m["Rule"]["Id"] not in TOLERATED or TOLERATED[m["Rule"]["Id"]][0] != m["ResourceType"]
    ]
    assert unexplained == []


def test_the_serverless_rules_are_loaded(findings: list[dict[str, Any]]) -> None:
    # The serverless pack is what raises ES* findings; without it they would silently vanish.
    assert {m["Rule"]["Id"] for m in findings} >= {"ES1001", "ES6000"}
