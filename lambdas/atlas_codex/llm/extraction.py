"""The engine's model strategies: schema extraction, plain-language extraction, link choice,
and the quote of what they will cost.

Built only when a key is configured; the ``openai`` SDK is imported on the first call. Every
extraction asks the model for the data *and* a verbatim quote per field (the evidence the
engine checks against the page).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from atlas_codex.extraction.contract import ModelBudget
from atlas_codex.extraction.result import Step
from atlas_codex.ground.config import RuntimeConfig
from atlas_codex.ground.policy import MODEL_TIERS, ModelTier
from atlas_codex.llm import output, prompts, tokens
from atlas_codex.llm.catalog import Catalog, catalog_for
from atlas_codex.llm.router import (
    Call,
    CallQuote,
    Decision,
    Routed,
    Router,
    RouterFailed,
    analyse,
)
from atlas_codex.llm.strict import from_strict, to_strict

PROPOSAL_MAX_OUTPUT: int = 1500
REASONING_EFFORT: str = "medium"
"""How hard a reasoning model thinks on the full tier (a job that needs reasoning); the
other tiers read for facts and think little ("low")."""
EFFORTS: tuple[str, ...] = ("minimal", "low", "medium", "high")


def effort_for(tier: ModelTier) -> str:
    return REASONING_EFFORT if tier == "full" else "low"


MAX_RANKED_LINKS: int = 60
RANKING_MAX_OUTPUT: int = 300
RANKING_DECISION = Decision("nano", ("link choice for navigation",))
"""Without a ``max_cost_usd``, a page's model calls may spend at most this many times their
quoted expected cost (never less than the first call's own worst case, so that it can
start): the quote's ``high_usd`` is that bound, and a wider reading or a stronger tier that
would cross it is not tried. A job that gives ``max_cost_usd`` is bound by that instead."""


@dataclass
class Spend:
    """What one job's model calls cost, across pages and strategies."""

    estimated: Decimal = Decimal(0)
    actual: Decimal = Decimal(0)
    models: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    owner_id: str | None = None
    ceiling: Decimal | None = None
    """The job's ``max_cost_usd``."""
    bound: Decimal | None = None
    """Without a ceiling: what the job's pages were quoted at most (each page's path: its
    first call, one fallback, one wider reading, one escalation), grown by :meth:`allow` as
    each page's model calls begin; None: no bound."""

    def allow(self, amount: Decimal) -> None:
        if self.bound is not None:
            self.bound += amount

    def remaining(self) -> Decimal | None:
        caps = [c for c in (self.ceiling, self.bound) if c is not None]
        return None if not caps else min(caps) - self.actual

    def limit_code(self) -> str:
        return "cost_ceiling_reached" if self.ceiling is not None else "spend_bound_reached"

    def limit_name(self) -> str:
        if self.ceiling is not None:
            return "the job's max_cost_usd"
        return (
            "the job's spend bound (its quote's high_usd: per page the first call, one "
            "fallback, one wider reading and one escalation; a max_cost_usd allows more)"
        )

    def add(self, routed: Routed | RouterFailed) -> None:
        if isinstance(routed, Routed):
            self.estimated += routed.estimated_usd
            self.actual += routed.actual_usd
            self.models.append(routed.model)
            self.warnings += routed.warnings
        else:
            for attempt in routed.attempts:
                self.estimated += Decimal(str(attempt.estimated_cost_usd or 0))
                self.actual += Decimal(str(attempt.cost_usd or 0))


@dataclass(frozen=True)
class ModelAnswer:
    """An extraction's data, the model's quote per field, and how it was made."""

    data: Any
    quotes: list[dict[str, Any]]
    schema: dict[str, Any]
    """The schema the data follows (for an instruction: the one the model proposed)."""
    tier: ModelTier
    model: str
    truncated: bool


