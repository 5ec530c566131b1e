"""The model catalogue, prices and offline token counts."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from atlas_codex.ground.policy import ModelEntry, ModelPolicy
from atlas_codex.llm import tokens
from atlas_codex.llm.catalog import (
    Catalog,
    UnknownModel,
    Usage,
    catalog_for,
    cost_usd,
    seeded_catalog,
)

ANNOUNCED = {
    "gpt-5-nano": ((0.05, 0.005, 0.40), date(2026, 12, 11)),
    "gpt-5-mini": ((0.25, 0.025, 2.00), date(2026, 12, 11)),
    "gpt-5": ((1.25, 0.125, 10.00), date(2026, 12, 11)),
    "gpt-4.1": ((2.00, 0.50, 8.00), date(2027, 1, 14)),
    "gpt-4o-mini": ((0.15, 0.075, 0.60), date(2027, 1, 14)),
}


@pytest.mark.parametrize("name", sorted(ANNOUNCED))
def test_the_seeded_models_carry_their_list_prices_and_shutdown_dates(name: str) -> None:
    entry = seeded_catalog().get(name)
    (price_in, cached, price_out), shutdown = ANNOUNCED[name]
    assert (entry.input, entry.cached_input, entry.output) == (price_in, cached, price_out)
    assert entry.shutdown == shutdown
    assert entry.successor is not None


def test_a_model_past_its_shutdown_is_replaced_by_its_successor_with_the_reason() -> None:
    catalog = seeded_catalog()
    assert catalog.live("gpt-5", date(2026, 12, 10)) == ("gpt-5", [])
    live, reasons = catalog.live("gpt-5", date(2026, 12, 11))
    assert live == "gpt-5.1"
    assert reasons == ["gpt-5 was shut down on 2026-12-11: using its successor gpt-5.1"]


def test_models_within_thirty_days_of_shutdown_are_reported_with_their_date() -> None:
    near = seeded_catalog().near_shutdown(["gpt-5-mini", "gpt-4.1", "gpt-5.1"], date(2026, 11, 29))
    assert near == [("gpt-5-mini", date(2026, 12, 11))]


def test_an_endpoint_s_own_models_come_from_configuration() -> None:
    extra = ModelEntry(
        tier="mini",
        context_window=32000,
        max_output_tokens=4000,
        input=0.1,
        cached_input=0.1,
        output=0.2,
    )
    policy = ModelPolicy(
        tier_models={"nano": "llama-local", "mini": "llama-local", "full": "gpt-5.1"},
        extra_models={"llama-local": extra},
    )
    assert catalog_for(policy).get("llama-local").output == 0.2
    with pytest.raises(UnknownModel, match="extra_models"):
        seeded_catalog().get("llama-local")


def test_a_catalogue_whose_successors_loop_or_dangle_is_refused() -> None:
    entry = {
        "tier": "nano",
        "context_window": 1,
        "max_output_tokens": 1,
        "input": 0,
        "cached_input": 0,
        "output": 0,
    }
    with pytest.raises(ValidationError, match="loop back"):
        Catalog.model_validate(
            {
                "checked": "2026-01-01",
                "models": {"a": {**entry, "successor": "b"}, "b": {**entry, "successor": "a"}},
            }
        )
    with pytest.raises(ValidationError, match="not in the catalogue"):
        Catalog.model_validate(
            {"checked": "2026-01-01", "models": {"a": {**entry, "successor": "zz"}}}
        )


def test_cost_counts_uncached_cached_and_output_tokens_at_their_prices() -> None:
    entry = seeded_catalog().get("gpt-5-mini")
    usage = Usage(input_tokens=10_000, cached_input_tokens=4_000, output_tokens=1_000)
    # 6,000 x $0.25 + 4,000 x $0.025 + 1,000 x $2.00, per million
    assert cost_usd(entry, usage) == Decimal("0.0036")


def test_a_long_context_step_applies_above_its_threshold() -> None:
    entry = ModelEntry(
        tier="full",
        context_window=1_000_000,
        max_output_tokens=1000,
        input=1.0,
        cached_input=0.1,
        output=2.0,
        long_context_above=200_000,
        long_context_multiplier=2.0,
    )
    assert cost_usd(entry, Usage(input_tokens=200_000)) == Decimal("0.2")
    assert cost_usd(entry, Usage(input_tokens=200_001)) == Decimal("0.400002")


MIXED = [
    "def total(prices: list[float]) -> float:\n    return sum(p * 1.2 for p in prices)  # VAT\n",
    '<div class="product"><h1>Lampe «Nova»</h1><span data-price="12.50">12,50 €</span></div>',
    "東京の天気は晴れです。今日は気温が高いでしょう。한국어 문장도 있습니다.",
    "Shipping 🚚📦 in 2-3 days! 👍🏽 family: 👨‍👩‍👧‍👦, flags 🇫🇷🇯🇵",
    "   leading and trailing whitespace\t\n\n\r\n",
    "",
]


def test_token_counts_match_a_second_implementation_on_mixed_text() -> None:
    import bpe_openai

    reference = bpe_openai.get_encoding("o200k_base")
    for text in [*MIXED, "".join(MIXED) * 50]:
        assert tokens.count(text) == len(reference.encode(text)), text[:40]
    assert tokens.count_many(MIXED) == [len(reference.encode(t)) for t in MIXED]


def test_the_prompt_count_includes_message_framing_and_the_schema() -> None:
    messages = [
        {"role": "system", "content": "Extract."},
        {"role": "user", "content": "hello world"},
    ]
    bare = tokens.prompt_tokens(messages)
    texts = (
        tokens.count("system")
        + tokens.count("Extract.")
        + tokens.count("user")
        + tokens.count("hello world")
    )
    assert bare == texts + 2 * tokens.TOKENS_PER_MESSAGE + tokens.REPLY_PRIMING
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    assert tokens.prompt_tokens(messages, schema) > bare + tokens.RESPONSE_FORMAT_TOKENS


def test_truncation_reports_the_counts_before_and_after() -> None:
    text = "word " * 1000
    cut, before, after = tokens.truncate(text, 100)
    assert before == tokens.count(text)
    assert after <= 100
    assert text.startswith(cut)
    assert tokens.truncate("short", 100) == ("short", 1, 1)
