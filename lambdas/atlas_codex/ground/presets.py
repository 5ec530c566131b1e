"""Built-in schemas a job can name instead of writing one (``"preset": "product"``)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Final, Literal

Preset = Literal["product"]
AVAILABILITY: Final = (
    "InStock",
    "OutOfStock",
    "PreOrder",
    "BackOrder",
    "Discontinued",
    "LimitedAvailability",
    "InStoreOnly",
    "OnlineOnly",
)
"""schema.org ItemAvailability values a product's availability is given as."""

_PRODUCT: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "price": {"type": "number"},
        "currency": {"type": "string", "description": "ISO 4217 code"},
        "sku": {"type": "string"},
        "availability": {"type": "string", "enum": list(AVAILABILITY)},
        "brand": {"type": "string"},
        "gtin": {"type": "string"},
        "mpn": {"type": "string"},
    },
}
"""Every product fact the deterministic reader (``engine/facts/product.py``) finds."""

PRESETS: Final = MappingProxyType({"product": _PRODUCT})


def schema_of(preset: str) -> dict[str, Any]:
    """A fresh copy of the preset's JSON schema (KeyError: no such preset)."""
    import copy

    return copy.deepcopy(PRESETS[preset])
