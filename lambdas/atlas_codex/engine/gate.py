"""The quality gate: a model extraction read, judged and, where it falls short, read again
on the full page and tried on stronger tiers, within the budget, the job's ceiling and its
spend bound; the best answer serves. The engine's run (:mod:`atlas_codex.engine.engine`)
hands a page here for each model strategy of its chain."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from atlas_codex.engine import evidence, quality
from atlas_codex.engine.facts.direct import Extraction, check_required
from atlas_codex.engine.pages.crawler import CrawledPage
from atlas_codex.engine.reading import model_view
from atlas_codex.engine.run import ExtractionRun
from atlas_codex.engine.strategies import MAX_ESCALATIONS, StrategyFailed, ask_for_the_rest, judged
from atlas_codex.extraction.request import JobRequest
from atlas_codex.extraction.result import ReadView
from atlas_codex.ground.policy import ModelTier

if TYPE_CHECKING:
    from atlas_codex.llm.extraction import ModelAnswer, ModelStrategies


class QualityGate:
    """The model strategies of one engine, each answer through the gate."""

    def __init__(self, models: ModelStrategies) -> None:
        self.models = models

    def extract(
        self,
        run: ExtractionRun,
        strategy: str,
        page: CrawledPage,
        known: Extraction | None = None,
    ) -> Extraction:
        """A model extraction through the quality gate: an answer missing what the job asks
        is read again on the full page, then output with problems is tried on stronger tiers
        (within the budget, the ceiling and the spend bound); the best answer serves."""
        from atlas_codex.llm.router import RouterFailed

        assert page.page is not None
        request, whole = run.request, run.request.json_schema
        if known is not None and whole is not None:
            request = ask_for_the_rest(request, whole, known)
        job = model_view.focus(request.json_schema, request.instruction)
        read = model_view.view(page.parsed(), page.page.url, job, main=page.main_markdown())
        gate = GateState(
            request=request,
            url=page.page.url,
            markdown=read.markdown,
            # What the quotes are checked against, normalised once for every answer.
            texts=evidence.haystack([read.markdown, page.page.text]),
            page_count=len(request.urls) if request.crawl is None else request.crawl.max_pages,
            full_page_tokens=read.full_page_tokens,
        )
        try:
            self._hold_to_the_quote(run, gate)
            first = self._first_answer(run, strategy, gate)
        except RouterFailed as exc:
            raise StrategyFailed(
                exc.code, exc.message, retryable=exc.cooling, retry_after_s=exc.retry_after_s
            ) from None
        gate.answer, gate.found = first, judged_answer(first, gate.texts)
        if quality.misses_fields(gate.found.problems) and read.tokens < read.full_page_tokens:
            self._read_wider(run, gate, page, job, read)
        self._escalate(run, gate)
        found = gate.found
        if known is not None and whole is not None:
            found = merged(known, found, whole)
        found.view = ReadView(
            name=read.name,
            tokens=read.tokens,
            full_page_tokens=read.full_page_tokens,
            widened=gate.widened,
        )
        return found

    def _hold_to_the_quote(self, run: ExtractionRun, gate: GateState) -> None:
        """Without a cost ceiling, the page may spend what its quote promised at most,
        computed the same way (``Spend.allow``)."""
        assert self.models is not None
        if run.spend.bound is None:
            return
        request = gate.request
        run.spend.allow(
            self.models.quote(
                url=gate.url,
                markdown=gate.markdown,
                schema=dict(request.json_schema) if request.json_schema is not None else None,
                instruction=request.instruction,
                page_count=gate.page_count,
                escalations=MAX_ESCALATIONS,
                start=request.model_tier,
                full_page_tokens=gate.full_page_tokens,
            ).high
        )

    def _first_answer(self, run: ExtractionRun, strategy: str, gate: GateState) -> ModelAnswer:
        """The job's own call: the schema's, or the instruction's (which proposes a schema
        from the instruction first), at the tier the router chooses or the client set."""
        assert self.models is not None
        request = gate.request
        if strategy == "schema-model":
            assert request.json_schema is not None
            return self.models.schema(
                url=gate.url,
                markdown=gate.markdown,
                deadline=run.deadline,
                spend=run.spend,
                schema=dict(request.json_schema),
                instruction=request.instruction,
                attempts=run.attempts,
                page_count=gate.page_count,
                start=request.model_tier,
                may_downgrade=request.model_tier is None,
            )
        assert request.instruction is not None
        return self.models.instruction(
            url=gate.url,
            markdown=gate.markdown,
            deadline=run.deadline,
            spend=run.spend,
            instruction=request.instruction,
            attempts=run.attempts,
            page_count=gate.page_count,
            start=request.model_tier,
            may_downgrade=request.model_tier is None,
        )

    def _read_wider(
        self,
        run: ExtractionRun,
        gate: GateState,
        page: CrawledPage,
        job: model_view.Focus,
        read: model_view.View,
    ) -> None:
        """Read wider before paying more: a stronger model reading the same cut text cannot
        find what the cut left out. The full page, at the same tier; kept if no worse."""
        from atlas_codex.llm.router import RouterFailed

        assert self.models is not None
        assert page.page is not None
        assert gate.answer is not None
        assert gate.found is not None
        wide = model_view.view(page.parsed(), gate.url, job, main=read.markdown, name="full")
        try:
            wider = self._ask_again(
                run,
                gate,
                wide.markdown,
                start=gate.answer.tier,
                may_downgrade=False,
                gate_call=True,
            )
        except RouterFailed as exc:
            run.spend.decisions.append(f"quality gate: no wider reading ({exc.code})")
            return
        gate.texts = evidence.haystack([read.markdown, wide.markdown, page.page.text])
        candidate = judged_answer(wider, gate.texts)
        run.spend.decisions.append(
            f"quality gate: {'; '.join(gate.found.problems)} -> the full page "
            f"({wide.tokens} tokens, was {read.tokens}) at {wider.tier}: "
            + ("fixed it" if not candidate.problems else "; ".join(candidate.problems))
        )
        gate.markdown, gate.widened = wide.markdown, True
        if score(candidate.problems) <= score(gate.found.problems):
            gate.answer, gate.found = wider, candidate

    def _ask_again(
        self,
        run: ExtractionRun,
        gate: GateState,
        markdown: str,
        *,
        start: ModelTier | None = None,
        above: ModelTier | None = None,
        may_downgrade: bool = True,
        gate_call: bool = False,
    ) -> ModelAnswer:
        """The held answer's schema asked again: of ``markdown`` at the tier ``start`` (a
        wider reading: a quality-gate call held strictly to the spend bound), or at the next
        tier ``above`` (an escalation)."""
        assert self.models is not None
        assert gate.answer is not None
        return self.models.schema(
            url=gate.url,
            markdown=markdown,
            deadline=run.deadline,
            spend=run.spend,
            schema=gate.answer.schema,
            instruction=gate.request.instruction,
            attempts=run.attempts,
            page_count=gate.page_count,
            start=start,
            above=above,
            may_downgrade=may_downgrade,
            gate=gate_call,
        )

    def _escalate(self, run: ExtractionRun, gate: GateState) -> None:
        """Output with problems goes to the next stronger tier, at most MAX_ESCALATIONS
        times; a better (or no worse) answer replaces the one held."""
        from atlas_codex.llm.extraction import NoStrongerTier
        from atlas_codex.llm.router import RouterFailed

        assert self.models is not None
        assert gate.answer is not None
        assert gate.found is not None
        for _ in range(MAX_ESCALATIONS):
            if not gate.found.problems:
                return
            absent = _absent_from_the_page(gate)
            if absent:
                run.spend.decisions.append(
                    "quality gate: no escalation: the full page does not give "
                    + ", ".join(absent)
                    + " (read whole already; a stronger model reads the same text)"
                )
                return
            try:
                better = self._ask_again(run, gate, gate.markdown, above=gate.answer.tier)
            except NoStrongerTier:
                return
            except RouterFailed as exc:
                run.spend.decisions.append(f"quality gate: no escalation ({exc.code})")
                return
            candidate = judged_answer(better, gate.texts)
            run.spend.decisions.append(
                f"quality gate: {'; '.join(gate.found.problems)} -> {better.tier} "
                + ("fixed it" if not candidate.problems else "; ".join(candidate.problems))
            )
            if score(candidate.problems) <= score(gate.found.problems):
                gate.answer, gate.found = better, candidate
            else:
                gate.answer = replace(gate.answer, tier=better.tier)


@dataclass
class GateState:
    """One page through the model strategies and the quality gate: what the model is asked
    and reads, and the best answer so far."""

    request: JobRequest
    """The request the model is asked (after product facts: the rest of the schema)."""
    url: str
    markdown: str
    """What the model reads: the page's view, then the full page once the gate widened it."""
    texts: str
    """What the answers' quotes are checked against."""
    page_count: int
    full_page_tokens: int | None = None
    """The whole page's size: what a wider reading sends (the spend bound counts it)."""
    answer: ModelAnswer | None = None
    found: Extraction | None = None
    widened: bool = False


