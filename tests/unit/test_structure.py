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
        "atlas_codex.ground.values",
        "atlas_codex.ground.limits",
        "atlas_codex.ground.policy",
        "atlas_codex.ground.presets",
        "atlas_codex.ground.aws_cost",
    }
    contract = [m for m in found.values() if m.name.startswith("atlas_codex.extraction")]
    assert contract

    def allowed(imported: str) -> bool:
        # ``from atlas_codex.ground import limits`` names the package too
        return (
            imported.startswith("atlas_codex.extraction")
            or imported == "atlas_codex.ground"
            or imported in floor
        )

    above = {m.name: sorted(i for i in m.imports if not allowed(i)) for m in contract}
    assert {k: v for k, v in above.items() if v} == {}


def test_no_two_files_import_each_other(found: dict[str, structure.Module]) -> None:
    """At any depth of the code (a lazy or TYPE_CHECKING import counts)."""
    assert structure.cycles(structure.module_graph(found)) == []


def test_every_room_stands_on_a_floor(found: dict[str, structure.Module]) -> None:
    """A new room is placed on a floor when it is added (tools/structure.py, FLOORS)."""
    unplaced = sorted(
        {structure.room(m) for m in found if m != "atlas_codex" and structure.floor_of(m) is None}
    )
    assert unplaced == []


def test_no_room_imports_a_floor_above_it(found: dict[str, structure.Module]) -> None:
    assert structure.upward_imports(found) == []


def test_the_job_side_reaches_the_engine_only_through_the_contract(
    found: dict[str, structure.Module],
) -> None:
    assert structure.contract_bypasses(found) == []


def test_no_two_names_differ_by_one_letter(found: dict[str, structure.Module]) -> None:
    assert structure.near_names(found) == []


def test_the_name_rule_sees_a_near_name() -> None:
    from pathlib import Path

    fake = {
        n: structure.Module(n, Path("x.py"), 1, frozenset())
        for n in ("atlas_codex.tables", "atlas_codex.jobs.table", "atlas_codex.jobs.queue")
    }
    assert structure.near_names(fake) == [("table", "tables")]


def test_the_floor_rule_sees_an_upward_import() -> None:
    from pathlib import Path

    values = structure.Module(
        "atlas_codex.ground.values", Path("v.py"), 1, frozenset({"atlas_codex.jobs.manager"})
    )
    jobs = structure.Module(
        "atlas_codex.jobs.manager", Path("m.py"), 1, frozenset({"atlas_codex.engine.pages.fetch"})
    )
    fake = {m.name: m for m in (values, jobs)}
    assert structure.upward_imports(fake) == [
        "atlas_codex.ground.values -> atlas_codex.jobs.manager"
    ]
    assert structure.contract_bypasses(fake) == [
        "atlas_codex.jobs.manager -> atlas_codex.engine.pages.fetch"
    ]


def test_the_graph_sees_a_cycle_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert structure.cycles(graph) == [["a", "b", "c"]]
