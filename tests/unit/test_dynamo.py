"""DynamoDB's wire form without boto3: the same as boto3's serializer on the values we store."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from atlas_codex.ground.dynamo import attribute_value, from_attribute_value
from atlas_codex.jobs.record import to_dynamo

stored = st.recursive(
    st.none()
    | st.booleans()
    | st.text()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False, min_value=-1e100, max_value=1e100)
    .filter(lambda f: f == 0 or abs(f) > 1e-100)
    .map(to_dynamo),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(stored)
def test_the_wire_form_is_boto3_s_both_ways(value: Any) -> None:
    wire = attribute_value(value)
    assert wire == TypeSerializer().serialize(value)
    assert from_attribute_value(wire) == TypeDeserializer().deserialize(wire)


@pytest.mark.parametrize("bad", [1.5, Decimal("Infinity"), Decimal("NaN"), object()])
def test_what_dynamodb_cannot_store_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError):
        attribute_value(bad)
