"""The structural check of extracted data against a job's JSON schema, in one place: the
model client refuses a schema-violating answer with it, and the quality gate judges every
strategy's output with it."""

from __future__ import annotations

from typing import Any


def violation(schema: dict[str, Any], data: Any, path: str = "$") -> str | None:
    """A minimal structural check of ``data`` against ``schema`` (type, enum,
    required, properties, items): what a schema-violating answer is refused for."""
    expected = schema.get("type")
    types = expected if isinstance(expected, list) else [expected] if expected else []
    checks = {
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
    }
    if types and not any(checks.get(t, lambda v: True)(data) for t in types):
        if data is None:
            return None  # "not found" is null, which the prompt asks for
        return f"{path}: expected {'/'.join(types)}, got {type(data).__name__}"
    enum = schema.get("enum")
    if isinstance(enum, list) and data is not None and data not in enum:
        return f"{path}: {data!r} is not one of {enum!r}"[:300]
    if isinstance(data, dict):
        for key in schema.get("required", []):
            if key not in data:
                return f"{path}: the required property {key!r} is missing"
        for key, sub in schema.get("properties", {}).items():
            if key in data and isinstance(sub, dict):
                problem = violation(sub, data[key], f"{path}.{key}")
                if problem:
                    return problem
    if isinstance(data, list) and isinstance(schema.get("items"), dict):
        for n, item in enumerate(data):
            problem = violation(schema["items"], item, f"{path}[{n}]")
            if problem:
                return problem
    return None