@dataclass(frozen=True)
class PageQuote:
    """What a page's model calls will cost: the range a quote shows and a job is held to."""

    decision: Decision
    calls: list[CallQuote]
    low: Decimal
    expected: Decimal
    high: Decimal
    """Bounded (no ``max_cost_usd``): the path the page may take, each call at its cap (the
    first model, one fallback after a billed failure, one wider reading of the full page,
    one escalation); unbounded: every model of every call and escalation."""


class NoStrongerTier(RouterFailed):
    def __init__(self, tier: ModelTier) -> None:
        super().__init__("no_stronger_tier", f"the stage allows no tier above {tier}", [])


class ModelStrategies:
    def __init__(self, config: RuntimeConfig, *, router: Router | None = None) -> None:
        self.config = config
        self.catalog: Catalog = catalog_for(config.model_policy)
        self._router = router
        self._lock = threading.Lock()

    @property
    def router(self) -> Router:
        with self._lock:
            if self._router is None:
                try:
                    self._router = self._build_router()
                except Exception as exc:  # e.g. the key's secret is missing or unreadable
                    # A key is configured and cannot be read: a fault to say, never the
                    # silent "no key configured" (model_unavailable) of a keyless stage.
                    where = self.config.openai_secret_name or "OPENAI_API_KEY"
                    raise RouterFailed(
                        "model_key_unreadable",
                        f"the OpenAI key ({where}) could not be read: {type(exc).__name__}: {exc}"[
                            :500
                        ],
                        [],
                    ) from None
            return self._router

    def model_budget(self) -> ModelBudget | None:
        """The stage's monthly budget and this month's spend (None: the key cannot be read,
        which the job's model step reports itself)."""
        try:
            budget = self.router.budget
        except RouterFailed:
            return None
        if budget is None:
            return None
        return ModelBudget(limit_usd=float(budget.limit), spent_usd=float(budget.spent()))

    def _build_router(self) -> Router:
        from atlas_codex.accounts.usage import BudgetGuard, UsageLedger
        from atlas_codex.ground import aws
        from atlas_codex.llm.client import ModelClient

        client = ModelClient(
            api_key=self.config.openai_key(),
            base_url=self.config.openai_base_url,
        )
        ledger = UsageLedger(
            dynamodb=aws.dynamodb(self.config.aws_endpoint_url),
            table_name=self.config.usage_table,
            stage=self.config.stage,
        )
        budget = BudgetGuard(ledger, monthly_limit_usd=self.config.monthly_budget_usd)
        return Router(
            client=client, catalog=self.catalog, policy=self.config.model_policy, budget=budget
        )

    def decide(
        self,
        markdown: str,
        schema: dict[str, Any] | None,
        instruction: str | None,
        page_count: int,
        *,
        start: ModelTier | None = None,
        above: ModelTier | None = None,
    ) -> Decision:
        """The router's tier for the job; ``start`` is the client's choice, ``above`` asks for
        the next tier the stage allows above one that did not do (the quality gate)."""
        if above is not None:
            stronger = self._neighbour(above, step=1)
            if stronger is None:
                raise NoStrongerTier(above)
            return Decision(stronger, (f"quality gate: {above} did not do -> {stronger}",))
        decision = analyse(
            input_tokens=tokens.count(markdown),
            schema=schema,
            instruction=instruction,
            page_count=page_count,
            policy=self.config.model_policy,
        )
        if start is not None and start in self.config.model_policy.allowed_tiers:
            decision = Decision(start, (*decision.reasons, f"the job asks for {start}"))
        return decision

    def _schema_call(
        self,
        url: str,
        markdown: str,
        schema: dict[str, Any],
        instruction: str | None,
        decision: Decision,
        spend: Spend | None,
        *,
        unknown: bool = False,
    ) -> Call:
        """``unknown``: ``schema`` stands for one the model has not proposed yet (a quote)."""
        strict = to_strict(schema)
        expected = output.expected_tokens(schema) + output.evidence_tokens(
            output.leaf_fields(schema)
        )
        return Call(
            messages=lambda limit: prompts.schema_messages(url, _cut(markdown, limit), instruction),
            schema=prompts.evidence_format(strict or schema, strict=strict is not None),
            strict=strict is not None,
            expected_output_tokens=expected,
            # The cap follows the answer the schema asks for (a retry of a cut answer gets
            # more); a proposed schema is not known when quoted: the largest cap then.
            max_output_tokens=output.ANSWER_CAP_MAX if unknown else output.cap_tokens(expected),
            # Reasoning-enhanced when the job needs the full tier: a stronger model thinks more.
            reasoning_effort=effort_for(decision.tier),
            owner_id=spend.owner_id if spend else None,
        )

    def proposal_decision(self) -> Decision:
        """A schema proposed from an instruction is a small answer from a short prompt (no
        page): the cheapest tier the stage allows writes it."""
        allowed = self.config.model_policy.allowed_tiers
        cheapest = next(t for t in MODEL_TIERS if t in allowed)
        return Decision(cheapest, ("a schema proposal: the cheapest tier the stage allows",))

    def _proposal_call(self, instruction: str, spend: Spend | None) -> Call:
        return Call(
            messages=lambda limit: prompts.propose_messages(instruction),
            schema=prompts.PROPOSAL_FORMAT,
            max_output_tokens=PROPOSAL_MAX_OUTPUT,
            owner_id=spend.owner_id if spend else None,
        )

    def schema(
        self,
        *,
        url: str,
        markdown: str,
        schema: dict[str, Any],
        instruction: str | None,
        deadline: float,
        spend: Spend,
        attempts: list[Step],
        page_count: int = 1,
        start: ModelTier | None = None,
        above: ModelTier | None = None,
        may_downgrade: bool = True,
        gate: bool = False,
    ) -> ModelAnswer:
        """``may_downgrade``: when the budget refuses the tier, try cheaper ones (not for a
        tier the client chose, nor for a quality-gate escalation). ``gate``: the quality gate
        asks (an escalation, ``above``, always is), held strictly to the job's spend bound."""
        decision = self.decide(markdown, schema, instruction, page_count, start=start, above=above)
        spend.decisions.append(f"{decision.tier}: " + "; ".join(decision.reasons))
        call = self._schema_call(url, markdown, schema, instruction, decision, spend)
        call.gate = gate or above is not None
        routed, decision = self._run(
            call, decision, deadline, spend, attempts, may_downgrade=may_downgrade and not above
        )
        answer = routed.data if isinstance(routed.data, dict) else {}
        quotes = answer.get("evidence")
        return ModelAnswer(
            # Only what the client asked for: a property the page slipped in never reaches
            # the result, whether or not the request went in strict mode.
            data=from_strict(answer.get("data"), schema),
            quotes=[q for q in quotes if isinstance(q, dict)] if isinstance(quotes, list) else [],
            schema=schema,
            tier=decision.tier,
            model=routed.model,
            truncated=routed.truncated,
        )

    def instruction(
        self,
        *,
        url: str,
        markdown: str,
        instruction: str,
        deadline: float,
        spend: Spend,
        attempts: list[Step],
        page_count: int = 1,
        start: ModelTier | None = None,
        may_downgrade: bool = True,
    ) -> ModelAnswer:
        """The model proposes a schema from the instruction alone (the page is not shown to
        that call: it cannot choose the output's fields), then extracts with it."""
        decision = self.decide(markdown, None, instruction, page_count, start=start)
        spend.decisions.append(f"{decision.tier}: " + "; ".join(decision.reasons))
        proposing = self.proposal_decision()
        spend.decisions.append(f"{proposing.tier}: " + "; ".join(proposing.reasons))
        routed, _ = self._run(
            self._proposal_call(instruction, spend),
            proposing,
            deadline,
            spend,
            attempts,
            may_downgrade=False,
        )
        proposal = routed.data
        proposed = proposal.get("schema") if isinstance(proposal, dict) else None
        if not isinstance(proposed, dict) or proposed.get("type") != "object":
            raise RouterFailed(
                "invalid_model_output", "the proposed schema is not an object schema", []
            )
        return self.schema(
            url=url,
            markdown=markdown,
            schema=proposed,
            instruction=instruction,
            deadline=deadline,
            spend=spend,
            attempts=attempts,
            page_count=page_count,
            start=decision.tier,
            may_downgrade=may_downgrade,
        )

    def quote(
        self,
        *,
        url: str,
        markdown: str,
        schema: dict[str, Any] | None,
        instruction: str | None,
        page_count: int,
        escalations: int,
        start: ModelTier | None = None,
        bounded: bool = True,
        full_page_tokens: int | None = None,
    ) -> PageQuote:
        """What extracting this page will cost. Unbounded, the top covers every model of the
        chain of every call and ``escalations`` stronger tiers after the extraction call;
        ``bounded`` (a job without ``max_cost_usd``), the top is the spend bound the job is
        held to: the path the page may take (:class:`PageQuote`). ``full_page_tokens``: the
        whole page's size, which a wider reading sends (None: no wider reading)."""
        decision = self.decide(markdown, schema, instruction, page_count, start=start)
        calls: list[tuple[Call, int]] = []
        if schema is None:
            assert instruction is not None
            calls.append((self._proposal_call(instruction, None), 0))
            # The proposed schema is not known yet: it is at most the proposal's output.
            placeholder: dict[str, Any] = {"type": "object"}
            extract = self._schema_call(
                url, markdown, placeholder, instruction, decision, None, unknown=True
            )
            calls.append((extract, PROPOSAL_MAX_OUTPUT))
        else:
            calls.append((self._schema_call(url, markdown, schema, instruction, decision, None), 0))
        quotes: list[CallQuote] = []
        for n, (call, extra) in enumerate(calls):
            on = self.proposal_decision() if schema is None and n == 0 else decision
            quoted = self.router.quote(call, on, extra_input_tokens=extra)
            high = quoted.high_usd
            if n == len(calls) - 1:  # the quality gate escalates the extraction call only
                tier = decision.tier
                for _ in range(escalations):
                    try:
                        stronger = self.decide(
                            markdown, schema, instruction, page_count, above=tier
                        )
                    except NoStrongerTier:
                        break
                    tier = stronger.tier
                    high += self.router.quote(call, stronger, extra_input_tokens=extra).high_usd
            quotes.append(replace(quoted, high_usd=high))
        low = sum((q.low_usd for q in quotes), Decimal(0))
        expected = sum((q.expected_usd for q in quotes), Decimal(0))
        worst = sum((q.high_usd for q in quotes), Decimal(0))
        if bounded:
            worst = self._path_worst(
                calls,
                quotes,
                decision,
                markdown,
                schema,
                instruction,
                page_count,
                escalations=min(escalations, 1),
                full_page_tokens=full_page_tokens,
            )
        return PageQuote(decision, quotes, low, expected, max(worst, low))

    def _path_worst(
        self,
        calls: list[tuple[Call, int]],
        quotes: list[CallQuote],
        decision: Decision,
        markdown: str,
        schema: dict[str, Any] | None,
        instruction: str | None,
        page_count: int,
        *,
        escalations: int,
        full_page_tokens: int | None,
    ) -> Decimal:
        """The most the path a page may actually take can cost: each call's first model and
        one fallback after a billed failure, each at its cap; for the extraction call, one
        wider reading of the full page at the same tier and ``escalations`` stronger tiers
        (their first model at its cap)."""
        worst = sum((q.first_worst_usd + q.fallback_worst_usd for q in quotes), Decimal(0))
        call, extra = calls[-1]
        if full_page_tokens is not None:
            more = full_page_tokens - tokens.count(markdown)
            if more > 0:
                wide = self.router.quote(call, decision, extra_input_tokens=extra + more)
                worst += wide.first_worst_usd
        tier = decision.tier
        for _ in range(escalations):
            try:
                stronger = self.decide(markdown, schema, instruction, page_count, above=tier)
            except NoStrongerTier:
                break
            tier = stronger.tier
            worst += self.router.quote(call, stronger, extra_input_tokens=extra).first_worst_usd
        return worst

    def rank_links(
        self,
        *,
        goal: str,
        links: list[Any],
        deadline: float,
        spend: Spend,
        attempts: list[Step],
    ) -> list[Any]:
        """Links best first toward ``goal`` (the crawler keeps its own budget)."""
        shown = links[:MAX_RANKED_LINKS]
        numbered = [(n, link.text, link.url) for n, link in enumerate(shown)]
        spend.allow(self.ranking_worst_usd())  # as quoted: one choice per crawled page
        answer = self._run(
            Call(
                messages=lambda limit: prompts.rank_messages(goal, numbered),
                schema=prompts.RANKING_FORMAT,
                max_output_tokens=RANKING_MAX_OUTPUT,
                owner_id=spend.owner_id,
            ),
            RANKING_DECISION,
            deadline,
            spend,
            attempts,
        )[0].data
        picked = [n for n in answer.get("ranked", []) if isinstance(n, int) and 0 <= n < len(shown)]
        return [shown[n] for n in dict.fromkeys(picked)]

    def ranking_worst_usd(self) -> Decimal:
        """The most one link-choice call can cost (every model of its chain failing)."""
        return self._ranking_quote().high_usd

    def ranking_expected_usd(self) -> Decimal:
        """What one link-choice call is expected to cost (a page of links, its first model)."""
        return self._ranking_quote().expected_usd

    def _ranking_quote(self) -> CallQuote:
        numbered = [(n, "x" * 40, "https://example.com/" + "p" * 40) for n in range(60)]
        call = Call(
            messages=lambda limit: prompts.rank_messages("g" * 200, numbered),
            schema=prompts.RANKING_FORMAT,
            max_output_tokens=RANKING_MAX_OUTPUT,
        )
        return self.router.quote(call, RANKING_DECISION)

    def _run(
        self,
        call: Call,
        decision: Decision,
        deadline: float,
        spend: Spend,
        attempts: list[Step],
        *,
        may_downgrade: bool = False,
    ) -> tuple[Routed, Decision]:
        """The routed answer and the decision that served it: a budget that refuses every
        model of the tier moves a job that allows it down to the next cheaper tier."""
        while True:
            call.ceiling_usd = spend.remaining()
            call.ceiling_name = spend.limit_name()
            call.ceiling_code = spend.limit_code()
            try:
                routed = self.router.run(call, decision, deadline=deadline)
            except RouterFailed as exc:
                spend.add(exc)
                attempts.extend(exc.attempts)
                cheaper = self._neighbour(decision.tier, step=-1)
                if exc.code != "budget_exceeded" or not may_downgrade or cheaper is None:
                    raise
                why = f"the budget refused {decision.tier}: downgraded to {cheaper}"
                spend.decisions.append(f"{cheaper}: {why}")
                decision = Decision(cheaper, (*decision.reasons, why))
                call.reasoning_effort = min(
                    call.reasoning_effort or REASONING_EFFORT,
                    effort_for(cheaper),
                    key=EFFORTS.index,
                )
                continue
            spend.add(routed)
            attempts.extend(routed.attempts)
            return routed, decision

    def _neighbour(self, tier: ModelTier, *, step: int) -> ModelTier | None:
        """The nearest tier above (``step=1``) or below (``step=-1``) ``tier`` that the stage
        allows and another model serves."""
        policy = self.config.model_policy
        ranks = range(MODEL_TIERS.index(tier) + step, len(MODEL_TIERS) if step > 0 else -1, step)
        for rank in ranks:
            other = MODEL_TIERS[rank]
            if other in policy.allowed_tiers and (
                policy.tier_models.get(other) != policy.tier_models.get(tier)
            ):
                return other
        return None


def _cut(markdown: str, limit: int | None) -> str:
    if limit is None:
        return markdown
    cut, _, _ = tokens.truncate(markdown, limit)
    return cut
