"""Change review: the checked-in snapshots match, and the diff refuses to lose state."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest

from stacks import review
from stacks.functions import FUNCTION_SPECS

pytestmark = pytest.mark.infra

STAGES = ("local", "dev", "staging", "prod")


@pytest.mark.parametrize("stage", STAGES)
def test_the_synthesized_templates_match_the_reviewed_snapshot(
    template_json: dict[str, dict[str, Any]], stage: str
) -> None:
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        review.write_snapshot(stage, template_json[stage])
    snapshot = review.load_snapshot(stage)
    diffs, _ = review.review(
        {stage: template_json[stage]}, lambda _stage, layer: snapshot.get(layer)
    )
    changed = review.render([d for d in diffs if d.changes])
    assert not changed, (
        f"the {stage} templates changed; review the changes below, then run "
        f"`make snapshots` and commit tests/infra/snapshots/{stage}.json:\n{changed}"
    )


def test_snapshots_mask_asset_hashes_and_accounts() -> None:
    text = review.snapshot_path("prod").read_text()
    assert "<asset-hash>" in text
    assert "<account>" in text
    assert "333333333333" not in text


@pytest.fixture
def dev(template_json: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(template_json["dev"])


def _resource(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = template["Resources"][logical_id]
    return resource


def test_a_changed_table_key_is_a_replacement_and_is_refused(dev: dict[str, Any]) -> None:
    before = copy.deepcopy(dev)
    _resource(dev["data"], "JobsTable")["Properties"]["KeySchema"][0]["AttributeName"] = "id"
    diffs, refusals = review.review({"dev": dev}, lambda _s, layer: before[layer])
    data = next(d for d in diffs if d.layer == "data")
    assert [(c.logical_id, c.change) for c in data.changes] == [("JobsTable", "replaced")]
    assert refusals == [
        "atlas-codex-data-dev: JobsTable (AWS::DynamoDB::Table) would be replaced by a change "
        "of KeySchema"
    ]


def test_a_renamed_logical_id_deletes_the_bucket_and_is_refused(dev: dict[str, Any]) -> None:
    before = copy.deepcopy(dev)
    dev["data"]["Resources"]["Artifacts"] = dev["data"]["Resources"].pop("ArtifactsBucket")
    diffs, refusals = review.review({"dev": dev}, lambda _s, layer: before[layer])
    data = next(d for d in diffs if d.layer == "data")
    assert {(c.logical_id, c.change) for c in data.changes} >= {
        ("Artifacts", "added"),
        ("ArtifactsBucket", "removed"),
    }
    assert any("ArtifactsBucket (AWS::S3::Bucket) would be removed" in r for r in refusals)


def test_stateless_changes_are_listed_but_not_refused(dev: dict[str, Any]) -> None:
    before = copy.deepcopy(dev)
    for resource in dev["compute"]["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function":
            resource["Properties"]["MemorySize"] = 3008
            resource["Properties"]["FunctionName"] += "-x"
    diffs, refusals = review.review({"dev": dev}, lambda _s, layer: before[layer])
    compute = next(d for d in diffs if d.layer == "compute")
    assert {c.change for c in compute.changes} == {"replaced"}
    assert refusals == []
    rendered = review.render(diffs)
    assert f"atlas-codex-compute-dev: {len(FUNCTION_SPECS)} replaced" in rendered
    assert "! replaced  AWS::Lambda::Function" in rendered


def test_a_queue_replacement_is_allowed_only_when_it_is_known_to_be_empty(
    dev: dict[str, Any],
) -> None:
    before = copy.deepcopy(dev)
    for resource in dev["messaging"]["Resources"].values():
        if resource["Properties"].get("QueueName") == "atlas-codex-queue-dev":
            resource["Properties"]["FifoQueue"] = True
    _, unknown = review.review({"dev": dev}, lambda _s, layer: before[layer])
    _, empty = review.review({"dev": dev}, lambda _s, layer: before[layer], lambda _q: 0)
    _, busy = review.review({"dev": dev}, lambda _s, layer: before[layer], lambda _q: 12)
    assert len(unknown) == 1
    assert "AWS::SQS::Queue" in unknown[0]
    assert empty == []
    assert busy == unknown


def _indexes(template: dict[str, Any]) -> list[dict[str, Any]]:
    indexes: list[dict[str, Any]] = _resource(template["data"], "JobsTable")["Properties"][
        "GlobalSecondaryIndexes"
    ]
    return indexes


def test_a_renamed_index_with_a_new_projection_is_refused(dev: dict[str, Any]) -> None:
    """Two index operations in one update (a delete and a create) and a projection changed:
    CloudFormation would reject the first, and the running code would query a deleted index."""
    before = copy.deepcopy(dev)
    index = _indexes(dev)[-1]
    old_name = index["IndexName"]
    index["IndexName"] = f"{old_name}-v2"
    index["Projection"] = {"ProjectionType": "ALL"}

    _, refusals = review.review({"dev": dev}, lambda _s, layer: before[layer])

    assert any("1 index(es) created" in r and "1 deleted" in r for r in refusals), refusals
    assert any(
        f"index {old_name} is removed while the code still queries it" in r for r in refusals
    )


def test_an_index_projection_changed_in_place_is_refused(dev: dict[str, Any]) -> None:
    before = copy.deepcopy(dev)
    _indexes(dev)[0]["Projection"] = {"ProjectionType": "KEYS_ONLY"}

    _, refusals = review.review({"dev": dev}, lambda _s, layer: before[layer])

    assert len(refusals) == 1
    assert "Projection cannot change in place" in refusals[0]


def test_one_new_index_passes(dev: dict[str, Any]) -> None:
    before = copy.deepcopy(dev)
    extra = copy.deepcopy(_indexes(dev)[0])
    extra["IndexName"] = "by-something-new"
    _indexes(dev).append(extra)

    _, refusals = review.review({"dev": dev}, lambda _s, layer: before[layer])

    assert refusals == []
