"""DynamoDB's wire form of a value (``{"S": ...}``, ``{"N": ...}``, ``{"M": ...}``...), both
ways, for the JSON-shaped values the service stores (numbers as ``Decimal`` or ``int``).

The same mapping as boto3's ``TypeSerializer``/``TypeDeserializer`` for these values (a test
compares them on generated values) without importing boto3, whose import costs a cold start
~140 ms (``atlas_codex.ground.aws``).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def attribute_value(value: Any) -> dict[str, Any]:
    """``value`` as a DynamoDB AttributeValue."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"DynamoDB stores no {value} (infinity and NaN are not numbers)")
        return {"N": str(value)}
    if isinstance(value, bytes | bytearray):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): attribute_value(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [attribute_value(v) for v in value]}
    raise TypeError(f"cannot store a value of type {type(value).__name__} (floats: use Decimal)")


def from_attribute_value(attribute: Mapping[str, Any]) -> Any:
    """A DynamoDB AttributeValue as a Python value (numbers as ``Decimal``)."""
    ((kind, value),) = attribute.items()
    if kind == "NULL":
        return None
    if kind in ("S", "BOOL", "B"):
        return value
    if kind == "N":
        return Decimal(value)
    if kind == "M":
        return {k: from_attribute_value(v) for k, v in value.items()}
    if kind == "L":
        return [from_attribute_value(v) for v in value]
    if kind == "SS":
        return set(value)
    if kind == "NS":
        return {Decimal(v) for v in value}
    if kind == "BS":
        return set(value)
    raise TypeError(f"unknown DynamoDB attribute type {kind!r}")
