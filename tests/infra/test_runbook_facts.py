"""What docs/RUNBOOK.md tells a responder about retries, the DLQ and throttling is what the
templates deploy: each statement here is read from the runbook and checked on the stage."""

from __future__ import annotations

import re
from typing import Any

import pytest

from atlas_codex.ground import limits
from atlas_codex_stage.settings import (
    DEFAULTS_KEY,
    STAGES_KEY,
    StageSettings,
    load_stage_settings,
)
from stacks.guards import RUNBOOK_PATH

pytestmark = pytest.mark.infra

RUNBOOK = RUNBOOK_PATH.read_text()


@pytest.fixture(scope="module")
def settings(cdk_context: dict[str, Any]) -> dict[str, StageSettings]:
    return {
        stage: load_stage_settings(stage, cdk_context[DEFAULTS_KEY], cdk_context[STAGES_KEY])
        for stage in ("dev", "prod")
    }


def _mapping(templates: dict[str, Any], stage: str, function: str) -> dict[str, Any]:
    compute = templates[stage]["compute"]
    functions = compute.find_resources("AWS::Lambda::Function")
    logical = next(
        k
        for k, r in functions.items()
        if r["Properties"]["FunctionName"] == f"atlas-codex-{function}-{stage}"
    )
    for mapping in compute.find_resources("AWS::Lambda::EventSourceMapping").values():
        if mapping["Properties"]["FunctionName"] == {"Ref": logical}:
            props: dict[str, Any] = mapping["Properties"]
            return props
    raise AssertionError(f"{function} has no event source")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_worker_takes_the_batch_the_runbook_says_and_runs_it_side_by_side(
    templates: dict[str, Any], stage: str
) -> None:
    size = limits.JOBS_PER_INVOCATION
    assert (
        f"The worker takes up to {size}\nmessages per invocation and runs them side by side"
        in RUNBOOK
    )
    assert _mapping(templates, stage, "worker")["BatchSize"] == size


def test_a_consumer_event_source_is_capped_at_its_reserved_concurrency(
    templates: dict[str, Any], settings: dict[str, StageSettings]
) -> None:
    assert "capped at their reserved concurrency" in RUNBOOK
    reserved = settings["prod"].functions.worker.reserved_concurrency
    assert reserved is not None
    scaling = _mapping(templates, "prod", "worker")["ScalingConfig"]
    assert scaling == {"MaximumConcurrency": reserved}


def test_the_backlog_threshold_the_runbook_states_is_the_one_deployed(
    templates: dict[str, Any], settings: dict[str, StageSettings]
) -> None:
    stated = re.search(r"\(([\d,]+) s with the default settings\)", RUNBOOK)
    assert stated is not None
    alarms = templates["dev"]["monitoring"].find_resources("AWS::CloudWatch::Alarm").values()
    age = next(
        a["Properties"]
        for a in alarms
        if a["Properties"]["AlarmName"].endswith("queue-oldest-message-dev")
    )
    assert age["Threshold"] == int(stated.group(1).replace(",", ""))
    assert age["Threshold"] == settings["dev"].jobs_backlog_after_s


def test_a_job_reaches_the_dlq_after_the_receives_the_worker_counts(
    templates: dict[str, Any], settings: dict[str, StageSettings]
) -> None:
    """The runbook: a job whose message is in the DLQ is failed. The worker fails a job on its
    last receive (max_receives from the environment), which must be the queue's own; the
    health sweep fails the rest (``dead_lettered``)."""
    assert "is `failed` with the reason: the worker marks it on the" in RUNBOOK
    assert "`dead_lettered`" in RUNBOOK
    messaging = templates["dev"]["messaging"]
    queue = next(
        q["Properties"]
        for q in messaging.find_resources("AWS::SQS::Queue").values()
        if q["Properties"]["QueueName"] == "atlas-codex-queue-dev"
    )
    worker = next(
        f["Properties"]
        for f in templates["dev"]["compute"].find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["FunctionName"] == "atlas-codex-worker-dev"
    )
    env = worker["Environment"]["Variables"]
    assert int(env["ATLAS_JOBS_MAX_RECEIVES"]) == queue["RedrivePolicy"]["maxReceiveCount"]
    assert int(env["ATLAS_JOBS_VISIBILITY_TIMEOUT_S"]) == queue["VisibilityTimeout"]
