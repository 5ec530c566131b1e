"""The input tokens the API bills, counted offline, against 1,132 recorded real calls
(../shared/benchdata/openai-recorded): by kind of request, model family and repository."""

from __future__ import annotations

import pytest

from atlas_codex.llm import tokens
from bench.data import BENCHDATA
from bench.token_counts import errors_by_group

RECORDED = BENCHDATA / "openai-recorded" / "recorded-dev.jsonl"
needs_records = pytest.mark.skipif(not RECORDED.exists(), reason="the recorded calls are not here")


@needs_records
def test_plain_chat_requests_are_counted_exactly_by_family_and_repository() -> None:
    by = errors_by_group()
    plain = by[("plain", "all")]
    assert sum(plain.values()) >= 500
    assert plain[0] / sum(plain.values()) >= 0.98
    assert all(abs(error) <= 2 for error in plain)
    for (kind, group), errors in by.items():
        if kind == "plain" and group != "all":  # every family and repository
            assert errors[0] / sum(errors.values()) >= 0.98, (group, errors)


@needs_records
def test_json_schema_requests_are_estimated_within_the_bound_the_docs_give() -> None:
    """Not exact yet (the API renders the schema its own way): the figure is kept honest."""
    schema = errors_by_group()[("json_schema", "all")]
    total = sum(schema.values())
    assert total >= 150
    within = sum(n for error, n in schema.items() if abs(error) <= 20)
    assert within == total  # never off by more than 20 on the dev set
    assert sum(n for error, n in schema.items() if abs(error) <= 5) / total >= 0.45


def test_an_endpoint_without_a_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="responses"):
        tokens.request_tokens("responses", {"input": "hi"})
