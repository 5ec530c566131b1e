"""cdk-nag 3 (AwsSolutions and Serverless packs) as policy-validation plugins on every stage."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs

from stacks import nag

pytestmark = pytest.mark.infra


def test_no_stage_has_an_unacknowledged_finding(validation_report: Any) -> None:
    reports = {r["pluginName"]: r for r in validation_report["pluginReports"]}
    assert set(reports) == set(nag.PACKS)
    for name, report in reports.items():
        assert report["conclusion"] == "success", (name, report["violations"][:3])
        assert report["violations"] == []


def test_every_acknowledgment_names_its_exact_finding_and_gives_a_reason(
    validation_report: Any,
) -> None:
    acknowledged = [
        (violation, construct)
        for report in validation_report["pluginReports"]
        for violation in report.get("suppressedViolations", [])
        for construct in violation.get("violatingConstructs", [violation])
    ]
    assert acknowledged, "the report lists acknowledged findings"
    for violation, _ in acknowledged:
        rule = violation["ruleName"]
        pack = rule.split("-", 1)[0]
        assert pack in nag.PACKS
        assert violation["acknowledgedId"] == f"{pack}::{rule}", violation
        assert len(violation["reason"].split()) >= 8, violation


def test_an_unacknowledged_finding_fails_synthesis(tmp_path: Any) -> None:
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Probe")
    sqs.Queue(stack, "NoDlq")  # no DLQ, no TLS enforcement
    nag.add_checks(app)
    with pytest.raises(RuntimeError, match="AwsSolutions::AwsSolutions-SQS3"):
        app.synth()


def test_a_vague_acknowledgment_is_refused() -> None:
    app = cdk.App()
    with pytest.raises(ValueError, match="give the reviewer a reason"):
        nag.acknowledge(app, "AwsSolutions", "S1", "not needed")


def test_finding_ids_carry_the_pack_prefix() -> None:
    assert (
        nag.finding_id("AwsSolutions", "IAM5", "Resource::*")
        == "AwsSolutions::AwsSolutions-IAM5[Resource::*]"
    )
    assert nag.finding_id("Serverless", "LambdaDLQ") == "Serverless::Serverless-LambdaDLQ"
