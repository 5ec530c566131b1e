"""`make diff AGAINST=deployed`: the review reads the deployed templates from CloudFormation
(here the moto server's) and lets a queue be replaced only when it is empty."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from stacks import review

STAGE_CONTEXT = "dev"


def _messaging_template(cdk_context: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    import aws_cdk as cdk

    from stacks.stages import build_app

    context = {**cdk_context, "stage": STAGE_CONTEXT, "aws:cdk:bundling-stacks": []}
    app = cdk.App(context=context, outdir=str(tmp_path / "synth"))
    built = build_app(app)
    app.synth()
    template: dict[str, Any] = json.loads(
        (tmp_path / "synth" / f"{built['dev'].messaging.stack_name}.template.json").read_text()
    )
    return template


@pytest.fixture
def deployed(moto_endpoint: str, cdk_context: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The dev messaging stack, deployed into the emulator's CloudFormation."""
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    template = _messaging_template(cdk_context, tmp_path)
    boto3.client("ssm", endpoint_url=moto_endpoint).put_parameter(
        Name="/cdk-bootstrap/hnb659fds/version", Value="30", Type="String"
    )
    cloudformation = boto3.client("cloudformation", endpoint_url=moto_endpoint)
    cloudformation.create_stack(
        StackName="atlas-codex-messaging-dev", TemplateBody=json.dumps(template)
    )
    return template


def _assembly(tmp_path: Path, template: dict[str, Any]) -> Path:
    out = tmp_path / "assembly"
    out.mkdir(exist_ok=True)
    (out / "atlas-codex-messaging-dev.template.json").write_text(json.dumps(template))
    return out


def _make_jobs_queue_fifo(template: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(template))
    for resource in changed["Resources"].values():
        if resource["Properties"].get("QueueName") == "atlas-codex-queue-dev":
            resource["Properties"]["FifoQueue"] = True
    return changed


def test_an_unchanged_stack_shows_no_changes(
    deployed: dict[str, Any], moto_endpoint: str, tmp_path: Path, capsys: Any
) -> None:
    code = review.main(
        [
            "diff",
            str(_assembly(tmp_path, deployed)),
            "--against",
            "deployed",
            "--endpoint-url",
            moto_endpoint,
        ]
    )
    assert code == 0
    assert "atlas-codex-messaging-dev: no changes" in capsys.readouterr().out


def test_replacing_a_queue_that_holds_messages_is_refused_and_an_empty_one_is_not(
    deployed: dict[str, Any], moto_endpoint: str, tmp_path: Path, capsys: Any
) -> None:
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint)
    url = sqs.get_queue_url(QueueName="atlas-codex-queue-dev")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"job_id": "j-1"}')
    args = [
        "diff",
        str(_assembly(tmp_path, _make_jobs_queue_fifo(deployed))),
        "--against",
        "deployed",
        "--endpoint-url",
        moto_endpoint,
    ]

    assert review.main(args) == 1
    captured = capsys.readouterr()
    assert "! replaced  AWS::SQS::Queue" in captured.out
    assert "REFUSED: atlas-codex-messaging-dev:" in captured.err
    assert "would be replaced by a change of FifoQueue" in captured.err

    sqs.purge_queue(QueueUrl=url)
    assert review.main(args) == 0
