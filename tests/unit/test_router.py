"""The router: a tier from the job, a chain from the tier, and what happens on each failure."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from atlas_codex.accounts.usage import BudgetExceeded, Reservation
from atlas_codex.ground.policy import ModelPolicy
from atlas_codex.llm.catalog import Usage, seeded_catalog
from atlas_codex.llm.client import Completion, FailureKind, ModelCallFailed
from atlas_codex.llm.router import Call, Cooldowns, Decision, Router, RouterFailed, analyse, chain

POLICY = ModelPolicy()
TODAY = date(2026, 11, 29)
SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}}


class Scripted:
    """A model client that answers per model from a script: a value or a ModelCallFailed."""

    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script
        self.calls: list[dict[str, Any]] = []

    def complete(self, **kwargs: Any) -> Completion:
        self.calls.append(kwargs)
        outcome = self.script[kwargs["model"]]
        if isinstance(outcome, ModelCallFailed):
            raise outcome
        return Completion(
            kwargs["model"], outcome, Usage(input_tokens=100, output_tokens=20), "stop"
        )


class Budget:
    def __init__(self, limit: Decimal) -> None:
        self.limit = limit
        self.committed = Decimal(0)
        self.reserved: list[Decimal] = []

    def reserve(self, usd: Decimal) -> Reservation:
        if self.committed + usd > self.limit:
            raise BudgetExceeded(f"${usd} does not fit")
        self.committed += usd
        self.reserved.append(usd)
        return Reservation(month="2026-11", usd=usd)

    def commit(
        self, reservation: Reservation, actual: Decimal, owner_id: str | None = None
    ) -> None:
        self.committed += actual - reservation.usd


def router(
    script: dict[str, Any], budget: Any = None, cooldowns: Cooldowns | None = None
) -> tuple[Router, Scripted]:
    client = Scripted(script)
    return (
        Router(
            client=client,
            catalog=seeded_catalog(),
            policy=POLICY,
            budget=budget,
            cooldowns=cooldowns or Cooldowns(),
            today=lambda: TODAY,
            clock=lambda: 0.0,
        ),
        client,
    )


def call() -> Call:
    return Call(messages=lambda limit: [{"role": "user", "content": "page"}], schema=SCHEMA)


NANO = Decision("nano", ("simple",))


def test_simple_jobs_go_to_nano_and_reasoning_to_full_with_reasons() -> None:
    simple = analyse(input_tokens=900, schema=SCHEMA, instruction=None, page_count=1, policy=POLICY)
    assert simple.tier == "nano"
    hard = analyse(
        input_tokens=900,
        schema=SCHEMA,
        instruction="compare the prices and rank the cheapest",
        page_count=1,
        policy=POLICY,
    )
    assert hard.tier == "full"
    assert any("reasoning" in r for r in hard.reasons)
    big = analyse(input_tokens=20_000, schema=SCHEMA, instruction=None, page_count=1, policy=POLICY)
    assert big.tier == "mini"


def test_a_tier_the_stage_does_not_allow_is_lowered_and_said_so() -> None:
    dev = ModelPolicy(allowed_tiers=("nano", "mini"))
    decision = analyse(
        input_tokens=100_000, schema=SCHEMA, instruction=None, page_count=1, policy=dev
    )
    assert decision.tier == "mini"
    assert "the stage does not allow full: mini" in decision.reasons


def test_the_chain_climbs_tiers_then_the_fallback_with_live_models_only() -> None:
    assert [m for m, _ in chain("nano", POLICY, seeded_catalog(), TODAY)] == [
        "gpt-5-nano",
        "gpt-5-mini",
        "gpt-5",
        "gpt-4.1",
    ]
    after = chain("nano", POLICY, seeded_catalog(), date(2026, 12, 12))
    # nano and mini both move to gpt-4.1-mini (tried once), full to gpt-5.1
    assert [m for m, _ in after] == ["gpt-4.1-mini", "gpt-5.1", "gpt-4.1"]
    assert "shut down on 2026-12-11" in after[0][1][0]


def test_a_rate_limited_model_is_left_for_the_next_and_cooled_for_its_retry_after() -> None:
    cooldowns = Cooldowns(clock=lambda: 0.0)
    r, client = router(
        {
            "gpt-5-nano": ModelCallFailed("rate_limited", "slow down", retry_after_s=20),
            "gpt-5-mini": {"title": "x"},
        },
        cooldowns=cooldowns,
    )
    routed = r.run(call(), NANO, deadline=100.0)
    assert routed.model == "gpt-5-mini"
    assert [a.model for a in routed.attempts] == ["gpt-5-nano", "gpt-5-mini"]
    assert routed.attempts[0].error is not None
    assert routed.attempts[0].error.code == "model_rate_limited"
    assert cooldowns.cooling("gpt-5-nano") == 20
    # The next request does not even try the cooling model.
    routed = r.run(call(), NANO, deadline=100.0)
    assert [c["model"] for c in client.calls] == ["gpt-5-nano", "gpt-5-mini", "gpt-5-mini"]
    assert routed.attempts[0].error is not None
    assert "cooling down" in routed.attempts[0].error.message


def test_every_model_is_tried_at_most_once_and_the_chain_is_capped() -> None:
    failing = {
        m: ModelCallFailed("server_error", "500")
        for m in ("gpt-5-nano", "gpt-5-mini", "gpt-5", "gpt-4.1")
    }
    r, client = router(failing)
    with pytest.raises(RouterFailed) as exc:
        r.run(call(), NANO, deadline=100.0)
    assert [c["model"] for c in client.calls] == ["gpt-5-nano", "gpt-5-mini", "gpt-5", "gpt-4.1"]
    assert exc.value.code == "model_error"


def test_a_bad_key_stops_the_chain_at_once() -> None:
    r, client = router({"gpt-5-nano": ModelCallFailed("auth", "invalid key")})
    with pytest.raises(RouterFailed, match="model_auth_failed"):
        r.run(call(), NANO, deadline=100.0)
    assert len(client.calls) == 1


def test_a_failed_call_is_billed_from_its_usage() -> None:
    budget = Budget(Decimal(10))
    invalid = ModelCallFailed(
        "invalid_output", "not JSON", usage=Usage(input_tokens=1000, output_tokens=4096)
    )
    r, _ = router({"gpt-5-nano": invalid, "gpt-5-mini": {"title": "ok"}}, budget=budget)
    routed = r.run(call(), NANO, deadline=100.0)
    nano = seeded_catalog().get("gpt-5-nano")
    billed = (
        Decimal(1000) * Decimal(str(nano.input)) / 10**6
        + Decimal(4096) * Decimal(str(nano.output)) / 10**6
    )
    assert Decimal(str(routed.attempts[0].cost_usd)) == billed
    assert routed.actual_usd > billed
    assert budget.committed == routed.actual_usd  # reservations replaced by actual costs


def test_when_the_budget_refuses_every_model_the_job_fails_with_budget_exceeded() -> None:
    r, client = router({}, budget=Budget(Decimal("0.000001")))
    with pytest.raises(RouterFailed) as exc:
        r.run(call(), NANO, deadline=100.0)
    assert exc.value.code == "budget_exceeded"
    assert client.calls == []


def test_a_prompt_too_large_for_a_model_skips_to_one_with_a_larger_window() -> None:
    huge = "word " * 130_000  # ~130k tokens: over gpt-4o's 128k, within gpt-4.1's 1M
    small = ModelPolicy(
        tier_models={"nano": "gpt-4o-mini", "mini": "gpt-4o-mini", "full": "gpt-4o"},
        production_fallback="gpt-4.1",
    )
    client = Scripted({"gpt-4.1": {"title": "x"}})
    r = Router(
        client=client,
        catalog=seeded_catalog(),
        policy=small,
        budget=None,
        cooldowns=Cooldowns(),
        today=lambda: TODAY,
        clock=lambda: 0.0,
    )
    routed = r.run(
        Call(messages=lambda limit: [{"role": "user", "content": huge}], schema=SCHEMA),
        NANO,
        deadline=100.0,
    )
    assert routed.model == "gpt-4.1"
    assert [a.error.code for a in routed.attempts if a.error] == [
        "context_length_exceeded",
        "context_length_exceeded",
    ]


def test_content_too_large_for_every_model_is_truncated_with_the_counts_recorded() -> None:
    from atlas_codex.llm import tokens

    page = "word " * 140_000
    only_small = ModelPolicy(
        tier_models={"nano": "gpt-4o-mini", "mini": "gpt-4o-mini", "full": "gpt-4o"},
        production_fallback="gpt-4o",
    )
    client = Scripted({"gpt-4o-mini": {"title": "x"}})
    r = Router(
        client=client,
        catalog=seeded_catalog(),
        policy=only_small,
        budget=None,
        cooldowns=Cooldowns(),
        today=lambda: TODAY,
        clock=lambda: 0.0,
    )

    def messages(limit: int | None) -> list[dict[str, str]]:
        content = page if limit is None else tokens.truncate(page, limit)[0]
        return [{"role": "user", "content": content}]

    routed = r.run(
        Call(messages=messages, schema=SCHEMA, max_output_tokens=1000), NANO, deadline=100.0
    )
    assert routed.model == "gpt-4o-mini"
    [warning] = [w for w in routed.warnings if w.startswith("content truncated")]
    before, after = (int(n) for n in warning.split(": ")[1].split(" input")[0].split(" -> "))
    assert before > 128_000
    assert after <= 128_000 - 1000
    assert tokens.prompt_tokens(client.calls[0]["messages"], SCHEMA) == after


def test_a_refusal_of_one_request_cools_nothing_for_the_next_requests() -> None:
    refusing = ModelCallFailed("refusal", "I can't help with that page")
    cooldowns = Cooldowns()
    nano = chain("nano", POLICY, seeded_catalog(), TODAY)[0][0]
    refuse, _ = router(dict.fromkeys(_models(), refusing), cooldowns=cooldowns)
    for _ in range(3):  # three jobs on a page every model refuses
        with pytest.raises(RouterFailed):
            refuse.run(call(), NANO, deadline=100.0)
    assert cooldowns.cooling(nano) == 0
    serve, client = router({key: {"title": "ok"} for key in _models()}, cooldowns=cooldowns)
    assert serve.run(call(), NANO, deadline=100.0).model == nano
    assert [c["model"] for c in client.calls] == [nano]


@pytest.mark.parametrize("kind", ["truncated", "invalid_output", "context_length"])
def test_failures_of_a_requests_content_cool_nothing(kind: FailureKind) -> None:
    cooldowns = Cooldowns()
    failing, _ = router(
        dict.fromkeys(_models(), ModelCallFailed(kind, "this page")), cooldowns=cooldowns
    )
    for _ in range(4):
        with pytest.raises(RouterFailed):
            failing.run(call(), NANO, deadline=100.0)
    assert all(cooldowns.cooling(m) == 0 for m in _models())


def test_a_model_the_endpoint_does_not_serve_moves_on_and_is_reported() -> None:
    models = _models()
    cooldowns = Cooldowns()
    script: dict[str, Any] = {key: {"title": "ok"} for key in models}
    script[models[0]] = ModelCallFailed("not_found", "The model does not exist")
    routed, _client = router(script, cooldowns=cooldowns)
    done = routed.run(call(), NANO, deadline=100.0)
    assert done.model == models[1]
    assert [a.error.code if a.error else None for a in done.attempts] == ["model_not_found", None]
    assert cooldowns.unavailable() == [models[0]]
    assert cooldowns.cooling(models[0]) > 0


def test_each_call_leaves_time_for_the_models_after_it() -> None:
    models = _models()
    hung = ModelCallFailed("timeout", "no answer")
    script: dict[str, Any] = {key: {"title": "ok"} for key in models}
    script[models[0]] = hung
    routed, client = router(script)
    done = routed.run(call(), NANO, deadline=289.0)
    assert done.model == models[1]
    first, second = client.calls[0]["timeout_s"], client.calls[1]["timeout_s"]
    assert first <= 289.0 / len(models) + 1  # a share, not the whole deadline
    assert first <= 120.0
    assert second > 0


def _models() -> list[str]:
    return [m for m, _ in chain("nano", POLICY, seeded_catalog(), TODAY)]


class CutOnce(Scripted):
    """Cuts the first answer at its cap; answers when given more room."""

    def complete(self, **kwargs: Any) -> Completion:
        self.calls.append(kwargs)
        if len(self.calls) == 1:
            raise ModelCallFailed(
                "truncated",
                "the answer hit max_completion_tokens",
                usage=Usage(input_tokens=100, output_tokens=kwargs["max_output_tokens"]),
            )
        return Completion(kwargs["model"], {"title": "ok"}, Usage(100, 900), "stop")


def test_a_cut_answer_is_asked_again_once_with_a_larger_cap_on_the_same_model() -> None:
    client = CutOnce({})
    routed = Router(
        client=client,
        catalog=seeded_catalog(),
        policy=POLICY,
        budget=None,
        cooldowns=Cooldowns(),
        today=lambda: TODAY,
        clock=lambda: 0.0,
    )
    done = routed.run(call(), NANO, deadline=100.0)
    first, second = client.calls
    assert first["model"] == second["model"] == done.model
    assert second["max_output_tokens"] == 4 * first["max_output_tokens"]
    assert [a.error.code if a.error else None for a in done.attempts] == [
        "model_output_truncated",
        None,
    ]
    assert done.actual_usd > 0  # both calls billed


def test_a_cut_answer_cut_again_stops_the_chain() -> None:
    cut = ModelCallFailed("truncated", "the answer hit max_completion_tokens")
    routed, client = router(dict.fromkeys(_models(), cut))
    with pytest.raises(RouterFailed) as failed:
        routed.run(call(), NANO, deadline=100.0)
    assert failed.value.code == "model_output_truncated"
    assert len({c["model"] for c in client.calls}) == 1  # never the same cap elsewhere
    assert len(client.calls) == 2


# ------------------------------------------------------------------ output caps and the bound


def test_a_reasoning_model_s_cap_holds_its_thinking_at_the_call_s_effort() -> None:
    from atlas_codex.llm import output

    models = _models()
    routed, client = router({models[0]: {"title": "ok"}})
    routed.run(call(), NANO, deadline=100.0)
    low = Call(messages=call().messages, schema=SCHEMA, max_output_tokens=600)
    medium = Call(
        messages=call().messages, schema=SCHEMA, max_output_tokens=600, reasoning_effort="medium"
    )
    entry = seeded_catalog().get(models[0])
    assert entry.reasoning  # gpt-5-nano thinks before it answers, billed as output
    assert client.calls[0]["reasoning_effort"] == "low"
    assert Router.output_cap(low, entry) == 600 + output.reasoning_tokens("low")[1]
    assert Router.output_cap(medium, entry) == 600 + output.reasoning_tokens("medium")[1]
    assert Router.output_cap(low, entry, cap=5000) == 5000  # a retry's cap holds it already
    plain = seeded_catalog().get("gpt-4.1-mini")
    assert Router.output_cap(low, plain) == 600
    # The expected cost counts the thinking too: a reasoning model is not priced as if it
    # answered at once.
    expected_low, _ = routed.estimate(models[0], 1000, low, 2000)
    bare = seeded_catalog().get(models[0])
    answer_only = (
        Decimal(str(bare.input)) * 1000 / 10**6
        + Decimal(str(bare.output)) * (output.expected_tokens(SCHEMA)) / 10**6
    )
    assert expected_low > answer_only


def test_answer_caps_follow_the_schema_within_their_floor_and_ceiling() -> None:
    from atlas_codex.llm import output

    assert output.cap_tokens(10) == output.ANSWER_CAP_MIN
    assert output.cap_tokens(300) == 1200
    assert output.cap_tokens(10_000) == output.ANSWER_CAP_MAX


def bounded(gate: bool, ceiling: Decimal) -> Call:
    c = call()
    c.ceiling_usd = ceiling
    c.ceiling_code = "spend_bound_reached"
    c.ceiling_name = "the job's spend bound"
    c.gate = gate
    return c


def test_the_bound_lets_a_stand_in_for_an_unavailable_model_answer_and_says_so() -> None:
    models = _models()
    script: dict[str, Any] = {m: {"title": "ok"} for m in models}
    script[models[0]] = ModelCallFailed("rate_limited", "slow down")
    routed, _client = router(script)
    # Room for the first model only: a job's own call past an unavailable one may go beyond.
    done = routed.run(bounded(False, Decimal("0.003")), NANO, deadline=100.0)
    assert done.model == models[1]
    assert any("stands in for unavailable models" in w for w in done.warnings)


def test_the_bound_refuses_a_quality_gate_call_and_a_second_model_after_a_billed_one() -> None:
    models = _models()
    routed, client = router({m: {"title": "ok"} for m in models})
    with pytest.raises(RouterFailed) as failed:
        routed.run(bounded(True, Decimal("0.0000001")), NANO, deadline=100.0)
    assert failed.value.code == "spend_bound_reached"
    assert "spend bound" in failed.value.message
    assert client.calls == []

    refusing: dict[str, Any] = {m: {"title": "ok"} for m in models}
    refusing[models[0]] = ModelCallFailed(
        "refusal", "no", usage=Usage(input_tokens=100, output_tokens=20)
    )
    routed, client = router(refusing)
    with pytest.raises(RouterFailed) as failed:
        routed.run(bounded(False, Decimal("0.003")), NANO, deadline=100.0)
    # The cause is the refusal; the bound only kept the next models from being tried.
    assert failed.value.code == "model_refusal"
    assert "spend bound" in failed.value.message
    assert len(client.calls) == 1
