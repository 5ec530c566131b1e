"""The client's schema in strict mode's subset, and the answer mapped back."""

from __future__ import annotations

from typing import Any

from atlas_codex.ground.schema_check import violation
from atlas_codex.llm.strict import from_strict, to_strict

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2, "title": "Name"},
        "price": {"type": "number", "minimum": 0, "description": "in euros"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
        "seller": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
        },
    },
    "required": ["name"],
}


def test_every_property_is_required_and_nullable_and_objects_closed() -> None:
    strict = to_strict(SCHEMA)
    assert strict is not None
    assert strict["required"] == ["name", "price", "tags", "seller"]
    assert strict["additionalProperties"] is False
    # required, and still nullable: "not on the page" is an answer, never a push to invent
    assert strict["properties"]["name"]["type"] == ["string", "null"]
    assert strict["properties"]["price"]["type"] == ["number", "null"]
    assert strict["properties"]["seller"]["additionalProperties"] is False
    assert strict["properties"]["seller"]["properties"]["city"]["type"] == ["string", "null"]


def test_keywords_strict_mode_refuses_move_into_the_description() -> None:
    strict = to_strict(SCHEMA)
    assert strict is not None
    name, price, tags = (strict["properties"][k] for k in ("name", "price", "tags"))
    assert "minLength" not in name
    assert "minLength: 2" in name["description"]
    assert price["description"] == "in euros (minimum: 0)"
    assert "maxItems: 5" in tags["description"]
    assert "title" not in name


def test_a_schema_strict_mode_cannot_express_goes_without_it() -> None:
    assert to_strict({"type": "object"}) is None  # a free-form object
    assert to_strict({"type": "object", "properties": {"x": {"type": "object"}}}) is None
    assert to_strict({"type": "array", "items": {"type": "string"}}) is None
    assert (
        to_strict({"$defs": {}, "type": "object", "properties": {"a": {"$ref": "#/$defs/a"}}})
        is None
    )


def test_a_property_the_client_did_not_ask_for_never_reaches_the_result() -> None:
    answer = {
        "name": "Desk lamp",
        "price": None,
        "admin_password": "hunter2",
        "seller": {"city": "Oslo", "iban": "NO93..."},
        "tags": ["brass"],
    }
    back = from_strict(answer, SCHEMA)
    assert back == {
        "name": "Desk lamp",
        "price": None,
        "seller": {"city": "Oslo"},
        "tags": ["brass"],
    }


def test_an_answer_that_fits_the_strict_schema_fits_it_after_the_mapping() -> None:
    strict = to_strict(SCHEMA)
    assert strict is not None
    answer: dict[str, Any] = {"name": "Lamp", "price": None, "tags": [], "seller": {"city": None}}
    assert violation(strict, answer) is None


def test_a_property_whose_schema_forbids_null_keeps_its_type() -> None:
    schema = {
        "type": "object",
        "properties": {
            "sku": {"type": "string", "not": {"type": "null"}},
            "name": {"type": "string"},
        },
        "required": ["sku", "name"],
    }
    strict = to_strict(schema)
    assert strict is not None
    assert strict["properties"]["sku"]["type"] == "string"
    assert strict["properties"]["name"]["type"] == ["string", "null"]
