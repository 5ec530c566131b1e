"""The json_schema check agrees with the JSON Schema 2020-12 meta-schema: every keyword of
its vocabularies, given a value of each JSON kind, is refused exactly when the meta-schema
refuses it (the plain-words check for common mistakes never refuses more)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema_specifications import REGISTRY

from atlas_codex.extraction.request import meta_schema_problem, schema_keyword_problem

KEYWORDS = sorted(
    {
        keyword
        for uri, resource in REGISTRY.items()
        if "2020-12" in uri and isinstance(resource.contents, dict)
        for keyword in resource.contents.get("properties", {})
    }
)
VALUES: list[Any] = [1, -1, 1.5, "x", None, True, [], ["a"], [1], {}, {"a": 1}, {"type": "x"}]


def refused_by_the_meta_schema(schema: dict[str, Any]) -> bool:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError:
        return True
    return False


def test_the_vocabularies_are_all_there() -> None:
    assert len(KEYWORDS) > 50
    assert {"prefixItems", "dependentRequired", "$comment", "unevaluatedProperties"} <= set(
        KEYWORDS
    )


@pytest.mark.parametrize("keyword", KEYWORDS)
def test_a_keyword_is_refused_exactly_when_the_meta_schema_refuses_it(keyword: str) -> None:
    for value in VALUES:
        top: dict[str, Any] = {"type": "object", keyword: value}
        deep: dict[str, Any] = {"type": "object", "properties": {"deep": {keyword: value}}}
        for schema in (top, deep):
            ours = schema_keyword_problem(schema) or meta_schema_problem(schema)
            assert (ours is not None) == refused_by_the_meta_schema(schema), (schema, ours)
        found = schema_keyword_problem(deep) or meta_schema_problem(deep)
        if found is not None:  # the path names where, inside the schema
            assert found[0].startswith("properties.deep"), found