def merged(known: Extraction, answer: Extraction, schema: Any) -> Extraction:
    """The facts read from the page, and the model's answer for the rest, in the schema's
    order, judged against the whole schema."""
    model_data = answer.data if isinstance(answer.data, dict) else {}
    data = {k: v if v is not None else model_data.get(k) for k, v in (known.data or {}).items()}
    merged = Extraction(
        data=data,
        evidence={**answer.evidence, **known.evidence},
        missing=[k for k, v in data.items() if v is None],
        unverified=answer.unverified,
    )
    return judged(merged, schema)


def score(problems: list[str]) -> int:
    """Lower is better: an empty answer is worse than any number of lesser problems."""
    return (100 if quality.gave_nothing(problems) else 0) + len(problems)


def _absent_from_the_page(gate: GateState) -> list[str]:
    """The required fields the page does not give, when that is all that is wrong: the gate
    read the whole page already and the answer's only problems are those fields."""
    assert gate.found is not None
    if not gate.widened:
        return []
    prefix = f"{quality.MISSING_REQUIRED}: "
    problems = gate.found.problems
    if not problems or not all(p.startswith(prefix) for p in problems):
        return []
    return [p.removeprefix(prefix) for p in problems]


def judged_answer(answer: ModelAnswer, texts: str) -> Extraction:
    checked = evidence.check(answer.data, answer.quotes, texts)
    found = Extraction(
        data=answer.data,
        evidence=checked.evidence,
        missing=checked.missing,
        unverified=checked.unverified,
    )
    missing = check_required(answer.data, answer.schema)
    found.problems = quality.problems(
        answer.data, answer.schema, missing_required=missing, truncated=answer.truncated
    )
    return found
