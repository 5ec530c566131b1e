"""The engine's result types and the record types they are kept as (jobs/recorded.py,
TWINS) have the same fields with the same types: a field added to one and not the other
fails here, not in a stored record missing it."""

from __future__ import annotations

import types
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from atlas_codex.extraction import result
from atlas_codex.jobs import record, recorded


def _shape(annotation: Any) -> Any:
    """An annotation without its limits (Annotated metadata) or the twin names inside it."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _shape(typing.get_args(annotation)[0])
    if origin is None:
        for engine, record in recorded.TWINS:
            if annotation is record:
                return engine
        return annotation
    if origin in (typing.Union, types.UnionType):  # X | Y written either way
        return ("union", frozenset(_shape(a) for a in typing.get_args(annotation)))
    return (origin, tuple(_shape(a) for a in typing.get_args(annotation)))


@pytest.mark.parametrize(
    ("engine", "record"), recorded.TWINS, ids=lambda t: getattr(t, "__name__", str(t))
)
def test_twins_have_the_same_fields_and_types(
    engine: type[BaseModel], record: type[BaseModel]
) -> None:
    assert list(engine.model_fields) == list(record.model_fields)
    for name, field in engine.model_fields.items():
        twin = record.model_fields[name]
        assert _shape(field.annotation) == _shape(twin.annotation), name


def test_a_quality_is_the_same_words_on_both_sides() -> None:
    assert typing.get_args(result.Quality) == typing.get_args(record.Quality)


def test_the_check_sees_a_field_one_twin_lacks() -> None:
    class Wider(result.Failure):
        hint: str = ""

    assert list(Wider.model_fields) != list(record.JobError.model_fields)
