"""A value is held to its own quote: the quote must be in the page and state the value."""

from __future__ import annotations

from typing import Any

import pytest

from atlas_codex.engine import evidence

PAGE = evidence.haystack(
    ["Desk lamp. Price: $129.99. Preis: 1.299,00 EUR. In stock. Colour: brass"]
)


@pytest.mark.parametrize(
    ("value", "quote", "verified"),
    [
        (129.99, "Price: $129.99", True),
        (0.01, "Price: $129.99", False),  # a number the quote does not state
        (1299.0, "Preis: 1.299,00 EUR", True),  # read with its locale's separators
        (1299, "Preis: 1.299,00 EUR", True),
        ("brass", "Colour: brass", True),
        ("gold", "Colour: brass", False),  # a string the quote does not contain
        ("out_of_stock", "In stock", False),  # an enum value the quote does not state
        ("in_stock", "In stock", True),  # the same words, in an enum's spelling
        ("In stock", "In stock", True),
        (True, "In stock", True),  # a boolean cannot be quoted as such
        (129.99, "Price: $129.99 (not on this page)", False),  # the quote is not in the page
    ],
)
def test_a_value_is_verified_only_when_its_quote_is_in_the_page_and_states_it(
    value: Any, quote: str, verified: bool
) -> None:
    checked = evidence.check({"field": value}, [{"field": "field", "quote": quote}], PAGE)

    assert checked.evidence["field"].verified is verified
    assert (checked.unverified == ["field"]) is not verified
