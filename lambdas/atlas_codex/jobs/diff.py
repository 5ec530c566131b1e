"""The field-by-field difference between two results (a re-extraction against its source)."""

from __future__ import annotations

from typing import Any, Final

from atlas_codex.ground.values import leaves
from atlas_codex.jobs.record import FieldChange

MAX_CHANGES: Final = 1000
"""More changes than this are summarised by their count (the rest of the result says it)."""


def field_diff(before: Any, after: Any) -> list[FieldChange]:
    """Changes from ``before`` to ``after`` by leaf path, in ``after``'s order then removals."""
    old = {path or "$": value for path, value in leaves(before)}
    new = {path or "$": value for path, value in leaves(after)}
    changes: list[FieldChange] = []
    for path, value in new.items():
        if path not in old:
            changes.append(FieldChange(path=path, change="added", after=value))
        elif _differs(old[path], value):
            changes.append(FieldChange(path=path, change="changed", before=old[path], after=value))
    for path, value in old.items():
        if path not in new:
            changes.append(FieldChange(path=path, change="removed", before=value))
    return changes[:MAX_CHANGES]


def _differs(a: Any, b: Any) -> bool:
    """12 and 12.0 are the same number (stores drop the ``.0``); True is not 1."""
    return a != b or isinstance(a, bool) != isinstance(b, bool)
