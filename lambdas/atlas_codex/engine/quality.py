"""The quality gate: what keeps an empty or broken extraction from being called a success.

A page's extraction has problems when its output is empty, holds nothing but nulls, does not
match the job's JSON schema (a required field not found, a value of the wrong type), or was
made from content cut to fit a model's window. The engine escalates a model extraction with
problems to a stronger tier; what still has problems makes the job ``partial``, and a job whose
every page came out empty fails with ``empty_extraction``.

Also here: the leaves of a JSON value by path (``a.b``, ``items[0].name``), which the evidence
and the re-extraction diff walk too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from atlas_codex.ground.schema_check import violation
from atlas_codex.ground.values import leaves

EMPTY: Final = "empty output"
ALL_NULL: Final = "every field is null"
TRUNCATED: Final = "made from content truncated to fit the model's window"
MISSING_REQUIRED: Final = "required field not found"
VACANT_PROBLEMS: Final = frozenset({EMPTY, ALL_NULL})
"""Problems that leave nothing worth returning."""


def _vacant(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def problems(
    data: Any,
    schema: Mapping[str, Any] | None,
    *,
    missing_required: list[str] | None = None,
    truncated: bool = False,
) -> list[str]:
    """Why ``data`` is not a full success (empty when it is)."""
    found: list[str] = []
    if _vacant(data):
        found.append(EMPTY)
    elif all(_vacant(v) for _, v in leaves(data)):
        found.append(ALL_NULL)
    elif schema is not None:
        wrong = violation(dict(schema), data)
        if wrong:
            found.append(f"does not match the schema: {wrong}")
        for name in missing_required or []:
            found.append(f"{MISSING_REQUIRED}: {name}")
    if truncated:
        found.append(TRUNCATED)
    return found


def gave_nothing(page_problems: list[str]) -> bool:
    """The page gave nothing worth returning."""
    return any(p in VACANT_PROBLEMS for p in page_problems)


def misses_fields(page_problems: list[str]) -> bool:
    """The answer lacks what the job asks for (a required field, or everything): text that
    held more of the page might give it."""
    return gave_nothing(page_problems) or any(p.startswith(MISSING_REQUIRED) for p in page_problems)
