"""The client's JSON schema in the subset OpenAI's strict structured outputs accept, and the
answer mapped back to the client's schema.

Strict mode (``"strict": true``) makes the API hold the model to the schema, so a page can
neither add a property nor leave one out. It accepts a subset of JSON Schema: every object
lists all its properties as required and forbids others, and some keywords are not
supported. :func:`to_strict` rewrites a schema that way:

- every property required and nullable (``null`` added to its type), so "not on the page"
  stays expressible: a property the client made required is not a licence to invent one
  (a null there is then reported as a missing required field). A property whose schema
  forbids null (``"not": {"type": "null"}``) keeps its type;
- ``additionalProperties: false`` on every object;
- keywords strict mode does not take (lengths, patterns, formats, bounds, defaults...) move
  into the property's description, where the model still reads them.

A schema strict mode cannot express (an object without ``properties``, a root that is not an
object) gets ``None``: the request then goes without strict mode. Either way
:func:`from_strict` maps the answer back: properties the client did not ask for are dropped
at every level (a null stays what it always was: "the page does not give this value").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

CONSTRAINT_KEYWORDS: Final = frozenset(
    {
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
"""The value constraints of JSON Schema (lengths, patterns, formats, bounds, sizes)."""
MOVED_TO_DESCRIPTION: Final = CONSTRAINT_KEYWORDS | frozenset(
    {
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "patternProperties",
        "propertyNames",
        "default",
        "examples",
        "contains",
        "minContains",
        "maxContains",
        "unevaluatedProperties",
        "unevaluatedItems",
        "dependentRequired",
        "dependentSchemas",
        "if",
        "then",
        "else",
        "not",
        "title",
        "$schema",
        "$id",
        "$comment",
    }
)
"""Keywords strict mode does not accept: their meaning is written into the description."""
MAX_DEPTH: Final = 10


class NotStrict(Exception):
    """The schema has a part strict mode cannot express."""


def to_strict(schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """The schema strict mode accepts, or None when it cannot express it."""
    if schema.get("type") not in ("object", None) or "anyOf" in schema or "oneOf" in schema:
        return None
    try:
        return _node(schema, nullable=False, depth=0)
    except NotStrict:
        return None


def forbids_null(schema: Any) -> bool:
    """The client's schema rules a null out for this property (``"not": {"type": "null"}``)."""
    return isinstance(schema, Mapping) and schema.get("not") == {"type": "null"}


def _node(schema: Any, *, nullable: bool, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH or not isinstance(schema, Mapping):
        raise NotStrict
    out: dict[str, Any] = {}
    moved: list[str] = []
    for key, value in schema.items():
        if key in MOVED_TO_DESCRIPTION:
            if key != "title":  # a title is the property's name again
                moved.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
            continue
        out[key] = value
    kind = out.get("type")
    kinds = list(kind) if isinstance(kind, list) else ([kind] if kind else [])
    if "object" in kinds or "properties" in out:
        properties = out.get("properties")
        if not isinstance(properties, Mapping) or not properties:
            raise NotStrict  # a free-form object: strict mode needs its properties
        out["properties"] = {
            name: _node(sub, nullable=not forbids_null(sub), depth=depth + 1)
            for name, sub in properties.items()
        }
        out["required"] = list(properties)
        out["additionalProperties"] = False
        if not kinds:
            kinds = ["object"]
    if "array" in kinds:
        items = out.get("items")
        if not isinstance(items, Mapping):
            raise NotStrict
        out["items"] = _node(items, nullable=False, depth=depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in out:
            options = out.pop(key)
            if not isinstance(options, list):
                raise NotStrict
            out["anyOf"] = [_node(o, nullable=False, depth=depth + 1) for o in options]
    if "$defs" in out or "$ref" in out or "definitions" in out:
        raise NotStrict  # references are left to the non-strict path
    if nullable:
        if kinds:
            out["type"] = [*kinds, "null"] if "null" not in kinds else kinds
        elif "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
        elif "enum" in out:
            out["enum"] = [*out["enum"], None]
    elif kinds and kind is not None:
        out["type"] = kinds[0] if len(kinds) == 1 else kinds
    if moved:
        note = "; ".join(moved)
        described = out.get("description")
        out["description"] = f"{described} ({note})" if described else note
    return out


def from_strict(data: Any, schema: Mapping[str, Any]) -> Any:
    """``data`` as the client's schema has it: properties it did not ask for dropped at every
    level (a null stays: "the page does not give it")."""
    return _back(data, schema, 0)


def _back(data: Any, schema: Any, depth: int) -> Any:
    if depth > MAX_DEPTH or not isinstance(schema, Mapping):
        return data
    properties = schema.get("properties")
    if isinstance(data, dict) and isinstance(properties, Mapping):
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            if name not in data:
                continue
            out[name] = _back(data[name], sub, depth + 1)
        return out
    items = schema.get("items")
    if isinstance(data, list) and isinstance(items, Mapping):
        return [_back(v, items, depth + 1) for v in data]
    return data
