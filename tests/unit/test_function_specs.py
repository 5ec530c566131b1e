from __future__ import annotations

from pathlib import Path

from atlas_codex.ground import naming
from stacks.functions import FUNCTION_SPECS

HANDLERS = Path(__file__).resolve().parents[2] / "lambdas" / "atlas_codex" / "handlers"


def test_every_handler_module_is_deployed_as_a_function_and_nothing_else_is() -> None:
    modules = {p.stem for p in HANDLERS.glob("*.py") if p.stem != "__init__"}
    assert {spec.name for spec in FUNCTION_SPECS} == modules
    assert all(spec.name in naming.FUNCTIONS for spec in FUNCTION_SPECS)
