"""The rooms of the code and the floors they stand on (docs/ARCHITECTURE.md): the extraction
contract at the bottom, the engine and the model layer over it, the job lifecycle over them.
A change that makes two rooms import each other, or the engine import the job record,
fails here rather than in review."""

from __future__ import annotations

import pytest

from tools import structure


@pytest.fixture(scope="module")
def found() -> dict[str, structure.Module]:
    return structure.modules()


def test_no_two_rooms_import_each_other(found: dict[str, structure.Module]) -> None:
    assert structure.cycles(structure.room_graph(found)) == []


def test_the_engine_and_the_model_layer_never_import_the_job_lifecycle(
    found: dict[str, structure.Module],
) -> None:
    below = (
        "atlas_codex.extraction",
        "atlas_codex.engine",
        "atlas_codex.llm",
        "atlas_codex.render",
    )
    offending = {
        m.name: sorted(i for i in m.imports if i.startswith("atlas_codex.jobs"))
        for m in found.values()
        if m.name.startswith(below)
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_contract_stands_on_the_bottom_floor_only(found: dict[str, structure.Module]) -> None:
    """The contract imports the shared values and settings, never a room above it."""
    floor = {
        "atlas_codex.extraction",
        "atlas_codex.values",
        "atlas_codex.limits",
        "atlas_codex.policy",
        "atlas_codex.presets",
        "atlas_codex.aws_cost",
    }
    contract = [m for m in found.values() if m.name.startswith("atlas_codex.extraction")]
    assert contract
    above = {m.name: sorted(structure.room(i) for i in m.imports) for m in contract}
    assert {k: [r for r in v if r not in floor] for k, v in above.items()} == {k: [] for k in above}


def test_the_graph_sees_a_cycle_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert structure.cycles(graph) == [["a", "b", "c"]]
