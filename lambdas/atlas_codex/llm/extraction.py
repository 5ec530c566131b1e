"""The engine's model strategies: schema extraction and plain-language extraction.

Built only when a key is configured; the ``openai`` SDK is imported on the first call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from atlas_codex.config import RuntimeConfig
from atlas_codex.jobs.schema import Attempt
from atlas_codex.llm import prompts, tokens
from atlas_codex.llm.catalog import Catalog, catalog_for
from atlas_codex.llm.router import Call, Decision, Routed, Router, RouterFailed, analyse

PROPOSAL_MAX_OUTPUT: int = 1500
REASONING_EFFORT: str = "medium"
MAX_RANKED_LINKS: int = 60
RANKING_MAX_OUTPUT: int = 300


@dataclass
class Spend:
    """What one job's model calls cost, across pages and strategies."""

    estimated: Decimal = Decimal(0)
    actual: Decimal = Decimal(0)
    models: list[str] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    owner_id: str | None = None

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
                    where = self.config.openai_secret_name or "OPENAI_API_KEY"
                    raise RouterFailed(
                        "model_unavailable",
                        f"the OpenAI key ({where}) could not be read: {type(exc).__name__}: {exc}"[
                            :500
                        ],
                        [],
                    ) from None
            return self._router

    def _build_router(self) -> Router:
        from atlas_codex import aws
        from atlas_codex.llm.client import ModelClient
        from atlas_codex.usage import BudgetGuard, UsageLedger

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
        self, markdown: str, schema: dict[str, Any] | None, instruction: str | None, pages: int
    ) -> Decision:
        return analyse(
            input_tokens=tokens.count(markdown),
            schema=schema,
            instruction=instruction,
            pages=pages,
            policy=self.config.model_policy,
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
        attempts: list[Attempt],
        pages: int = 1,
    ) -> Any:
        decision = self.decide(markdown, schema, instruction, pages)
        spend.decisions.append(f"{decision.tier}: " + "; ".join(decision.reasons))
        call = Call(
            messages=lambda limit: prompts.schema_messages(url, _cut(markdown, limit), instruction),
            schema=schema,
            # Reasoning-enhanced when the job needs the full tier: a stronger model thinks more.
            reasoning_effort=REASONING_EFFORT if decision.tier == "full" else None,
            owner_id=spend.owner_id,
        )
        return self._run(call, decision, deadline, spend, attempts)

    def instruction(
        self,
        *,
        url: str,
        markdown: str,
        instruction: str,
        deadline: float,
        spend: Spend,
        attempts: list[Attempt],
        pages: int = 1,
    ) -> Any:
        """The model proposes a schema for the instruction, then extracts with it."""
        decision = self.decide(markdown, None, instruction, pages)
        spend.decisions.append(f"{decision.tier}: " + "; ".join(decision.reasons))
        proposal = self._run(
            Call(
                messages=lambda limit: prompts.propose_messages(
                    url, _cut(markdown, limit), instruction
                ),
                schema=prompts.PROPOSAL_FORMAT,
                max_output_tokens=PROPOSAL_MAX_OUTPUT,
                owner_id=spend.owner_id,
            ),
            decision,
            deadline,
            spend,
            attempts,
        )
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
            pages=pages,
        )

    def rank_links(
        self,
        *,
        goal: str,
        links: list[Any],
        deadline: float,
        spend: Spend,
        attempts: list[Attempt],
    ) -> list[Any]:
        """Links best first toward ``goal`` (the crawler keeps its own budget)."""
        shown = links[:MAX_RANKED_LINKS]
        numbered = [(n, link.text, link.url) for n, link in enumerate(shown)]
        answer = self._run(
            Call(
                messages=lambda limit: prompts.rank_messages(goal, numbered),
                schema=prompts.RANKING_FORMAT,
                max_output_tokens=RANKING_MAX_OUTPUT,
                owner_id=spend.owner_id,
            ),
            Decision("nano", ("link choice for navigation",)),
            deadline,
            spend,
            attempts,
        )
        picked = [n for n in answer.get("ranked", []) if isinstance(n, int) and 0 <= n < len(shown)]
        return [shown[n] for n in dict.fromkeys(picked)]

    def _run(
        self, call: Call, decision: Decision, deadline: float, spend: Spend, attempts: list[Attempt]
    ) -> Any:
        try:
            routed = self.router.run(call, decision, deadline=deadline)
        except RouterFailed as exc:
            spend.add(exc)
            attempts.extend(exc.attempts)
            raise
        spend.add(routed)
        attempts.extend(routed.attempts)
        return routed.data


def _cut(markdown: str, limit: int | None) -> str:
    if limit is None:
        return markdown
    cut, _, _ = tokens.truncate(markdown, limit)
    return cut
